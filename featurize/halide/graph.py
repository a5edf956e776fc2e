"""The stage graph of a Halide program, as Adams2019 itself sees it.

With ``HL_DEBUG_AUTOSCHEDULE=2`` the Adams2019 autoscheduler prints its
``FunctionDAG``: every node (Func) with its stages, in the order it later
writes the featurization, then every producer -> consumer edge with its load
Jacobians. Parsing that dump gives, for any program (random, zoo or user):

* the node order of ``AutoSchedulerResults.featurization`` -- taken from the
  autoscheduler rather than re-derived, so the mapping cannot drift;
* the real edges with an access-pattern kind read off the Jacobians.

The featurization holds one record per stage of every non-input node, nodes in
dump order, stages of a node in reverse (last update first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from featurize.schema import UserError

_NODE = re.compile(r"^Node: (\S+)\s*$")
_STAGE = re.compile(r"^  Stage (\d+):\s*$")
_LOOP = re.compile(r"^    (\S+) (.*)$")
_REGION_HEAD = re.compile(r"^  (Symbolic region required|Region computed):\s*$")
_REGION_ROW = re.compile(r"^    (.+), (.+)$")
_FLAGS = re.compile(r"^  pointwise: (\d) boundary condition: (\d) wrapper: (\d) input: (\d) output: (\d)")
_EDGE = re.compile(r"^Edge: (\S+) -> (\S+)\s*$")
_FOOT_MAX = re.compile(r"^    Max (\d+): (.*)$")
_FOOT_MIN = re.compile(r"^    Min (\d+): (.*)$")
_MULT = re.compile(r"^  (\d+) x\s*$")
_ROW = re.compile(r"^    \[(.*)\]\s*$")
_OFFSET = re.compile(r"([+-]) (\d+)\)?$")


class DagDumpError(UserError):
    """The autoscheduler's DAG dump is missing or not in the expected form."""


@dataclass
class Stage:
    name: str  # "f" for the pure definition, "f.update(k)" for update k
    func: str
    index: int
    loop_vars: list[str]
    #: each loop's (min, max) expression, in the node's computed region (``f.x.min``, ...)
    loop_bounds: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_reduction_dims(self) -> int:
        return sum("$" in v for v in self.loop_vars)


@dataclass
class Node:
    func: str
    stages: list[Stage] = field(default_factory=list)
    is_input: bool = False
    is_output: bool = False
    #: per dimension, the symbols of the region required of it (``f.x.min``, ``f.x.max``) and
    #: the region computed, as expressions of those (most Funcs compute what is required)
    required_symbols: list[tuple[str, str]] = field(default_factory=list)
    region_computed: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Edge:
    producer: str  # a Func
    consumer: str  # a stage name
    jacobians: list[tuple[int, list[list[Fraction | None]]]] = field(default_factory=list)
    footprint_halo: int = 0
    #: per producer dimension, the (min, max) it reads, as expressions of the consumer stage's
    #: loop bounds (``c.x.min``, ``c.x.max``, ...)
    footprint: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_loads(self) -> int:
        return sum(m for m, _ in self.jacobians)


@dataclass
class Dag:
    nodes: list[Node]
    edges: list[Edge]

    def featurization_stages(self) -> list[Stage]:
        """Stages in the order of the featurization records."""
        return [s for n in self.nodes if not n.is_input for s in reversed(n.stages)]


def stage_name(func: str, index: int) -> str:
    """Halide's name for stage ``index`` of ``func``: "f", "f.update(0)", ..."""
    return func if index == 0 else f"{func}.update({index - 1})"


def _entry(tok: str) -> Fraction | None:
    return None if tok == "_" else Fraction(tok)


def _set_bound(bounds: list[tuple[str, str]], dim: int, side: int, expr: str) -> None:
    while len(bounds) <= dim:
        bounds.append(("_", "_"))
    pair = list(bounds[dim])
    pair[side] = expr
    bounds[dim] = (pair[0], pair[1])


def _split_top_spaces(text: str) -> list[str]:
    """Split at spaces outside parentheses (Halide prints ``(a + b)`` and ``min(a, b)``)."""
    out, depth, cur = [], 0, ""
    for ch in text.strip():
        depth += (ch == "(") - (ch == ")")
        if ch == " " and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [t for t in out + [cur] if t]


