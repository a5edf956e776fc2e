"""Where programs come from: the random generator, the zoo, and user files.

A *program entry* is the small JSON record the ``generate`` rule writes for each
program; :func:`load_program` turns one into a built Halide :class:`Program`.

User programs
-------------
A user program is a Python file of one of two kinds. Either it defines::

    def build() -> halide.Func | list[halide.Func]:
        ...  # return the output Func(s)

where every output and every input ``ImageParam`` has estimates set (``set_estimates``),
as Halide's autoschedulers require; the file may also define ``OP_KINDS = {func_name:
kind}`` to label stages with the stage vocabulary. Or it defines a Halide generator
(an ``@hl.generator`` class): ``path.py`` when it defines one, ``path.py:ClassName`` to
name one, with its GeneratorParams given as ``generator_params``. The generator is built
through Halide's public API (``Class.call`` in a ``GeneratorContext``) with an
autoscheduler named, so ``generate()``'s manual schedule (under ``if not
self.using_autoscheduler()``) is skipped for sampling; built without one
(``manual=True``), that schedule is applied: what ``tune`` times as the ``manual`` pick.
Its inputs and outputs need estimates (``set_estimates``, ``set_estimate`` for an
``InputScalar``), set in ``generate()``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
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


def parse_user_source(source: str) -> tuple[str, str | None]:
    """``path.py`` or ``path.py:ClassName`` -> (the file, the generator class named or None)."""
    path, sep, cls = str(source).rpartition(":")
    if sep and path.endswith(".py") and cls.isidentifier():
        return path, cls
    return str(source), None


def user_program_id(source: str, generator_params: dict | None = None) -> str:
    """``user_<file stem>``, plus the generator class when one is named and the GeneratorParams
    when any are set, so one file's variants are distinct programs."""
    path, cls = parse_user_source(source)
    parts = [Path(path).stem] + ([cls] if cls else [])
    parts += [f"{k}{v}" for k, v in sorted((generator_params or {}).items())]
    return "user_" + re.sub(r"\W", "_", "_".join(parts))


def user_entry(source: str, generator_params: dict | None = None) -> dict:
    path, cls = parse_user_source(source)
    entry = {"program_id": user_program_id(source, generator_params), "origin": "user", "source": path}
    if cls or generator_params:
        entry.update(generator=cls, generator_params=dict(generator_params or {}))
    return entry


def load_program(entry: dict, manual: bool = False) -> Program:
    """Build the Halide program an entry describes; with ``manual``, a generator's own schedule
    applied (:class:`UserProgramError` for any other program)."""
    if entry["origin"] in ("random", "zoo"):
        if manual:
            raise UserProgramError(f"{entry['program_id']}: a {entry['origin']} program has no manual schedule")
        return build_program(entry["spec"])
    if entry["origin"] == "user":
        return load_user_program(entry["source"], entry["program_id"], entry.get("generator"),
                                 entry.get("generator_params"), manual=manual)  # fmt: skip
    raise UserError(f"unknown program origin {entry['origin']!r}")


#: User modules imported in this process, by (resolved path, mtime). Halide's registry of
#: Python generators is per process and refuses a name registered twice, and a forked child
#: inherits it: so a file is imported once per process (and its forked children) and reused.
_USER_MODULES: dict[tuple[str, int], object] = {}


def _import_user_file(path: Path):
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    if key in _USER_MODULES:
        return _USER_MODULES[key]
    mod_name = f"perfgraph_user_{abs(hash(key))}"
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
    _USER_MODULES[key] = module
    return module


def generator_classes(module) -> dict[str, type]:
    """The Halide generator classes a module defines, by class name (``@hl.generator`` makes
    each an ``hl.Generator`` subclass; ``@hl.alias`` names add none here)."""
    return {
        name: obj for name, obj in vars(module).items()
        if isinstance(obj, type) and issubclass(obj, hl.Generator) and obj is not hl.Generator
    }  # fmt: skip


def has_manual_schedule(entry: dict) -> bool:
    """Whether an entry is a generator that schedules itself when no autoscheduler is named
    (its ``generate()`` asks ``using_autoscheduler()``)."""
    if entry.get("origin") != "user":
        return False
    path = Path(entry["source"])
    try:
        cls = _generator_class(path, generator_classes(_import_user_file(path)), entry.get("generator"))
    except UserProgramError:  # not a generator (or not one this entry names): no manual schedule
        return False
    # Read from the file: @hl.generator returns a class Halide made, which inspect cannot place.
    source = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            return "using_autoscheduler" in (ast.get_source_segment(source, node) or "")
    return False


