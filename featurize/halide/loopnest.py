"""Schedule features of any applied Halide schedule, read from the loop nest it lowers to.

Adams2019's featurization is read off its own search state, so only Adams2019 schedules
have one. This module computes the same per-stage schedule features (``ScheduleFeatures``
of ``Featurization.h``, :data:`featurize.halide.features.SCHEDULE_FEATURE_NAMES`) from what
Halide lowers *any* schedule to.

Which Stmt: Halide's lowering log (``HL_DEBUG_CODEGEN=2``) prints the Stmt after every
pass. The one read here is "after computation bounds inference": every split, reorder,
vectorized / unrolled / parallel loop and compute_at / store_at site is there as scheduled,
and every bound is a ``let`` the reader can evaluate -- before sliding window, storage
folding and loop partitioning rewrite the loops (the conceptual Stmt that
``compile_to_conceptual_stmt`` prints comes after those, and Adams2019's model of a schedule
does not know them). A realization's size is the region bounds inference requires there
(Adams2019's, before Halide rounds it up to whole vectors; storage folding ignored).

Bounds that vary from one iteration of a loop to the next (tails) are evaluated at the
loop's middle iteration.

Loads per vector and per scalar come from the program's Adams2019 DAG (its Load Jacobians,
composed through inlined Funcs) and the stage's vectorized loop, as Adams2019 classifies them;
the load footprints (``unique_*_read_*``, ``allocation_bytes_read_per_realization``) from the
DAG's bounds expressions (:class:`Dataflow`) over one tile of the stage at each site.
"""

from __future__ import annotations

import functools
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from featurize.halide.features import SCHEDULE_FEATURE_NAMES
from featurize.halide.graph import UNIQUIFIED, stage_name

#: Features that do not depend on the schedule (Featurization.h calls them "a useful reference"):
#: taken from any Adams2019 featurization of the same program.
SCHEDULE_INVARIANT: tuple[str, ...] = ("points_computed_minimum", "bytes_at_root", "innermost_bytes_at_root",
                                       "native_vector_size")  # fmt: skip

#: The load footprints: the region each load reads at each site (:class:`Dataflow`).
FOOTPRINT_FEATURES: tuple[str, ...] = (
    "unique_bytes_read_per_realization", "unique_lines_read_per_realization", "allocation_bytes_read_per_realization",
    "unique_bytes_read_per_vector", "unique_lines_read_per_vector", "unique_bytes_read_per_task",
    "unique_lines_read_per_task",
)  # fmt: skip

#: The features read from the loop nest and the DAG (every one that depends on the schedule).
LOOP_NEST_FEATURES: tuple[str, ...] = tuple(n for n in SCHEDULE_FEATURE_NAMES if n not in SCHEDULE_INVARIANT)

BOUNDS_PASS = "Lowering after computation bounds inference:"
FLATTENED_PASS = "Lowering after storage flattening:"

_LOOP = re.compile(r"^(for|parallel|vectorized|unrolled|serial)\s*(?:<[^>]*>)?\s*\((.+)\)\s*\{$")
_BLOCK = re.compile(r"^(produce|consume)\s+(\S+)\s*\{$")
_REALIZE = re.compile(r"^realize\s+(\S+)\((.*)\)(?:\s+in\s+\w+)?(?:\s+if\s+.*)?\s*\{$")
_ALLOCATE = re.compile(r"^allocate\s+(\S+)\[(\w+)")
_LET = re.compile(r"^let\s+(\S+)\s*=\s*(.+)$")
_STORE = re.compile(r"^([A-Za-z_][\w.$]*)\((.*)\)\s*=\s*(.+)$")
_TYPE_BITS = re.compile(r"^(?:u?int|float|bool)(\d+)?$")
_NAME = re.compile(r"[A-Za-z_][\w.$]*")
_CAST = re.compile(r"\((?:u?int|float|bool)\d*(?:x\d+)?\)")
_FUNCS = {"min", "max", "select", "likely", "likely_if_innermost", "abs", "and", "or", "not", "in"}


class StmtParseError(ValueError):
    """The lowering log is not in the form this reader expects."""


@dataclass
class Loop:
    var: str
    extent: float  # NaN when not known
    kind: str  # for, parallel, vectorized, unrolled, serial
    holds_production: bool = False  # another Func is computed inside it


@dataclass
class Allocation:
    """A realization: the region required of the Func where it is stored (Adams2019's bounds,
    before Halide rounds it up to whole vectors and tiles)."""

    func: str
    elem_bytes: float
    dims: list[float]  # extents, innermost storage dimension first
    loops: list[Loop]  # the loops around it, outermost first
    names: list[str] = field(default_factory=list)  # the dimensions' names, as dims

    @property
    def bytes(self) -> float:
        return self.elem_bytes * math.prod(self.dims)


@dataclass
class StageNest:
    """A stage as the loop nest computes it."""

    func: str
    stage: int
    outer: list[Loop]  # loops around the Func's produce block
    own: list[Loop]  # this stage's loops inside the block, around its store
    region: dict[str, float] = field(default_factory=dict)  # pure stage: extent computed per production, by dim
    inner_realizations: list[str] = field(default_factory=list)  # Funcs realized inside its production


@dataclass
class LoopNest:
    stages: dict[tuple[str, int], StageNest]
    allocations: dict[str, Allocation]


