"""TVM programs and MetaSchedule schedules as perfgraph graph tables.

The graph of a TVM program is read off its TIR (``te.create_prim_func`` of the
workload, before any scheduling):

* **nodes** are the workload's blocks (one per ``te.compute``), in program order;
  inputs (placeholders) are not nodes, as Halide's input images are not stages. The
  ``pf_*`` columns of ``nodes`` are Halide's pipeline features and stay null for TVM.
* **edges** join the block that writes a buffer to every block that loads it. The
  access pattern (``kind``) comes from the load indices, solved as linear forms of
  the consumer's block iterators (:func:`classify_loads`): a load that walks one of
  the consumer's reduction iterators is a ``reduction``; a coefficient above 1 a
  ``downsample``; a consumer iterator the producer lacks a ``broadcast``; a
  permutation a ``transpose``; several loads at constant offsets a ``stencil``; a
  non-linear index a ``gather`` (``upsample`` when it divides by a constant).
* **store features**: TVM's own ``PerStoreFeature`` (164 values per stored buffer,
  :data:`STORE_FEATURE_NAMES`) of every candidate schedule, exactly as MetaSchedule's
  ``XGBModel`` sees them. A schedule adds and removes buffers (``cache_write`` adds
  ``conv2d_global``, ``rfactor`` adds ``*_rf``, inlining removes ``pad``), so each
  feature row is tied to the buffer it stores and, by name, to the workload block it
  derives from (:func:`map_buffers_to_nodes`).

Two tables go beside the eight (their schemas are in :mod:`featurize.schema`, the
feature layout in :mod:`featurize.tvm.features`):

* ``tvm_store_features``: one row per (schedule, stored buffer) with ``psf_*``;
* ``tvm_node_features``: one row per node: iteration extents, output bytes, and the
  ``psf_*`` of the block in the *unscheduled* workload (the TVM analogue of Halide's
  schedule-independent pipeline features).

TVM is imported only by the functions that read TIR; building the dataset tables
from the work files needs polars and pyarrow alone.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import polars as pl

from featurize import schema
from featurize.build import machines_table
from featurize.tvm.features import ARITH_INTENSITY_SAMPLES, BUFFERS_PER_STORE, NUM_STORE_FEATURES, STORE_COLUMNS

# --------------------------------------------------------------------------------------
# Reading TIR
# --------------------------------------------------------------------------------------

_CHILD_FIELDS = (
    "seq", "block", "init", "body", "then_case", "else_case", "value",
    "a", "b", "args", "condition", "true_value", "false_value", "indices",
)  # fmt: skip


def _children(node) -> list:
    out = []
    for name in _CHILD_FIELDS:
        try:
            v = getattr(node, name)
        except Exception:
            continue
        if v is None or isinstance(v, (str, int, float)):
            continue
        if isinstance(v, (list, tuple)) or type(v).__name__ in ("Array", "List"):
            out.extend(x for x in v if hasattr(x, "same_as"))
        elif hasattr(v, "same_as"):
            out.append(v)
    return out


def walk(node) -> Iterable:
    """Every statement and expression under ``node``, in program order (pre-order)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(_children(n)))


def _kind(node) -> str:
    return type(node).__name__


def _is_const(expr) -> bool:
    return _kind(expr) in ("IntImm", "FloatImm")


def _buffer_name(buf) -> str:
    return str(buf.name)


def store_buffers(mod) -> list[str]:
    """Buffers in the order of ``PerStoreFeature``'s rows: each buffer once, at its first
    store of a non-constant value (constant stores, e.g. reduction inits, are skipped)."""
    seen: list[str] = []
    for fn in mod.functions.values():
        body = getattr(fn, "body", None)
        if body is None:
            continue
        for n in walk(body):
            if _kind(n) == "BufferStore" and not _is_const(n.value):
                name = _buffer_name(n.buffer)
                if name not in seen:
                    seen.append(name)
    return seen


def map_buffers_to_nodes(buffers: Sequence[str], node_buffers: Sequence[str]) -> list[int | None]:
    """Node of each scheduled buffer: the workload buffer it is named after.

    MetaSchedule derives names by suffixes (``conv2d_global``, ``dense_rf``): the
    longest workload buffer name that equals the name or prefixes it before ``_``,
    ``.`` or ``:`` wins; ``None`` if there is none."""
    out: list[int | None] = []
    for b in buffers:
        best, best_len = None, -1
        for i, nb in enumerate(node_buffers):
            if (b == nb or (b.startswith(nb) and b[len(nb)] in "_.:")) and len(nb) > best_len:
                best, best_len = i, len(nb)
        out.append(best)
    return out


