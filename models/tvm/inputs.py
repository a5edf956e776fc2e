"""TVM's side of the model inputs: a TVM dataset's tables to :class:`models.data.ProgramData`.

A TVM dataset (``results/tvm_<dataset>/``, built by ``perfgraph tvm-sample`` and the other
``tvm-*`` stages) holds the seven perfgraph tables plus ``tvm_store_features`` and
``tvm_node_features`` (:mod:`featurize.tvm.graph`). Its nodes are the workload blocks,
its edges producer -> consumer with the shared edge features (:func:`models.data.edge_features`).
:class:`TVMProgram` keeps each schedule's ``PerStoreFeature`` rows as they are (TVM's
XGBModel reads them, :mod:`models.tvm.xgbmodel`); :func:`to_program_data` turns them into
the node features the GNNs read:

- program part (:data:`NODE_DIM`): op-kind one-hot, output flag, loop and reduction
  dimensions, ``log2(1 + x)`` of spatial extent, reduction extent, output bytes,
  buffers read, and the unscheduled block's ``PerStoreFeature`` row;
- schedule part (:data:`SCHED_DIM`): the block's store rows in this schedule (a
  schedule may split a block's work over several buffers, e.g. ``conv2d`` and
  ``conv2d_global``, or inline it away): the row with the most arithmetic, the
  element-wise max over its rows, ``log2(1 + rows)`` and an "inlined" flag.

Both are standardized with train-split statistics (:class:`TVMStats`). Labels are
:func:`models.data.labels` (log run time).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import polars as pl
import torch

from featurize import schema
from featurize.tvm import features as tf
from models.data import ProgramData, choose_machine, edge_features, labels, machine_cores

#: Node operator kinds of TVM programs (:mod:`pipelines.tvm.ops`), for the one-hot.
OP_KINDS = (
    "conv2d", "depthwise_conv2d", "max_pool", "avg_pool", "fully_connected", "matmul",
    "unary", "binary", "bias", "affine_norm", "softmax", "boundary", "other",
)  # fmt: skip
F = tf.NUM_STORE_FEATURES
NODE_DIM = len(OP_KINDS) + 7 + F + 1
SCHED_DIM = 2 * F + 2
#: Group-1 arithmetic columns (float and int op counts) that pick a block's main store row.
_ARITH_COLS = slice(0, 16)
TABLES = ("programs", "nodes", "edges", "schedules", "measurements", "machines")


@dataclass
class TVMProgram:
    """One program's labeled schedules with their store rows, and its graph tensors."""

    program_id: str
    split: str
    schedule_ids: list[str]
    runtime: np.ndarray  # [S] seconds
    store_feats: list[np.ndarray]  # per schedule [rows, 164] (PerStoreFeature order)
    store_nodes: list[np.ndarray]  # per schedule [rows] node id, -1 if none
    node_raw: np.ndarray  # [n, NODE_DIM]
    edge_index: np.ndarray  # [2, E]
    edge_attr: np.ndarray  # [E, EDGE_DIM]

    @property
    def num_nodes(self) -> int:
        return self.node_raw.shape[0]

    @property
    def num_schedules(self) -> int:
        return len(self.schedule_ids)


def read_tables(dataset_dir: str | os.PathLike) -> dict[str, pl.DataFrame]:
    return schema.read_dataset(dataset_dir, TABLES + schema.TVM_TABLE_NAMES)