# -- expressions ---------------------------------------------------------------------------------
def _split_top(text: str, sep: str) -> tuple[str, str] | None:
    """Split at the first ``sep`` outside parentheses and brackets."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            return text[:i], text[i + len(sep) :]
    return None


def evaluate(expr: str, env: dict[str, float]) -> float:
    """An integer expression of the printed Stmt with the names in ``env`` (lets, loop variables);
    NaN when it names anything else (a buffer's stride, a parameter) or cannot be read."""
    text = expr.strip()
    if re.fullmatch(r"-?\d+", text):
        return float(int(text))
    if text.startswith("let "):  # let t = a in b
        head = _split_top(text[4:], " in ")
        if head is None or "=" not in head[0]:
            return math.nan
        name, value = head[0].split("=", 1)
        return evaluate(head[1], {**env, name.strip(): evaluate(value, env)})
    compiled = _compile(text)
    if compiled is None:
        return math.nan
    code, free = compiled
    values = {}
    for i, n in enumerate(free):
        v = env.get(n, math.nan)
        if v != v:
            return math.nan
        values[f"_v{i}"] = v
    try:
        return float(eval(code, _EVAL_FUNCS, values))  # noqa: S307 - names replaced, operators checked
    except (ArithmeticError, TypeError, NameError):
        return math.nan


_EVAL_FUNCS = {"__builtins__": {}, "min": min, "max": max, "abs": abs, "likely": lambda x: x,
               "likely_if_innermost": lambda x: x, "select": lambda c, a, b: a if c else b}  # fmt: skip


@functools.lru_cache(maxsize=65536)
def _compile(text: str):
    """``text`` as Python code over placeholders ``_v0, _v1, ...`` and the names they stand for
    (None when it holds anything but integer arithmetic, comparisons and min/max/select)."""
    text = _CAST.sub("", text)
    free = sorted(set(_NAME.findall(text)) - _FUNCS, key=len, reverse=True)
    for i, n in enumerate(free):
        text = re.sub(rf"(?<![\w.$]){re.escape(n)}(?![\w.$])", f"_v{i}", text)
    text = text.replace("&&", " and ").replace("||", " or ").replace("/", "//")
    text = re.sub(r"!(?!=)", " not ", text)
    if not re.fullmatch(r"[\w\s+\-*/%().,<>=!]*", text):
        return None
    try:
        return compile(text, "<stmt>", "eval"), tuple(free)
    except SyntaxError:
        return None


# -- the lowering log ----------------------------------------------------------------------------
def lowering_passes(log: str, names: tuple[str, ...] = (BOUNDS_PASS, FLATTENED_PASS)) -> dict[str, str]:
    """The Stmt text printed after each named lowering pass (the last printing of each)."""
    out: dict[str, str] = {}
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Lowering after")]
    for k, i in enumerate(starts):
        if lines[i].strip() in names:
            end = starts[k + 1] if k + 1 < len(starts) else len(lines)
            out[lines[i].strip()] = "\n".join(lines[i + 1 : end])
    missing = [n for n in names if n not in out]
    if missing:
        raise StmtParseError(f"the lowering log has no {missing} (was HL_DEBUG_CODEGEN=2 set before Halide started?)")
    return out


def _walk(text: str):
    """Yield (line, kind, match, env, stack) for each statement, keeping lets and loop
    variables (at their middle iteration) in scope; ``stack`` holds the open blocks."""
    stack: list[tuple[str, object]] = []
    envs: list[dict[str, float]] = [{}]
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        env = envs[-1]
        if line.startswith("}"):
            if not stack:
                raise StmtParseError(f"unbalanced '}}' in {line!r}")
            stack.pop()
            envs.pop()
            if line.endswith("{"):  # } else {
                stack.append(("other", None))
                envs.append(dict(envs[-1]))
            continue
        if m := _LOOP.match(line):
            parts = [p.strip() for p in _split_args(m.group(2))]
            lo, extent = evaluate(parts[1], env), evaluate(parts[2], env)
            loop = Loop(parts[0], extent, m.group(1))
            yield line, "loop", loop, env, stack
            inner = dict(env)
            inner[parts[0]] = lo + (extent - 1) // 2 if extent == extent and lo == lo else math.nan
            stack.append(("loop", loop))
            envs.append(inner)
            continue
        kind, what = "other", None
        if m := _BLOCK.match(line):
            kind, what = m.group(1), m.group(2)
        elif m := _REALIZE.match(line):
            kind, what = "realize", m
        if line.endswith("{"):
            yield line, kind, what, env, stack
            stack.append((kind, what))
            envs.append(dict(env))
            continue
        if m := _LET.match(line):
            env[m.group(1)] = evaluate(m.group(2), env)
            continue
        yield line, "statement", None, env, stack
    if stack:
        raise StmtParseError(f"{len(stack)} block(s) left open at the end")


def _split_args(text: str) -> list[str]:
    """Split a call's arguments at top-level commas."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def _type_bytes(type_name: str) -> float:
    m = _TYPE_BITS.match(type_name)
    if not m:
        return math.nan
    return max(1, int(m.group(1) or 1) // 8)


def _stage_of(var: str, func: str) -> int | None:
    """``f.s1.x.xo`` -> 1 for Func ``f``; None for another Func's loop."""
    prefix = f"{func}.s"
    if not var.startswith(prefix):
        return None
    m = re.match(r"(\d+)\.", var[len(prefix) :])
    return int(m.group(1)) if m else None


def parse_lowering(passes: dict[str, str]) -> LoopNest:
    """Stages, loops and realizations of a pipeline from its lowering log's passes
    (:func:`lowering_passes`)."""
    elem = {m.group(1): _type_bytes(m.group(2)) for line in passes[FLATTENED_PASS].splitlines()
            if (m := _ALLOCATE.match(line.strip()))}  # fmt: skip
    stages: dict[tuple[str, int], StageNest] = {}
    allocations: dict[str, Allocation] = {}
    for line, kind, what, env, stack in _walk(passes[BOUNDS_PASS]):
        if kind == "realize":
            func = what.group(1)
            loops = [v for k, v in stack if k == "loop"]
            dims, names = _required_region(func, what.group(2), env)
            allocations[func] = Allocation(func, elem.get(func, math.nan), dims, loops, names)
        elif kind == "produce":
            for k, v in stack:
                if k == "loop":
                    v.holds_production = True
        elif kind == "statement" and (m := _STORE.match(line)):
            _record_store(stages, stack, env, m.group(1))
    for (func, _), nest in stages.items():
        nest.inner_realizations = [a for a, alloc in allocations.items()
                                   if a != func and any(l in nest.own for l in alloc.loops)]  # fmt: skip
    return LoopNest(stages, allocations)


def _required_region(func: str, realize_args: str, env: dict[str, float]) -> tuple[list[float], list[str]]:
    """Extents of the region of ``func`` required where it is realized, in its storage order
    (the realize's dimensions; bounds inference's ``func.s0.<dim>.min/max`` lets in scope)."""
    dims = re.findall(rf"\[{re.escape(func)}\.([^.\]]+)\.min_realized", realize_args)
    return [env.get(f"{func}.s0.{d}.max", math.nan) - env.get(f"{func}.s0.{d}.min", math.nan) + 1 for d in dims], dims


def _record_store(stages: dict, stack: list, env: dict, func: str) -> None:
    produce_at = next((i for i in range(len(stack) - 1, -1, -1) if stack[i] == ("produce", func)), None)
    if produce_at is None:
        return  # a store outside its produce block (e.g. an extern's): not a stage's
    own = [v for k, v in stack[produce_at + 1 :] if k == "loop" and _stage_of(v.var, func) is not None]
    stage = next((_stage_of(v.var, func) for v in reversed(own)), 0)
    if (func, stage) in stages:
        return
    own = [v for v in own if _stage_of(v.var, func) == stage]
    region = {}
    if stage == 0:  # the region one production computes: the pure stage's loop extents, by dimension
        for name, value in env.items():
            m = re.fullmatch(rf"{re.escape(func)}\.s0\.([^.]+)\.loop_extent", name)
            if m:
                region[m.group(1)] = value
    stages[(func, stage)] = StageNest(func, stage, [v for k, v in stack[:produce_at] if k == "loop"], own, region)


def _dim(var: str, func: str, stage: int) -> str:
    """The Func dimension (or RVar) a loop of the stage iterates: ``f.s0.x.xo.xi`` -> ``x``."""
    return var[len(f"{func}.s{stage}.") :].split(".")[0]


# -- features ------------------------------------------------------------------------------------
def stage_features(nest: LoopNest, func: str, stage: int, pure_dims: list[str],
                   outputs: dict[str, Allocation]) -> dict[str, float]:  # fmt: skip
    """Schedule features of one stage (NaN where not read from the loop nest).

    ``pure_dims``: the Func's arguments, innermost first (loops over anything else are
    reduction loops). ``outputs``: the pipeline's output buffers, which Halide does not
    realize, as allocations at the root.
    """
    feat = dict.fromkeys(SCHEDULE_FEATURE_NAMES, math.nan)
    s = nest.stages.get((func, stage))
    alloc = nest.allocations.get(func) or outputs.get(func)
    if s is None or alloc is None:
        return feat

    def prod(values) -> float:
        return float(math.prod(values))

    vector = [l for l in s.own if l.kind == "vectorized"]
    lanes = prod(l.extent for l in vector) if vector else 1.0
    num_productions = prod(l.extent for l in s.outer)
    per_production = prod(l.extent for l in s.own)
    num_realizations = prod(l.extent for l in alloc.loops)
    # Adams2019 counts the points of a realization's region once (productions that overlap,
    # as a sliding window's do, are not billed twice): the region, times the reduction loops
    reduction = prod(l.extent for l in s.own if _dim(l.var, func, stage) not in pure_dims and l.kind != "vectorized")
    total = num_realizations * prod(alloc.dims) * (reduction if stage > 0 else 1.0)
    level = _innermost_level(s)
    region = [s.region.get(d, math.nan) for d in pure_dims] if stage == 0 else []
    # the innermost dimension, as Adams2019 takes it: the vectorized one (else the first)
    v = _vectorized_dim(s) or (pure_dims[0] if pure_dims else None)
    extents = dict(zip(alloc.names or pure_dims, alloc.dims))
    innermost_realization = alloc.elem_bytes * extents.get(v, 1.0)
    feat.update(
        num_realizations=num_realizations,
        num_productions=num_productions,
        points_computed_per_production=per_production,
        points_computed_total=total,
        points_computed_per_realization=total / num_realizations,
        innermost_loop_extent=prod(l.extent for l in level),
        innermost_pure_loop_extent=prod(l.extent for l in level if _dim(l.var, func, stage) in pure_dims),
        unrolled_loop_extent=prod(l.extent for l in s.own if l.kind == "unrolled"),
        inner_parallelism=prod(l.extent for l in s.own if l.kind == "parallel"),
        outer_parallelism=prod(l.extent for l in s.outer if l.kind == "parallel"),
        bytes_at_realization=alloc.bytes,
        innermost_bytes_at_realization=innermost_realization,
        bytes_at_production=alloc.elem_bytes * prod(region) if region else math.nan,
        innermost_bytes_at_production=alloc.elem_bytes * s.region.get(v, math.nan) if region else math.nan,
        inlined_calls=0.0,
        vector_size=lanes,
        **_vectors_and_scalars(s, alloc, pure_dims, num_realizations, reduction, lanes, total),
        working_set=math.nan,  # program_features: the productions of what is stored inside
    )
    # one task's share (a stage computed inside another's task holds all of its own)
    at_root = not s.outer
    feat["bytes_at_task"] = alloc.bytes / (feat["inner_parallelism"] if at_root else 1.0)
    feat["innermost_bytes_at_task"] = (min(innermost_realization, feat["bytes_at_task"]) if at_root
                                       else innermost_realization)  # fmt: skip
    return feat


def _vectorized_dim(s: StageNest) -> str | None:
    """The dimension the stage's innermost vectorized loop runs along (None: not vectorized)."""
    vector = [l for l in s.own if l.kind == "vectorized"]
    return _dim(vector[-1].var, s.func, s.stage) if vector else None


def _innermost_level(s: StageNest) -> list[Loop]:
    """Adams2019's innermost loop level of a stage: its loops inside the last one that holds
    another Func's production, vector lanes aside."""
    last = max((i for i, l in enumerate(s.own) if l.holds_production), default=-1)
    return [l for l in s.own[last + 1 :] if l.kind != "vectorized"]


def _vectors_and_scalars(s: StageNest, alloc: Allocation, pure_dims: list[str], num_realizations: float,
                         reduction: float, lanes: float, total: float) -> dict[str, float]:  # fmt: skip
    """Whole vectors and leftover scalars over the realizations' regions, as Adams2019 counts
    them: along the vectorized dimension, extent // lanes vectors and extent % lanes scalars."""
    v = _vectorized_dim(s)
    if lanes <= 1 or v is None:
        return {"num_vectors": 0.0, "num_scalars": total}
    extents = dict(zip(alloc.names or pure_dims, alloc.dims))
    if v not in extents:
        return {"num_vectors": total / lanes, "num_scalars": 0.0}
    others = math.prod(e for d, e in extents.items() if d != v) * (reduction if s.stage > 0 else 1.0)
    return {"num_vectors": num_realizations * others * (extents[v] // lanes),
            "num_scalars": num_realizations * others * (extents[v] % lanes)}


def _consumer_key(stage_name: str) -> tuple[str, int]:
    """``f`` -> (f, 0); ``f.update(k)`` -> (f, k + 1)."""
    m = re.fullmatch(r"(.+)\.update\((\d+)\)", stage_name)
    return (m.group(1), int(m.group(2)) + 1) if m else (stage_name, 0)


def program_features(nest: LoopNest, dag, outputs: dict[str, Allocation],
                     invariant: list[dict[str, float]] | None = None,
                     input_bytes: dict[str, float] | None = None) -> list[dict[str, float]]:  # fmt: skip
    """Schedule features of every stage, in the featurization's order (``dag``:
    :class:`featurize.halide.graph.Dag`, the program's Adams2019 DAG).

    A Func Halide inlined has no loops: as Adams2019 does, it is billed to its consumers --
    its calls (the DAG's loads of it, times the points its consumers compute), their vectors
    and scalars, the narrowest vector width and innermost pure extent among them.
    ``invariant``: a featurization of the same program (any schedule), rows in the same
    order, for the schedule-independent features (:data:`SCHEDULE_INVARIANT`). ``input_bytes``:
    bytes per element of each input buffer, for the load footprints.
    """
    pure = {n.func: n.stages[0].loop_vars for n in dag.nodes}
    feats: dict[tuple[str, int], dict[str, float]] = {}
    for node in dag.nodes:  # consumers before producers
        if node.is_input:
            continue
        for st in node.stages:
            feats[(node.func, st.index)] = stage_features(nest, node.func, st.index, pure[node.func], outputs)
        for st in node.stages[1:]:  # a production computes one region of the Func, for all its stages
            for name in ("bytes_at_production", "innermost_bytes_at_production"):
                feats[(node.func, st.index)][name] = feats[(node.func, 0)][name]
        if (node.func, 0) in nest.stages or len(node.stages) != 1:
            continue
        f = dict.fromkeys(SCHEDULE_FEATURE_NAMES, 0.0)
        f["vector_size"] = f["innermost_pure_loop_extent"] = math.inf
        for edge in (e for e in dag.edges if e.producer == node.func):
            c = feats.get(_consumer_key(edge.consumer))
            if c is None:
                continue
            calls = edge.n_loads
            points = c["inlined_calls"] if c["inlined_calls"] > 0 else c["points_computed_total"]
            f["inlined_calls"] += calls * points
            f["num_vectors"] += calls * c["num_vectors"]
            f["num_scalars"] += calls * c["num_scalars"]
            f["vector_size"] = min(f["vector_size"], c["vector_size"])
            f["innermost_pure_loop_extent"] = min(f["innermost_pure_loop_extent"], c["innermost_pure_loop_extent"])
            f["outer_parallelism"] = c["outer_parallelism"] * c["inner_parallelism"]
        f["inner_parallelism"] = 1.0  # its working sets: _working_sets
        for k in ("vector_size", "innermost_pure_loop_extent"):
            f[k] = f[k] if math.isfinite(f[k]) else math.nan
        feats[(node.func, 0)] = f
    for (func, index), nest_stage in nest.stages.items():
        if (func, index) in feats:  # the bytes of one production of each Func stored inside
            feats[(func, index)]["working_set"] = sum(feats.get((g, 0), {}).get("bytes_at_production", math.nan)
                                                      for g in nest_stage.inner_realizations)  # fmt: skip
    _load_counts(nest, dag, feats, pure)
    _working_sets(nest, feats, outputs)
    _footprints(nest, dag, feats, pure, outputs, input_bytes or {})
    rows = [feats[(st.func, st.index)] for st in dag.featurization_stages()]
    if invariant is not None:
        for row, ref in zip(rows, invariant):
            for name in SCHEDULE_INVARIANT:
                row[name] = ref[name]
    return rows


def _edges_into(dag) -> dict[str, list]:
    """The DAG's edges by consumer stage name."""
    into: dict[str, list] = {}
    for e in dag.edges:
        into.setdefault(e.consumer, []).append(e)
    return into


def _vector_dim_index(nest: LoopNest, pure: dict[str, list[str]], func: str) -> int:
    """The pure dimension a Func's production is vectorized along, as Adams2019's ``vector_dim``
    (0 where it is not vectorized, or an input)."""
    d = _vectorized_dim(nest.stages[(func, 0)]) if (func, 0) in nest.stages else None
    return pure[func].index(d) if func in pure and d in pure[func] else 0


def _matmul(a: list[list], b: list[list]) -> list[list]:
    """``a @ b`` of Load Jacobians whose unknown entries are None (0 times unknown is 0)."""
    out = []
    for row in a:
        new = []
        for j in range(len(b[0]) if b else 0):
            total = 0
            for k, x in enumerate(row):
                y = b[k][j]
                if x == 0 or y == 0:
                    continue
                if x is None or y is None or total is None:
                    total = None
                    continue
                total += x * y
            new.append(total)
        out.append(new)
    return out


def _load_counts(nest: LoopNest, dag, feats: dict, pure: dict[str, list[str]]) -> None:
    """Loads per vector and per scalar of each computed stage, as Adams2019 counts them from the
    DAG's Load Jacobians (composed through inlined Funcs) and the stage's vectorized loop:
    broadcasts, dense and stride-2/3/4 vector loads, gathers; an update also loads itself."""
    nodes = {n.func: n for n in dag.nodes}
    stages = {st.name: st for n in dag.nodes for st in n.stages}
    inlined = {f for f, n in nodes.items() if not n.is_input and (f, 0) not in nest.stages}
    into = _edges_into(dag)

    for (func, index), nest_stage in nest.stages.items():
        feat, st = feats.get((func, index)), stages.get(stage_name(func, index))
        if feat is None or st is None:
            continue
        vec_dim = _vectorized_dim(nest_stage)
        v = st.loop_vars.index(vec_dim) if vec_dim in st.loop_vars else -1
        # (count, jacobian rows: producer dims x this stage's loops, producer), through inlined Funcs
        pending = [(m, rows, e.producer) for e in into.get(st.name, []) for m, rows in e.jacobians]
        loads = []
        while pending:
            m, rows, producer = pending.pop()
            if producer not in inlined:
                loads.append((m, rows, producer))
                continue
            for e in into.get(producer, []):  # the inlined Func's own loads, seen from this stage
                for m2, rows2 in e.jacobians:
                    pending.append((m * m2, _matmul(rows2, rows), e.producer))
        n = {"loads": 0.0, "broadcast": 0.0, "dense": 0.0, 2: 0.0, 3: 0.0, 4: 0.0, "gather": 0.0}
        # an unrolled block reuses a load that does not move along its pure loops (LICM)
        block: dict[str, float] = {}
        for loop in _innermost_level(nest_stage):
            d = _dim(loop.var, func, index)
            block[d] = block.get(d, 1.0) * loop.extent
        for m, rows, producer in loads:
            if feat["unrolled_loop_extent"] > 1:
                for j, d in enumerate(st.loop_vars):
                    if d in pure[func] and all(j < len(r) and r[j] == 0 for r in rows):
                        m = m / block.get(d, 1.0)
            inner = 0 if nodes[producer].is_input else _vector_dim_index(nest, pure, producer)
            if v >= 0:
                strides = [r[v] if v < len(r) else None for r in rows]
                kind = "broadcast" if all(x == 0 for x in strides) else "gather"
                for k in (1, 2, 3, 4):
                    if all((x == k) if i == inner else (x == 0) for i, x in enumerate(strides)):
                        kind = "dense" if k == 1 else k
            else:
                kind = "broadcast"  # Adams2019 classifies nothing in a stage it does not vectorize
            n["loads"] += m
            n[kind] += m
        self_load = 1.0 if index > 0 else 0.0
        feat["vector_loads_per_vector"] = n["dense"] + 2 * n[2] + 3 * n[3] + 4 * n[4] + self_load
        feat["scalar_loads_per_vector"] = n["broadcast"] + feat["vector_size"] * n["gather"]
        feat["scalar_loads_per_scalar"] = n["loads"] + self_load


def _working_sets(nest: LoopNest, feats: dict, outputs: dict[str, Allocation]) -> None:
    """Adams2019's working sets: the bytes one production of each Func stored inside a loop
    level takes, summed, at the stage's task (its outermost loop), production and realization
    sites and at the root."""
    stored = {f: a.loops for f, a in nest.allocations.items()} | {f: [] for f in outputs}

    def production_bytes(f: str) -> float:
        if (f, 0) in feats:
            return feats[(f, 0)]["bytes_at_production"]
        # no stage of the DAG: a copy of an input a schedule realizes (Li2018 does), all at once
        return nest.allocations[f].bytes if f in nest.allocations else 0.0

    def inside(loop: Loop | None) -> float:
        return sum(production_bytes(f) for f, loops in stored.items() if loop is None or any(l is loop for l in loops))

    root = inside(None)
    for key, feat in feats.items():
        if key not in nest.stages:  # inlined: nothing is stored inside it (Adams2019 bills 0), but the root's
            feat.update(working_set_at_task=0.0, working_set_at_production=0.0, working_set_at_realization=0.0,
                        working_set_at_root=root)  # fmt: skip
    for (func, index), s in nest.stages.items():
        feat = feats.get((func, index))
        alloc = nest.allocations.get(func)
        if feat is None:
            continue
        task = s.outer[0] if s.outer else (s.own[0] if s.own else None)
        feat["working_set_at_task"] = inside(task)
        feat["working_set_at_production"] = inside(s.outer[-1]) if s.outer else root
        feat["working_set_at_realization"] = inside(alloc.loops[-1]) if alloc is not None and alloc.loops else root
        feat["working_set_at_root"] = root


Span = tuple[float, float]


def _hull(a: list[Span], b: list[Span]) -> list[Span]:
    """The smallest spans holding both (NaN where either is unknown)."""
    return [(math.nan, math.nan) if math.isnan(x[0]) or math.isnan(y[0]) else (min(x[0], y[0]), max(x[1], y[1]))
            for x, y in zip(a, b)]  # fmt: skip


class Dataflow:
    """Adams2019's bounds relation (its ``LoopNest::get_bounds``): the region of every Func that
    computing one tile of a stage requires, evaluated from the DAG dump's expressions (each
    edge's footprint in the consumer's loop bounds, each node's region computed, each stage's
    loops). At the root, the tile is the outputs' whole region; inside a loop, one
    representative tile, the middle one, as Adams2019 picks it."""

    def __init__(self, dag, outputs: dict[str, Allocation]):
        self.nodes = dag.nodes  # consumers before producers
        self.stages = {st.name: st for n in dag.nodes for st in n.stages}
        self.consumers: dict[str, list] = {}
        for e in dag.edges:
            self.consumers.setdefault(e.producer, []).append(e)
        seed = {n.func: [(0.0, d - 1.0) for d in outputs[n.func].dims] for n in dag.nodes
                if n.is_output and n.func in outputs}  # fmt: skip
        self.root_required, self.root_loops = self._propagate(None, {}, seed)
        self._cache: dict = {}

    def _propagate(self, seed_stage: str | None, seed_loops: dict[str, Span], required: dict[str, list[Span]]):
        loops = {seed_stage: seed_loops} if seed_stage else {}
        required = dict(required)
        seed_func = self.stages[seed_stage].func if seed_stage else None
        for node in self.nodes:
            if node.func == seed_func:
                continue
            if node.func not in required:
                region = None
                for e in self.consumers.get(node.func, []):
                    c = loops.get(e.consumer)
                    if c is None:
                        continue
                    prefix = self.stages[e.consumer].func
                    env = {f"{prefix}.{v}.{side}": x for v, span in c.items() for side, x in zip(("min", "max"), span)}
                    fp = [(evaluate(a, env), evaluate(b, env)) for a, b in e.footprint]
                    region = fp if region is None else _hull(region, fp)
                if region is None:
                    continue  # nothing inside the tile reads it
                required[node.func] = region
            env = {sym: x for syms, span in zip(node.required_symbols, required[node.func]) for sym, x in zip(syms, span)}
            computed = [(evaluate(a, env), evaluate(b, env)) for a, b in node.region_computed] or required[node.func]
            env = {sym: x for syms, span in zip(node.required_symbols, computed) for sym, x in zip(syms, span)}
            for st in node.stages:
                loops[st.name] = {v: (evaluate(a, env), evaluate(b, env)) for v, (a, b) in zip(st.loop_vars, st.loop_bounds)}
        return required, loops

    def required_by_tile(self, stage: str, extents: dict[str, float]) -> dict[str, list[Span]]:
        """The region of each Func upstream of ``stage`` that one tile of it requires, the tile
        ``extents[v]`` points along each loop ``v`` (1 along the others)."""
        key = (stage, tuple(sorted(extents.items())))
        if key not in self._cache:
            tile = {}
            for v, (lo, hi) in self.root_loops.get(stage, {}).items():
                e = max(1.0, min(extents.get(v, 1.0), hi - lo + 1))
                start = lo + ((hi - lo + 1) // e // 2) * e if e == e else math.nan
                tile[v] = (start, start + e - 1)
            self._cache[key] = self._propagate(stage, tile, {})[0]
        return self._cache[key]


def _footprints(nest: LoopNest, dag, feats: dict, pure: dict[str, list[str]], outputs: dict[str, Allocation],
                input_bytes: dict[str, float]) -> None:  # fmt: skip
    """Adams2019's load footprints of each computed stage: the bytes and lines (contiguous runs
    along the producer's vectorized dimension) it reads from the Funcs it loads, looking
    through inlined ones, per realization (the region required where it is stored; a producer
    realized more often than it is, its whole realization; ``allocation_bytes`` the producer's
    production), per vector, and per task for a stage at the root (the Funcs stored at the root
    that its task's computation reads)."""
    flow = Dataflow(dag, outputs)
    nodes = {n.func: n for n in dag.nodes}
    into = _edges_into(dag)
    owner = {id(loop): (s, i) for s in nest.stages.values() for i, loop in enumerate(s.own)}

    def elem(f: str) -> float:
        alloc = nest.allocations.get(f) or outputs.get(f)
        if alloc is not None:
            return alloc.elem_bytes
        return input_bytes.get(f, input_bytes.get(f.removesuffix("_im"), math.nan))  # an ImageParam's Func: "<name>_im"

    def stored_at_root(f: str) -> bool:
        return nodes[f].is_input or f in outputs or (f in nest.allocations and not nest.allocations[f].loops)

    def bytes_and_lines(f: str, region: list[Span] | None) -> tuple[float, float]:
        if region is None:
            return math.nan, math.nan
        extents = [hi - lo + 1 for lo, hi in region]
        lines = math.prod(e for i, e in enumerate(extents) if i != _vector_dim_index(nest, pure, f))
        return elem(f) * math.prod(extents), float(lines)

    def loaded(stage: str) -> list[str]:
        """The non-inlined Funcs a stage loads, through the Funcs inlined into it."""
        out, pending = [], [stage]
        while pending:
            for e in into.get(pending.pop(), []):
                if (e.producer, 0) in nest.stages or nodes[e.producer].is_input:
                    out += [] if e.producer in out else [e.producer]
                else:
                    pending.append(stage_name(e.producer, 0))
        return out

    def tile_inside(loop: Loop) -> tuple[str, dict[str, float]] | None:
        """The stage a loop belongs to and the extents of one iteration's tile of it."""
        if id(loop) not in owner:
            return None
        s, i = owner[id(loop)]
        extents: dict[str, float] = {}
        for l in s.own[i + 1 :]:
            d = _dim(l.var, s.func, s.stage)
            extents[d] = extents.get(d, 1.0) * l.extent
        return stage_name(s.func, s.stage), extents

    for (func, index), s in nest.stages.items():
        feat = feats.get((func, index))
        alloc = nest.allocations.get(func) or outputs.get(func)
        if feat is None or alloc is None:
            continue
        name = stage_name(func, index)
        producers = loaded(name)
        # per realization: at the store site
        site = tile_inside(alloc.loops[-1]) if alloc.loops else None
        required = flow.root_required if not alloc.loops else flow.required_by_tile(*site) if site else {}
        total = {"bytes": 0.0, "lines": 0.0, "allocation": 0.0}
        for p in producers:
            producer = feats.get((p, 0), {})
            p_alloc = nest.allocations.get(p)
            if p_alloc is not None and producer.get("num_realizations", 0) > feat["num_realizations"]:
                v = pure[p][_vector_dim_index(nest, pure, p)] if pure.get(p) else None  # nested inside: its whole realization
                b, l = p_alloc.bytes, math.prod(e for n, e in zip(p_alloc.names, p_alloc.dims) if n != v)
            else:
                b, l = bytes_and_lines(p, required.get(p))
            total["bytes"] += b
            total["lines"] += l
            total["allocation"] += (producer["bytes_at_production"] if producer
                                    else bytes_and_lines(p, flow.root_required.get(p))[0])  # fmt: skip
        if index > 0:  # an update also reads what the production computed so far
            total["bytes"] += feat["bytes_at_production"]
            total["lines"] += feat["bytes_at_production"] / feat["innermost_bytes_at_production"]
            total["allocation"] += feat["bytes_at_production"]
        feat["unique_bytes_read_per_realization"] = total["bytes"]
        feat["unique_lines_read_per_realization"] = total["lines"]
        feat["allocation_bytes_read_per_realization"] = total["allocation"]
        # per vector: one vector of the stage
        v = _vectorized_dim(s)
        required = flow.required_by_tile(name, {v: feat["vector_size"]} if v else {})
        per_vector = [bytes_and_lines(p, required.get(p)) for p in producers]
        feat["unique_bytes_read_per_vector"] = sum(b for b, _ in per_vector)
        feat["unique_lines_read_per_vector"] = sum(l for _, l in per_vector)
        # per task: a stage at the root, one iteration of its parallel loops
        feat["unique_bytes_read_per_task"] = feat["unique_lines_read_per_task"] = 0.0
        if s.outer or not s.own:
            continue
        last_parallel = max((i for i, l in enumerate(s.own) if l.kind == "parallel"), default=0)
        extents = tile_inside(s.own[last_parallel])[1]
        required = flow.required_by_tile(name, extents)
        pending, done = list(into.get(name, [])), set()
        while pending:
            e = pending.pop()
            if e.producer in done:
                continue
            done.add(e.producer)
            if stored_at_root(e.producer):
                b, l = bytes_and_lines(e.producer, required.get(e.producer))
                feat["unique_bytes_read_per_task"] += b
                feat["unique_lines_read_per_task"] += l
            else:  # computed inside the task, or inlined: what it reads
                pending += [e2 for st in nodes[e.producer].stages for e2 in into.get(st.name, [])]


def lowering_log(pipeline, output_shapes: list[tuple[int, ...]], target) -> str:
    """Lower ``pipeline`` (scheduled) with every output's bounds fixed to ``output_shapes``
    (mins 0) and return Halide's lowering log. The process must have started with
    ``HL_DEBUG_CODEGEN=2`` (Halide reads it once); Halide writes the log to stderr, which is
    captured at the file-descriptor level."""
    import halide as hl

    for func, shape in zip(pipeline.outputs(), output_shapes):
        buf = func.output_buffer()
        for d, extent in enumerate(shape):
            buf.dim(d).set_bounds(0, int(extent))
    with tempfile.TemporaryDirectory() as tmp:
        log_path, stmt = Path(tmp) / "lowering.log", Path(tmp) / "pipeline.stmt"
        saved = os.dup(2)
        try:
            with open(log_path, "w") as log:
                os.dup2(log.fileno(), 2)
                pipeline.compile_to_conceptual_stmt(str(stmt), pipeline.infer_arguments(), hl.StmtOutputFormat.Text,
                                                    target)  # fmt: skip
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        return log_path.read_text(errors="replace")


def _lower_in_this_process(entry: dict, autoscheduler: str, params: dict,
                           output_shapes: list[list[int]] | None = None) -> dict:  # fmt: skip
    """Build, schedule and lower one program here (the process runs with HL_DEBUG_CODEGEN=2)."""
    from pipelines.halide.autoschedule import autoschedule, host_target
    from pipelines.halide.programs import load_program
    from pipelines.halide.samplers import MANUAL

    program = load_program(entry, manual=autoscheduler == MANUAL)
    schedule, featurization = "", b""
    if autoscheduler != MANUAL:
        schedule, featurization = autoschedule(program.pipeline, autoscheduler, params)
    shapes = program.output_shapes or output_shapes or []
    log = lowering_log(program.pipeline, shapes, host_target())
    outputs = [[f.name(), f.type().bits() // 8, list(shape)] for f, shape in zip(program.outputs, shapes)]
    inputs = {a.name: max(1, a.type.bits() // 8) for a in program.pipeline.infer_arguments() if a.dimensions > 0}
    return {"passes": lowering_passes(log), "outputs": outputs, "inputs": inputs, "schedule": schedule,
            "featurization": bytes(featurization).hex()}  # fmt: skip


def lower_in_child(entry: dict, autoscheduler: str, params: dict, timeout_s: float = 300.0,
                   output_shapes: list[list[int]] | None = None) -> dict:  # fmt: skip
    """Build ``entry`` (a program entry), schedule it with ``autoscheduler`` and ``params`` (or
    its manual schedule) and lower it with its outputs at their estimates (``output_shapes``
    where the program cannot say: a user's), in a fresh Python started with ``HL_DEBUG_CODEGEN=2``
    (Halide reads it once, when it starts; and a process that has run an autoscheduler keeps
    its log level, so this one stays clean). Returns the passes :func:`parse_lowering` reads,
    the outputs (name, bytes per element, shape), the inputs' bytes per element, the schedule's
    text (empty for a manual one) and the autoscheduler's featurization (bytes; empty but for
    Adams2019)."""
    import json
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as tmp:
        request, reply = Path(tmp) / "request.json", Path(tmp) / "reply.json"
        request.write_text(json.dumps({"entry": entry, "autoscheduler": autoscheduler, "params": params,
                                       "output_shapes": output_shapes}))  # fmt: skip
        env = {**os.environ, "HL_DEBUG_CODEGEN": "2"}
        done = subprocess.run([sys.executable, "-m", "featurize.halide.loopnest", str(request), str(reply)],
                              env=env, capture_output=True, text=True, timeout=timeout_s)  # fmt: skip
        if done.returncode != 0 or not reply.exists():
            said = [line for line in done.stderr.splitlines()
                    if line.strip() and not line.startswith(("Lowering", " "))]  # fmt: skip
            raise RuntimeError(f"{entry.get('program_id')}: lowering {autoscheduler}'s schedule failed "
                               f"(exit {done.returncode}): {said[-1] if said else ''}")  # fmt: skip
        data = json.loads(reply.read_text())
    data["featurization"] = bytes.fromhex(data["featurization"])
    return data


def features_from_lowering(lowered: dict, dag,
                           invariant: list[dict[str, float]] | None = None) -> list[dict[str, float]]:  # fmt: skip
    """:func:`program_features` of what :func:`lower_in_child` returned."""
    rename = _dag_names(lowered["passes"][BOUNDS_PASS], {n.func for n in dag.nodes})
    passes = {k: UNIQUIFIED.sub(lambda m: rename.get(m.group(0), m.group(0)), v) for k, v in lowered["passes"].items()}
    nest = parse_lowering(passes)
    outputs = {rename.get(name, name): Allocation(rename.get(name, name), elem, shape, [])
               for name, elem, shape in lowered["outputs"]}  # fmt: skip
    return program_features(nest, dag, outputs, invariant, lowered.get("inputs"))


def _dag_names(stmt: str, dag_funcs: set[str]) -> dict[str, str]:
    """The DAG's names of the Funcs the Stmt names with Halide's "$N" (a Func named as one the
    process built before: the DAG dump drops it, :func:`featurize.halide.graph.parse_dag_dump`),
    where that names one Func of the DAG and no other Func of the Stmt."""
    found: dict[str, set[str]] = {}
    for token in set(UNIQUIFIED.findall(stmt)):
        found.setdefault(token.rsplit("$", 1)[0], set()).add(token)
    return {next(iter(tokens)): base for base, tokens in found.items()
            if base in dag_funcs and len(tokens) == 1 and f"produce {base} {{" not in stmt}  # fmt: skip


def schedule_features(
    entry: dict, autoscheduler: str, params: dict, dag, invariant: list[dict[str, float]] | None = None,
    timeout_s: float = 300.0,
) -> list[dict[str, float]]:
    """The schedule features of ``entry`` scheduled by ``autoscheduler`` with ``params`` (or its
    manual schedule), one dict per stage in the featurization's order; ``dag`` is its Adams2019
    DAG (:func:`featurize.halide.graph.parse_dag_dump`)."""
    return features_from_lowering(lower_in_child(entry, autoscheduler, params, timeout_s), dag, invariant)


if __name__ == "__main__":
    import json
    import sys

    sys.stdout.flush()
    os.dup2(2, 1)  # Halide's warnings go to stdout; the reply goes to a file
    req = json.loads(Path(sys.argv[1]).read_text())
    reply = _lower_in_this_process(req["entry"], req["autoscheduler"], req["params"], req.get("output_shapes"))
    Path(sys.argv[2]).write_text(json.dumps(reply))