def _blocks(mod) -> list:
    """The workload's blocks (children of the root block), in program order."""
    from tvm import s_tir

    sch = s_tir.Schedule(mod)
    root = sch.get_sblock("root")
    return [sch.get(rv) for rv in sch.get_child_blocks(root)]


def _dtype_bytes(dtype) -> int:
    import tvm

    try:
        return max(1, tvm.DataType(str(dtype)).bits // 8)
    except Exception:
        return 4


def _int(x) -> int | None:
    try:
        return int(x)
    except (TypeError, ValueError):
        return None


def _linear(expr, ivars) -> tuple[list[int], int] | None:
    """``expr`` as ``sum c_i v_i + c`` over the block iterators, or None if not linear."""
    import tvm.sym

    coeffs = tvm.sym.detect_linear_equation(expr, ivars)
    if len(coeffs) != len(ivars) + 1:
        return None
    vals = [_int(c) for c in coeffs]
    if any(v is None for v in vals):
        return None
    return vals[:-1], vals[-1]


def classify_loads(loads: list[list], ivars: list, reduce_mask: list[bool]) -> dict[str, Any]:
    """Edge attributes from the index expressions of every load of the producer.

    Args:
        loads: per load, the list of index expressions.
        ivars: the consumer block's iterator variables.
        reduce_mask: per iterator, whether it is a reduction iterator.
    """
    jacobians, consts, nonlinear, divides = [], [], False, False
    for idx in loads:
        rows, cs = [], []
        for e in idx:
            lin = _linear(e, ivars)
            if lin is None:
                nonlinear = True
                divides |= any(_kind(n) in ("FloorDiv", "Div") for n in walk(e))
                rows.append(None)
                cs.append(0)
            else:
                rows.append(tuple(lin[0]))
                cs.append(lin[1])
        jacobians.append(tuple(rows))
        consts.append(cs)
    n_dims = len(loads[0]) if loads else 0
    lin_rows = [r for j in jacobians for r in j if r is not None]
    max_stride = float(max((abs(c) for r in lin_rows for c in r), default=0))
    halo = 0
    for d in range(n_dims):
        vals = [c[d] for c in consts]
        halo += max(vals) - min(vals) if vals else 0
    used = [any(r is not None and r[v] != 0 for j in jacobians for r in j) for v in range(len(ivars))]
    if nonlinear:
        kind = "upsample" if divides else "gather"
    elif any(u and red for u, red in zip(used, reduce_mask)):
        kind = "reduction"
    elif max_stride > 1:
        kind = "downsample"
    elif any(not u and not red for u, red in zip(used, reduce_mask)):
        kind = "broadcast"
    else:
        perm_ok = all(sum(1 for c in r if c != 0) == 1 for r in lin_rows)
        order = [next(i for i, c in enumerate(r) if c != 0) for r in lin_rows] if perm_ok else []
        if perm_ok and order != sorted(order):
            kind = "transpose"
        elif len({tuple(c) for c in consts}) > 1:
            kind = "stencil"
        else:
            kind = "pointwise"
    return {
        "kind": kind,
        "n_loads": len(loads),
        "n_jacobians": len(set(jacobians)),
        "max_stride": max_stride,
        "footprint_halo": int(halo),
    }


def workload_graph(mod, op_kinds: dict[str, str], program_id: str) -> dict[str, list[dict]]:
    """Rows of ``nodes``, ``edges`` and (without ``psf_*``) ``tvm_node_features`` of a workload."""
    blocks = _blocks(mod)
    fn = mod["main"]
    outputs = {_buffer_name(p) for p in list(fn.params)[-1:]}
    writer: dict[str, int] = {}
    node_rows, feat_rows, edge_rows = [], [], []
    infos = []
    for i, blk in enumerate(blocks):
        buf = blk.writes[0].source
        bname = _buffer_name(buf)
        writer[bname] = i
        spatial = [iv for iv in blk.iter_vars if int(iv.iter_type) == 0]
        reduce_ = [iv for iv in blk.iter_vars if int(iv.iter_type) != 0]
        sp_ext = math.prod(_int(iv.dom.extent) or 1 for iv in spatial)
        red_ext = math.prod(_int(iv.dom.extent) or 1 for iv in reduce_)
        numel = math.prod(_int(s) or 1 for s in buf.shape)
        loads: dict[str, list] = {}
        for n in walk(blk.body):
            if _kind(n) == "TensorLoad":
                loads.setdefault(_buffer_name(n.source), []).append(list(n.indices))
        infos.append((blk, loads))
        node_rows.append(
            {
                "program_id": program_id,
                "node_id": i,
                "name": str(blk.name_hint),
                "func": bname,
                "stage_index": 0,
                "op_kind": op_kinds.get(str(blk.name_hint), "other"),
                "is_output": bname in outputs,
                "n_loop_dims": len(spatial),
                "n_reduction_dims": len(reduce_),
            }
        )
        feat_rows.append(
            {
                "program_id": program_id,
                "node_id": i,
                "buffer": bname,
                "spatial_extent": sp_ext,
                "reduction_extent": red_ext,
                "output_bytes": numel * _dtype_bytes(buf.dtype),
                "n_reads": len(loads),
            }
        )
    for dst, (blk, loads) in enumerate(infos):
        ivars = [iv.var for iv in blk.iter_vars]
        reduce_mask = [int(iv.iter_type) != 0 for iv in blk.iter_vars]
        for bname, idx_list in loads.items():
            src = writer.get(bname)
            if src is None or src == dst:
                continue  # an input, or the block's own accumulator
            attrs = classify_loads(idx_list, ivars, reduce_mask)
            edge_rows.append(
                {
                    "program_id": program_id,
                    "src": src,
                    "dst": dst,
                    **attrs,
                    "producer_dims": len(idx_list[0]),
                    "consumer_loop_dims": len(ivars),
                }
            )
    edge_rows.sort(key=lambda r: (r["src"], r["dst"]))
    return {"nodes": node_rows, "edges": edge_rows, "node_features": feat_rows}


# --------------------------------------------------------------------------------------
# Features of schedules
# --------------------------------------------------------------------------------------


def extract_store_features(context, schedules: Sequence) -> list[np.ndarray]:
    """``PerStoreFeature`` (default arguments) of each schedule: float32 ``[rows, 164]``."""
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo

    extractor = ms.feature_extractor.PerStoreFeature(
        buffers_per_store=BUFFERS_PER_STORE, arith_intensity_curve_num_samples=ARITH_INTENSITY_SAMPLES
    )
    cands = [
        ms.MeasureCandidate(sch, ArgInfo.from_prim_func(sch.mod["main"])) if not hasattr(sch, "args_info") else sch
        for sch in schedules
    ]
    return [
        t.numpy().astype(np.float32).reshape(-1, NUM_STORE_FEATURES) for t in extractor.extract_from(context, cands)
    ]


def store_rows(
    program_id: str, schedule_id: str, feats: np.ndarray, buffers: Sequence[str], nodes: Sequence[int | None]
) -> pl.DataFrame:
    """``tvm_store_features`` rows of one schedule."""
    n = feats.shape[0]
    base = pl.DataFrame(
        {
            "program_id": [program_id] * n,
            "schedule_id": [schedule_id] * n,
            "store_index": list(range(n)),
            "buffer": list(buffers),
            "node_id": list(nodes),
        },
        schema={
            "program_id": pl.String,
            "schedule_id": pl.String,
            "store_index": pl.Int32,
            "buffer": pl.String,
            "node_id": pl.Int32,
        },
    )
    vals = pl.DataFrame(
        feats.reshape(n, NUM_STORE_FEATURES), schema={c: pl.Float32 for c in STORE_COLUMNS}, orient="row"
    )
    return pl.concat([base, vals], how="horizontal")


# --------------------------------------------------------------------------------------
# Dataset build (from the work directories of `perfgraph tvm-sample` and `perfgraph tvm-bench`)
# --------------------------------------------------------------------------------------


def _decode(blob: bytes, rows: int) -> np.ndarray:
    arr = np.frombuffer(blob or b"", dtype=np.float32)
    if arr.size != rows * NUM_STORE_FEATURES:
        raise schema.SchemaError(f"store features hold {arr.size} values, expected {rows} x {NUM_STORE_FEATURES}")
    return arr.reshape(rows, NUM_STORE_FEATURES)


def graph_tables(graph: dict[str, list[dict]], workload_features: dict[str, list[float]]) -> dict[str, pl.DataFrame]:
    """The ``nodes``, ``edges`` and ``tvm_node_features`` tables of one workload, from
    :func:`workload_graph`'s rows and the unscheduled workload's ``PerStoreFeature`` row per node
    (keyed by node id as a string; a node without one gets nulls)."""
    pnull = {c: None for c in schema.PIPELINE_COLUMNS}
    nf_rows = []
    for r in graph["node_features"]:
        row = workload_features.get(str(r["node_id"]))
        nf_rows.append({**r, **({c: None for c in STORE_COLUMNS} if row is None else dict(zip(STORE_COLUMNS, row)))})
    return {
        "nodes": pl.from_arrow(schema.from_rows("nodes", [{**r, **pnull} for r in graph["nodes"]])),
        "edges": pl.from_arrow(schema.from_rows("edges", graph["edges"])),
        "tvm_node_features": pl.from_arrow(schema.from_rows("tvm_node_features", nf_rows)),
    }


def featurize_program(work_dir: str | os.PathLike) -> dict[str, pl.DataFrame]:
    """All table rows of one program's work directory (without measurements)."""
    work_dir = Path(work_dir)
    prog = json.loads((work_dir / "program.json").read_text())
    pid = prog["program_id"]
    graph = prog["graph"]
    cands = schema.read_table(work_dir / "candidates.parquet", "tvm_candidates")
    programs = schema.from_rows(
        "programs",
        [
            {
                "program_id": pid,
                "compiler": "tvm",
                "origin": prog["origin"],
                "generator_seed": prog["seed"],
                "generator_params": json.dumps({"spec": prog["spec"], "params": prog["params"]}, sort_keys=True),
                "source": prog["source"],
                "description": prog["description"],
                "n_nodes": len(graph["nodes"]),
                "n_edges": len(graph["edges"]),
                "n_inputs": prog["n_inputs"],
                "output_shape": json.dumps(prog["output_shape"]),
            }
        ],
    )
    graph_frames = graph_tables(graph, prog["workload_features"])
    sched = pl.from_arrow(cands.select(schema.TABLES["schedules"].names).to_arrow())
    frames = []
    for c in cands.filter(pl.col("has_featurization")).iter_rows(named=True):
        bufs = json.loads(c["store_buffers"])
        feats = _decode(c["store_features"], len(bufs))
        frames.append(store_rows(pid, c["schedule_id"], feats, bufs, json.loads(c["store_nodes"])))
    empty = pl.from_arrow(schema.from_rows("tvm_store_features", []))
    store = pl.concat([empty] + [f.select(empty.columns).cast(empty.schema) for f in frames]) if frames else empty
    return {"programs": pl.from_arrow(programs), **graph_frames, "schedules": sched, "tvm_store_features": store}


def featurize_dataset(
    work_dirs: Sequence[str | os.PathLike], retime_path: str | os.PathLike | None, out_dir: str | os.PathLike
) -> dict[str, int]:
    """Write the ten tables of a TVM dataset (the eight of :mod:`featurize.schema` plus
    ``tvm_store_features`` and ``tvm_node_features``) to ``out_dir``."""
    parts: dict[str, list[pl.DataFrame]] = {}
    meas, samples, machines = [], [], {}
    for wd in work_dirs:
        wd = Path(wd)
        for name, frame in featurize_program(wd).items():
            parts.setdefault(name, []).append(frame)
        meas.append(schema.read_table(wd / "measurements.parquet", "measurements"))
        samples.append(schema.read_table(wd / "timing_samples.parquet", "timing_samples"))
        m = json.loads((wd / "machine.json").read_text())
        machines[m["machine_id"]] = m
    if retime_path is not None and Path(retime_path).exists():
        meas.append(schema.read_table(retime_path, "measurements"))
        samples.append(schema.read_table(Path(retime_path).with_name("retime_samples.parquet"), "timing_samples"))
    out_dir = Path(out_dir)
    tables = {name: pl.concat(frames, how="vertical_relaxed") for name, frames in parts.items()}
    tables["measurements"] = pl.concat(meas) if meas else pl.from_arrow(schema.from_rows("measurements", []))
    tables["timing_samples"] = pl.concat([pl.from_arrow(schema.from_rows("timing_samples", [])), *samples])
    tables["node_schedule_features"] = pl.from_arrow(schema.from_rows("node_schedule_features", []))
    tables["machines"] = machines_table(machines, tables["timing_samples"])
    counts = {}
    for name in schema.TABLE_NAMES:
        schema.write_table(name, tables[name], schema.table_path(out_dir, name))
        counts[name] = tables[name].height
    for name in schema.TVM_TABLE_NAMES:
        schema.write_table(name, tables[name], schema.table_path(out_dir, name))
        counts[name] = tables[name].height
    return counts