def _log2p(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.log2(1.0 + np.maximum(x, 0.0))


def node_features(nodes: pl.DataFrame, nf: pl.DataFrame) -> np.ndarray:
    """``[n, NODE_DIM]`` raw program-level node features of one program (nodes sorted by id)."""
    n = nodes.height
    out = np.zeros((n, NODE_DIM), dtype=np.float32)
    kinds = nodes["op_kind"].to_list()
    for i, k in enumerate(kinds):
        out[i, OP_KINDS.index(k) if k in OP_KINDS else OP_KINDS.index("other")] = 1.0
    j = len(OP_KINDS)
    nf = nf.sort("node_id")
    out[:, j] = nodes["is_output"].cast(pl.Float32).to_numpy()
    out[:, j + 1] = nodes["n_loop_dims"].to_numpy()
    out[:, j + 2] = nodes["n_reduction_dims"].to_numpy()
    out[:, j + 3] = _log2p(nf["spatial_extent"].to_numpy())
    out[:, j + 4] = _log2p(nf["reduction_extent"].to_numpy())
    out[:, j + 5] = _log2p(nf["output_bytes"].to_numpy())
    out[:, j + 6] = nf["n_reads"].to_numpy()
    wf = nf.select(tf.STORE_COLUMNS).to_numpy().astype(np.float64)
    has = np.isfinite(wf).all(axis=1)
    out[:, j + 7 : j + 7 + F] = np.nan_to_num(wf, nan=0.0)
    out[:, -1] = has
    return out


def schedule_node_features(feats: np.ndarray, nodes_of_rows: np.ndarray, n: int) -> np.ndarray:
    """``[n, SCHED_DIM]``: per node, its main store row, the max over its rows, log2(1 + rows), inlined flag."""
    out = np.zeros((n, SCHED_DIM), dtype=np.float32)
    for v in range(n):
        rows = feats[nodes_of_rows == v]
        if len(rows) == 0:
            out[v, -1] = 1.0  # no store of its own: inlined into a consumer
            continue
        main = rows[int(np.argmax(rows[:, _ARITH_COLS].sum(axis=1)))]
        out[v, :F] = main
        out[v, F : 2 * F] = rows.max(axis=0)
        out[v, 2 * F] = math.log2(1 + len(rows))
    return out


def graph_inputs(nodes: pl.DataFrame, nf: pl.DataFrame, edges: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(node_raw [n, NODE_DIM], edge_index [2, E], edge_attr [E, EDGE_DIM])`` of one program
    from its ``nodes``, ``tvm_node_features`` and ``edges`` rows."""
    nodes = nodes.sort("node_id")
    if edges.height == 0:
        ei = np.zeros((2, 0), np.int64)
    else:
        edges = edges.sort(["src", "dst"])
        ei = edges.select("src", "dst").to_numpy().T.astype(np.int64).copy()
    return node_features(nodes, nf), ei, edge_features(edges)


def schedule_stores(feats: np.ndarray, buffers: Sequence[str], node_buffers: Sequence[str]) -> np.ndarray:
    """The node id of each ``PerStoreFeature`` row of a schedule (-1: none), from the buffer each
    row stores (:func:`featurize.tvm.graph.store_buffers`); every row -1 if the counts differ."""
    from featurize.tvm.graph import map_buffers_to_nodes

    if len(buffers) != feats.shape[0]:
        return np.full(feats.shape[0], -1, np.int64)
    return np.array([-1 if v is None else v for v in map_buffers_to_nodes(buffers, node_buffers)], np.int64)


def load_programs(
    tables: dict[str, pl.DataFrame],
    split: pl.DataFrame,
    splits: Sequence[str] | None = None,
    machine_id: str | None = None,
) -> tuple[list[TVMProgram], str, int]:
    """Labeled programs of the requested splits: ``(programs, machine_id, cores)``."""
    machine = choose_machine(tables["measurements"], machine_id)
    cores = machine_cores(tables["machines"], machine)
    lab = labels(tables["measurements"], machine)
    sched = tables["schedules"].filter(pl.col("has_featurization")).select("program_id", "schedule_id")
    keep = split if splits is None else split.filter(pl.col("split").is_in(list(splits)))
    lab = lab.join(sched, on=["program_id", "schedule_id"]).join(keep, on="program_id")
    store = (
        tables["tvm_store_features"]
        .join(lab.select("program_id", "schedule_id"), on=["program_id", "schedule_id"])
        .sort(["program_id", "schedule_id", "store_index"])
    )
    nodes_by = {k[0]: g.sort("node_id") for k, g in tables["nodes"].group_by("program_id")}
    nf_by = {k[0]: g for k, g in tables["tvm_node_features"].group_by("program_id")}
    edges_by = {k[0]: g.sort(["src", "dst"]) for k, g in tables["edges"].group_by("program_id")}
    store_by = {k: g for k, g in store.group_by(["program_id", "schedule_id"])}
    progs = []
    for (pid, spl), g in sorted(lab.group_by(["program_id", "split"]), key=lambda kv: kv[0]):
        g = g.sort("schedule_id")
        sids = g["schedule_id"].to_list()
        feats, nodes_of = [], []
        for sid in sids:
            rows = store_by.get((pid, sid))
            if rows is None:
                feats.append(np.zeros((0, F), np.float32))
                nodes_of.append(np.zeros(0, np.int64))
            else:
                feats.append(rows.select(tf.STORE_COLUMNS).to_numpy().astype(np.float32))
                nodes_of.append(rows["node_id"].fill_null(-1).to_numpy().astype(np.int64))
        node_raw, ei, ea = graph_inputs(nodes_by[pid], nf_by[pid], edges_by.get(pid, tables["edges"].head(0)))
        progs.append(
            TVMProgram(pid, spl, sids, g["runtime_s"].to_numpy().astype(np.float64), feats, nodes_of, node_raw, ei, ea)
        )
    return progs, machine, cores


@dataclass
class TVMStats:
    """Mean and standard deviation of the node and schedule features over the training
    programs (stored in the checkpoint, so evaluation never refits them)."""

    node_mean: np.ndarray
    node_std: np.ndarray
    sched_mean: np.ndarray
    sched_std: np.ndarray

    @staticmethod
    def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = x.mean(axis=0), x.std(axis=0)
        return mean.astype(np.float32), np.where(std < 1e-6, 1.0, std).astype(np.float32)

    @classmethod
    def fit(cls, progs: list[TVMProgram]) -> "TVMStats":
        nodes = np.concatenate([p.node_raw for p in progs])
        sched = np.concatenate(
            [schedule_node_features(f, v, p.num_nodes) for p in progs for f, v in zip(p.store_feats, p.store_nodes)]
        )
        return cls(*cls._moments(nodes), *cls._moments(sched))

    def state(self) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(getattr(self, k)) for k in ("node_mean", "node_std", "sched_mean", "sched_std")}

    @classmethod
    def from_state(cls, st: dict) -> "TVMStats":
        return cls(*(st[k].numpy() for k in ("node_mean", "node_std", "sched_mean", "sched_std")))


def to_program_data(p: TVMProgram, stats: TVMStats) -> ProgramData:
    """The :class:`models.data.ProgramData` the GNNs take, with TVM feature widths."""
    x_node = (p.node_raw - stats.node_mean) / stats.node_std
    raw = np.stack([schedule_node_features(f, v, p.num_nodes) for f, v in zip(p.store_feats, p.store_nodes)])
    x_sched = (raw - stats.sched_mean) / stats.sched_std
    return ProgramData(
        program_id=p.program_id,
        split=p.split,
        pf_raw=torch.from_numpy(p.node_raw),
        x_pipe=torch.from_numpy(x_node.astype(np.float32)),
        edge_index=torch.from_numpy(p.edge_index),
        edge_attr=torch.from_numpy(p.edge_attr.astype(np.float32)),
        schedule_ids=p.schedule_ids,
        sf_raw=torch.from_numpy(raw),
        x_sched=torch.from_numpy(x_sched.astype(np.float32)),
        runtime=torch.from_numpy(p.runtime.copy()),
    )