def parse_dag_dump(text: str) -> Dag:
    """Parse the ``FunctionDAG::dump`` text out of an autoscheduler log."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    node: Node | None = None
    edge: Edge | None = None
    in_loops = False
    region: list | None = None  # the node's region list being read
    mult = 1
    rows: list[list[Fraction | None]] = []

    def flush_jacobian():
        nonlocal rows, mult
        if edge is not None and rows:
            edge.jacobians.append((mult, rows))
        rows, mult = [], 1

    for line in text.splitlines():
        if m := _NODE.match(line):
            node, edge, in_loops, region = Node(m.group(1)), None, False, None
            nodes.append(node)
        elif node is not None and (m := _REGION_HEAD.match(line)):
            region = node.required_symbols if m.group(1).startswith("Symbolic") else node.region_computed
        elif region is not None and node is not None and (m := _REGION_ROW.match(line)):
            region.append((m.group(1).strip(), m.group(2).strip()))
        elif node is not None and (m := _STAGE.match(line)):
            i = int(m.group(1))
            node.stages.append(Stage(stage_name(node.func, i), node.func, i, []))
            in_loops, region = True, None
        elif m := _FLAGS.match(line):
            if node is not None:
                node.is_input = m.group(4) == "1"
                node.is_output = m.group(5) == "1"
            in_loops = False
        elif m := _EDGE.match(line):
            flush_jacobian()
            node, in_loops = None, False
            edge, region = Edge(m.group(1), m.group(2)), None
            edges.append(edge)
        elif edge is not None:
            if m := _FOOT_MAX.match(line):
                _set_bound(edge.footprint, int(m.group(1)), 1, m.group(2).strip())
                off = _OFFSET.search(m.group(2).strip())
                if off and off.group(1) == "+":
                    edge.footprint_halo += int(off.group(2))
            elif m := _FOOT_MIN.match(line):
                _set_bound(edge.footprint, int(m.group(1)), 0, m.group(2).strip())
                off = _OFFSET.search(m.group(2).strip())
                if off and off.group(1) == "-":
                    edge.footprint_halo += int(off.group(2))
            elif m := _MULT.match(line):
                flush_jacobian()
                mult = int(m.group(1))
            elif m := _ROW.match(line):
                rows.append([_entry(t) for t in m.group(1).split()])
            elif not line.strip():
                flush_jacobian()
            elif not line.startswith(" "):
                flush_jacobian()
                edge = None
        elif in_loops and node is not None and node.stages and (m := _LOOP.match(line)):
            if not line.startswith("    Featurization") and not line.startswith("     "):
                node.stages[-1].loop_vars.append(m.group(1))
                bounds = _split_top_spaces(m.group(2))
                node.stages[-1].loop_bounds.append((bounds[0], bounds[-1]) if len(bounds) == 2 else ("_", "_"))
            if line.startswith("    Featurization"):
                in_loops = False
    flush_jacobian()
    if not nodes:
        raise DagDumpError("no 'Node:' lines in the autoscheduler log (was HL_DEBUG_AUTOSCHEDULE=2 set?)")
    return _strip_uniquifiers(Dag(nodes, edges))


#: A name Halide suffixed with "$N": a Func named as one its process built before.
UNIQUIFIED = re.compile(r"\b[A-Za-z_]\w*\$\d+\b")


def without_uniquifiers(text: str) -> str:
    """``text`` with Halide's "$N" dropped from every name (``conv1$1`` -> ``conv1``)."""
    return UNIQUIFIED.sub(lambda m: m.group(0).rsplit("$", 1)[0], text)


_DOTTED = re.compile(r"([A-Za-z_][\w$]*)(\.[\w$.]+)")


def _strip_uniquifiers(dag: Dag) -> Dag:
    """Drop the "$N" Halide appends to a Func name already used earlier in the process.

    Building the same program twice in one process names its Funcs "conv1", then
    "conv1$1"; the graph should not depend on what the process built before.
    A suffix is kept where dropping it would merge two Funcs of this program.
    """
    base = {n.func: without_uniquifiers(n.func) for n in dag.nodes}
    if len(set(base.values())) != len(base):
        return dag
    def rename(expr: str) -> str:  # "conv1$1.x.min" -> "conv1.x.min"
        return _DOTTED.sub(lambda m: base.get(m.group(1), m.group(1)) + m.group(2), expr)

    def renamed(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(rename(a), rename(b)) for a, b in pairs]

    for n in dag.nodes:
        n.func = base[n.func]
        n.required_symbols, n.region_computed = renamed(n.required_symbols), renamed(n.region_computed)
        for s in n.stages:
            s.func, s.name = n.func, stage_name(n.func, s.index)
            s.loop_bounds = renamed(s.loop_bounds)
    for e in dag.edges:
        e.producer = base.get(e.producer, e.producer)
        func, dot, rest = e.consumer.partition(".")
        e.consumer = base.get(func, func) + dot + rest
        e.footprint = renamed(e.footprint)
    return dag


def classify_jacobian(rows: list[list[Fraction | None]], loop_vars: list[str]) -> str:
    """Access-pattern kind of one load, from its Jacobian.

    Rows are the producer's storage dimensions, columns the consumer stage's
    loop dimensions (reduction variables contain ``$``).
    """
    if any(e is None for r in rows for e in r):
        return "gather"
    n_cols = len(rows[0]) if rows else 0
    is_rvar = [("$" in v) for v in loop_vars[:n_cols]] + [False] * (n_cols - len(loop_vars))
    if any(r[j] != 0 and is_rvar[j] for r in rows for j in range(n_cols)):
        return "reduction"
    entries = [abs(e) for r in rows for e in r if e != 0]
    if any(e > 1 for e in entries):
        return "downsample"
    if any(e < 1 for e in entries):
        return "upsample"
    pure_cols = [j for j in range(n_cols) if not is_rvar[j]]
    used_cols = {j for r in rows for j in pure_cols if r[j] != 0}
    if len(used_cols) < len(pure_cols):
        return "broadcast"
    for i, r in enumerate(rows):
        nz = [j for j in pure_cols if r[j] != 0]
        if nz and pure_cols.index(nz[0]) != i:
            return "transpose"
    return "pointwise"


#: When one edge holds loads of several kinds, the most irregular one names it.
_PRIORITY = ["gather", "reduction", "downsample", "upsample", "transpose", "broadcast", "stencil", "pointwise"]


def edge_kind(edge: Edge, consumer: Stage) -> str:
    kinds = [classify_jacobian(rows, consumer.loop_vars) for _, rows in edge.jacobians]
    if not kinds:
        return "gather"
    kinds = ["stencil" if k == "pointwise" and (edge.n_loads > 1 or edge.footprint_halo > 0) else k for k in kinds]
    return min(kinds, key=_PRIORITY.index)


def max_stride(edge: Edge) -> float:
    vals = [abs(float(e)) for _, rows in edge.jacobians for r in rows for e in r if e is not None]
    return max(vals, default=0.0)
