"""A user program file flows through every stage like a generated one."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from featurize.build import featurize_program
from featurize.schema import write_json
from pipelines.halide.sample import compile_program
from pipelines.halide.programs import UserProgramError, load_user_program, user_entry

EXAMPLE = Path(__file__).resolve().parents[3] / "examples/sharpen.py"


def test_user_program_flows_through_compile_and_featurize(tmp_path, small_sampling) -> None:
    path = tmp_path / "my_sharpen.py"
    shutil.copy(EXAMPLE, path)
    entry = user_entry(str(path))
    assert entry["program_id"] == "user_my_sharpen"
    write_json(entry, tmp_path / "entry.json")
    cands = compile_program(tmp_path / "entry.json", tmp_path / "work", small_sampling, 2)
    assert cands.height == 2 and set(cands["compile_status"]) == {"ok"}
    tables = featurize_program(tmp_path / "work")
    nodes = tables["nodes"]
    assert {"blur_x", "blur_y", "sharpen"} <= set(nodes["name"])
    assert dict(nodes.select("name", "op_kind").iter_rows())["blur_x"] == "stencil"
    kinds = {
        (nodes["name"][e["src"]], nodes["name"][e["dst"]]): e["kind"]
        for e in tables["edges"].iter_rows(named=True)
    }
    assert kinds[("blur_x", "blur_y")] == "stencil"
    assert tables["programs"]["origin"].item() == "user"


@pytest.mark.parametrize(
    "source,message",
    [
        ("def build(:\n", "syntax error at line 1"),
        ("import halide as hl\n", "defines no build() function"),
        (
            textwrap.dedent(
                """
                import halide as hl
                def build():
                    img = hl.ImageParam(hl.Float(32), 2, "img")
                    x, y = hl.Var("x"), hl.Var("y")
                    f = hl.Func("f")
                    f[x, y] = img[x, y] * 2
                    f.set_estimates([(0, 64), (0, 64)])
                    return f
                """
            ),
            "input 'img' has no estimates",
        ),
        ("def build():\n    return 3\n", "must return a halide.Func"),
    ],
)
def test_bad_user_programs_name_the_file_and_the_problem(tmp_path, source, message) -> None:
    path = tmp_path / "bad.py"
    path.write_text(source)
    with pytest.raises(UserProgramError, match=re.escape(message)) as err:
        load_user_program(path)
    assert str(path) in str(err.value)
