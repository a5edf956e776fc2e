"""A user program file flows through every stage like a generated one."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import polars as pl
import pytest

from featurize.build import featurize_program
from featurize.schema import write_json
from pipelines.halide.autoschedule import schedule_hash
from pipelines.halide.sample import compile_program
from pipelines.halide.programs import UserProgramError, load_user_program, user_entry
from tests.pipelines.halide.generators import write_generator

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


def test_a_generator_with_a_param_and_a_scalar_input_flows_through_compile_and_featurize(
    tmp_path, small_sampling
) -> None:
    path = write_generator(tmp_path / "scaled_blur.py", "perfgraph_test_scaled_blur")
    entry = user_entry(str(path), {"taps": 5})
    assert entry["program_id"] == "user_scaled_blur_taps5" and entry["generator_params"] == {"taps": 5}
    write_json(entry, tmp_path / "entry.json")
    # The generator's own schedule is a reference pick: compiled, kept, and featurized by the
    # loop-nest reader (no Adams2019 search made it), its outputs at the compiled estimates.
    sampling = {**small_sampling, "reference_autoschedulers": ["manual"]}
    # compile_program forks a child per draw after this process imported the file: Halide's
    # generator registry, inherited, must not see the generator registered twice.
    cands = compile_program(tmp_path / "entry.json", tmp_path / "work", sampling, 2)
    assert set(cands["compile_status"]) == {"ok"}
    manual = cands.filter(pl.col("sampler") == "manual")
    assert manual.height == 1 and manual["autoscheduler"][0] == "manual"
    assert manual["has_featurization"][0] and manual["featurizer"][0] == "loopnest"
    assert "perfgraph_test_scaled_blur" not in manual["schedule_text"][0]  # the file, not Halide's name
    assert "scaled_blur.py" in manual["schedule_text"][0] and "for" in manual["schedule_text"][0]
    assert manual["schedule_id"][0] != schedule_hash("")  # all comment, yet identified by its loop nest
    nodes = featurize_program(tmp_path / "work")["nodes"]
    assert {"blur_x", "blur_y"} <= set(nodes["name"])
    # The GeneratorParam reaches generate(): with every stage inlined (no schedule), the output
    # loads the image taps x taps times (each load the same few mentions of the image).
    five = load_user_program(path, generator_params={"taps": 5})
    three = load_user_program(path)
    assert _image_loads(five, tmp_path) * 9 == _image_loads(three, tmp_path) * 25 > 0
    # The scalar input is an argument of the pipeline, with its estimate.
    (gain,) = [a for a in five.pipeline.infer_arguments() if a.name == "gain"]
    assert gain.argument_estimates.scalar_estimate.defined()


def _image_loads(program, tmp_path: Path) -> int:
    import halide as hl

    stmt = tmp_path / f"{program.name}.stmt"
    program.pipeline.compile_to_lowered_stmt(str(stmt), program.pipeline.infer_arguments(), hl.StmtOutputFormat.Text)
    return stmt.read_text().count("image[")


def test_a_generator_problem_is_one_error_naming_the_file_and_the_input(tmp_path) -> None:
    path = write_generator(tmp_path / "no_estimate.py", "perfgraph_test_no_estimate", scalar_estimate=False)
    with pytest.raises(UserProgramError, match=re.escape("scalar input 'gain' has no estimate")) as err:
        load_user_program(path)
    assert str(path) in str(err.value)
    with pytest.raises(UserProgramError, match="no Halide generator class 'Other'"):
        load_user_program(f"{path}:Other")
    with pytest.raises(UserProgramError, match="GeneratorParam|taps|unknown|Unknown"):
        load_user_program(path, generator_params={"no_such_param": 1})
    two = tmp_path / "two.py"
    two.write_text(path.read_text().replace("perfgraph_test_no_estimate", "perfgraph_test_two_a")
                   + path.read_text().replace("perfgraph_test_no_estimate", "perfgraph_test_two_b")
                   .replace("class ScaledBlur", "class Another"))  # fmt: skip
    with pytest.raises(UserProgramError, match="defines 2 Halide generators .*name one as path.py:ClassName"):
        load_user_program(two)


def test_a_schedule_made_again_in_a_fresh_process_is_recognised() -> None:
    """The loop-nest reader reschedules a candidate in a fresh Python: Halide's "$N" on Funcs a
    process built before and the autoscheduler's fresh Var numbers differ, the schedule does not."""
    from pipelines.halide.sample import _canonical_names

    drawn = "sharpen$1.compute_root()\n    .split(x,v15,v16,8,ShiftInwards)\n    .vectorize(v16)\n;"
    again = "sharpen.compute_root()\n    .split(x,v0,v1,8,ShiftInwards)\n    .vectorize(v1)\n;"
    assert _canonical_names(drawn) == _canonical_names(again)
    assert _canonical_names(again) != _canonical_names(again.replace("vectorize(v1)", "vectorize(v0)"))