def load_user_program(
    path: str | Path, name: str | None = None, generator: str | None = None,
    generator_params: dict | None = None, manual: bool = False,
) -> Program:
    """Import a user file and build its program (``build()`` or a generator); every problem
    names the file."""
    path, named = parse_user_source(str(path))
    path, generator = Path(path), generator or named
    if not path.is_file():
        raise UserProgramError(f"{path}: user program file not found")
    module = _import_user_file(path)
    classes = generator_classes(module)
    build = getattr(module, "build", None)
    if generator is not None or generator_params or (classes and not callable(build)):
        return _build_generator(path, module, classes, generator, generator_params or {}, name, manual)
    if manual:
        raise UserProgramError(f"{path}: defines build(), not a generator: it has no manual schedule to time")
    if not callable(build):
        raise UserProgramError(
            f"{path}: defines no build() function (it must return the output Func(s)) and no Halide generator"
        )
    try:
        outputs = build()
    except Exception as exc:
        raise UserProgramError(f"{path}: build() raised {type(exc).__name__}: {exc}") from None
    if isinstance(outputs, hl.Func):
        outputs = [outputs]
    if not isinstance(outputs, (list, tuple)) or not outputs or not all(isinstance(f, hl.Func) for f in outputs):
        raise UserProgramError(f"{path}: build() must return a halide.Func or a list of them")
    return _user_program(path, module, list(outputs), name or path.stem)


def _user_program(path: Path, module, outputs: list, name: str) -> Program:
    """A user file's outputs as a Program: their inputs' estimates checked, stages labelled by
    the file's ``OP_KINDS``. (Output estimates are not readable from Python; the harness reads
    them from the compiled pipeline's metadata instead.)"""
    pipeline = hl.Pipeline(outputs)
    _check_estimates(path, pipeline)
    op_kinds = {f.name(): "user" for f in outputs}
    op_kinds.update(getattr(module, "OP_KINDS", {}))
    return Program(name, pipeline, outputs, [], op_kinds)


def _generator_inputs(cls: type) -> dict[str, object]:
    """The class's declared inputs (``hl.InputBuffer`` / ``hl.InputScalar`` attributes), in
    declaration order, base classes first."""
    found: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            if isinstance(value, (hl.InputBuffer, hl.InputScalar)):
                found[attr] = value
    return found


def _generator_class(path: Path, classes: dict, generator: str | None) -> type:
    """The generator class named (``generator``), or the file's only one."""
    if generator is None:
        if len(classes) != 1:
            raise UserProgramError(
                f"{path}: defines {len(classes)} Halide generators ({', '.join(sorted(classes)) or 'none'}); "
                "name one as path.py:ClassName"
            )
        generator = next(iter(classes))
    if generator not in classes:
        raise UserProgramError(f"{path}: no Halide generator class {generator!r} (it defines: {sorted(classes) or 'none'})")
    return classes[generator]


def _build_generator(path: Path, module, classes: dict, generator: str | None, params: dict,
                     name: str | None, manual: bool) -> Program:  # fmt: skip
    from pipelines.halide.autoschedule import host_target

    cls = _generator_class(path, classes, generator)
    generator = cls.__name__
    inputs = {}
    for attr, decl in _generator_inputs(cls).items():
        if isinstance(decl, hl.InputScalar):
            # A literal, not a Param: call() makes it a Param of the input's name (its value is
            # only a JIT default; the compiled pipeline takes the scalar as an argument), and
            # Halide 21's call() cannot take a Param (it asks Param.defined(), which it lacks).
            t = decl.type()
            inputs[attr] = 0.0 if t.is_float() else (False if t.is_bool() else 0)
        elif decl.dimensions() < 0:
            raise UserProgramError(f"{path}: {generator}'s input {attr!r} declares no dimensions; perfgraph needs them")
        else:
            inputs[attr] = hl.ImageParam(decl.type(), decl.dimensions(), attr)
    # A manual build names no autoscheduler, so generate() applies its own schedule.
    scheduler = hl.AutoschedulerParams("" if manual else "Adams2019")
    try:
        with hl.GeneratorContext(host_target(), scheduler):
            outputs = cls.call(**inputs, generator_params=dict(params))
    except Exception as exc:
        raise UserProgramError(f"{path}: building generator {generator} raised {type(exc).__name__}: {exc}") from None
    outputs = list(outputs) if isinstance(outputs, tuple) else [outputs]
    return _user_program(path, module, outputs, name or user_program_id(f"{path}:{generator}", params))


def _check_estimates(path: Path, pipeline: hl.Pipeline) -> None:
    for arg in pipeline.infer_arguments():
        if arg.kind == hl.ArgumentKind.InputScalar:
            if not arg.argument_estimates.scalar_estimate.defined():
                raise UserProgramError(
                    f"{path}: scalar input {arg.name!r} has no estimate; call set_estimate() on it"
                )
            continue
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
