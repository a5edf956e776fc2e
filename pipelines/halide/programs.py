"""Where programs come from: the random generator, the zoo, and user files.

A *program entry* is the small JSON record the ``generate`` rule writes for each
program; :func:`load_program` turns one into a built Halide :class:`Program`.

User programs
-------------
A user program is a Python file that defines::

    def build() -> halide.Func | list[halide.Func]:
        ...  # return the output Func(s)

Every output and every input ``ImageParam`` must have estimates set
(``set_estimates``), as Halide's autoschedulers require. The file may also define
``OP_KINDS = {func_name: kind}`` to label stages with the stage vocabulary.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import halide as hl

from featurize.schema import UserError
from pipelines.halide.generator import generate_spec
from pipelines.halide.ops import Program, build_program


class UserProgramError(UserError):
    """A user program file cannot be loaded; the message names the file."""


def random_entry(program_id: str, seed: int, params: dict) -> dict:
    spec = generate_spec(seed, params, name=program_id)
    return {"program_id": program_id, "origin": "random", "seed": seed, "params": params, "spec": spec}


def zoo_entry(name: str) -> dict:
    from pipelines.halide.zoo import ZOO

    if name not in ZOO:
        raise UserError(f"unknown zoo program {name!r}; known: {sorted(ZOO)}")
    spec, description = ZOO[name]
    return {"program_id": f"zoo_{name}", "origin": "zoo", "source": name, "description": description, "spec": spec}


def user_entry(path: str) -> dict:
    stem = Path(path).stem
    return {"program_id": f"user_{stem}", "origin": "user", "source": str(path)}


def load_program(entry: dict) -> Program:
    """Build the Halide program an entry describes."""
    if entry["origin"] in ("random", "zoo"):
        return build_program(entry["spec"])
    if entry["origin"] == "user":
        return load_user_program(entry["source"], entry["program_id"])
    raise UserError(f"unknown program origin {entry['origin']!r}")


def load_user_program(path: str | Path, name: str | None = None) -> Program:
    """Import a user file and call its ``build()``; every problem names the file."""
    path = Path(path)
    if not path.is_file():
        raise UserProgramError(f"{path}: user program file not found")
    mod_name = f"perfgraph_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise UserProgramError(f"{path}: syntax error at line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:
        raise UserProgramError(f"{path}: importing it raised {type(exc).__name__}: {exc}") from None
    finally:
        sys.modules.pop(mod_name, None)
    build = getattr(module, "build", None)
    if not callable(build):
        raise UserProgramError(f"{path}: defines no build() function (it must return the output Func(s))")
    try:
        outputs = build()
    except Exception as exc:
        raise UserProgramError(f"{path}: build() raised {type(exc).__name__}: {exc}") from None
    if isinstance(outputs, hl.Func):
        outputs = [outputs]
    if not isinstance(outputs, (list, tuple)) or not outputs or not all(isinstance(f, hl.Func) for f in outputs):
        raise UserProgramError(f"{path}: build() must return a halide.Func or a list of them")
    pipeline = hl.Pipeline(outputs)
    _check_estimates(path, pipeline, outputs)
    op_kinds = {f.name(): "user" for f in outputs}
    op_kinds.update(getattr(module, "OP_KINDS", {}))
    # Output estimates are not readable from Python; the harness reads them from
    # the compiled pipeline's metadata instead.
    return Program(name or path.stem, pipeline, outputs, [], op_kinds)


def _check_estimates(path: Path, pipeline: hl.Pipeline, outputs) -> None:
    for arg in pipeline.infer_arguments():
        if arg.kind != hl.ArgumentKind.InputBuffer:
            continue
        ranges = arg.argument_estimates.buffer_estimates
        missing = [
            i for i, r in enumerate(ranges) if not (r.min.defined() and r.extent.defined())
        ] or ([] if len(ranges) == arg.dimensions else list(range(arg.dimensions)))
        if missing:
            raise UserProgramError(
                f"{path}: input {arg.name!r} has no estimates for dimension(s) {missing}; "
                "call set_estimates() on every input ImageParam"
            )


def read_entry(path: str | Path) -> dict:
    with open(path) as f:
        return json.load(f)
