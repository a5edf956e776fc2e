"""The tensors every backend's models read: one program's graph and its schedules.

A cost model is called inside schedule search on many schedules of one program, so
the unit here is a *program*: :class:`ProgramData` holds the program's fixed part
once (node features, edges) and stacks the per-schedule part (schedule features per
node, run time) along a leading schedule axis. Models embed the fixed part once and
score any number of schedules against it; :meth:`ProgramData.to_data_list` gives the
usual one-PyG-``Data``-per-schedule view.

Each backend builds them from its own tables: :mod:`models.halide.inputs` (Halide's
Adams2019 features) and :mod:`models.tvm.inputs` (TVM's PerStoreFeature rows). What
is shared lives here: the edges (``edge_index`` producer -> consumer as in the
``edges`` table; ``edge_attr`` a one-hot of the access-pattern kind
(``schema.EDGE_KINDS``) then ``log1p`` of :data:`models.constants.EDGE_NUMERIC_COLUMNS`),
the labels (``y = log(run time in seconds)``, the pass-1 value of ``status == "ok"``
measurements on one machine), and the content hashes that fingerprint a training run.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import polars as pl
import torch
from torch import Tensor
from torch_geometric.data import Data

from featurize import schema
from featurize.schema import UserError
from models.constants import EDGE_DIM, EDGE_KINDS, EDGE_NUMERIC_COLUMNS

if TYPE_CHECKING:
    from models.halide.inputs import FeatureStats

log = logging.getLogger(__name__)

#: Tables the models read.
MODEL_INPUT_TABLES = ("programs", "nodes", "edges", "schedules", "node_schedule_features", "measurements", "machines")


class ProgramData:
    r"""One program and a batch of its schedules, as tensors.

    The fixed part (``pf_raw``, ``x_pipe``, ``edge_index``, ``edge_attr``) is stored
    once; the per-schedule part (``sf_raw``, ``x_sched``, ``runtime``) has a leading
    schedule axis of size ``S``.

    Args:
        program_id (str): The program.
        split (str): Its split (``train``/``val``/``test``/``zoo``).
        pf_raw (torch.Tensor): Raw pipeline features, ``[n, 287]``.
        x_pipe (torch.Tensor): Normalized log pipeline features, ``[n, 287]``.
        edge_index (torch.Tensor): Producer -> consumer node ids, ``[2, E]``.
        edge_attr (torch.Tensor): Edge features, ``[E, EDGE_DIM]``.
        schedule_ids (Sequence[str]): The ``S`` schedules, in tensor order.
        sf_raw (torch.Tensor): Raw schedule features, ``[S, n, 39]``.
        x_sched (torch.Tensor): Normalized log schedule features, ``[S, n, 39]``.
        runtime (torch.Tensor): Measured run time in seconds, ``[S]`` (NaN when unknown).
        machine_id (str, optional): The machine whose run times these are (or are to be
            predicted for). (default: :obj:`None`)
        machine (torch.Tensor, optional): Its features (:func:`models.machine.machine_vector`),
            ``[MACHINE_DIM]``; read by models trained on several machines. (default: :obj:`None`)
        extra (dict, optional): Further per-schedule tensors (leading axis ``S``) that a model
            derived once from the fixed inputs (e.g. Adams2019's cost terms); :meth:`select`
            keeps them in step with the schedules. (default: none)

    ``fixed`` caches what models derive from the fixed part alone (e.g. a GNN's prepared
    edges); the copies :meth:`select` makes share it, as they share the fixed tensors.
    """

    def __init__(
        self,
        program_id: str,
        split: str,
        pf_raw: Tensor,
        x_pipe: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor,
        schedule_ids: Sequence[str],
        sf_raw: Tensor,
        x_sched: Tensor,
        runtime: Tensor,
        machine_id: str | None = None,
        machine: Tensor | None = None,
        extra: dict[str, Tensor] | None = None,
    ) -> None:
        self.program_id = program_id
        self.split = split
        self.pf_raw = pf_raw
        self.x_pipe = x_pipe
        self.edge_index = edge_index
        self.edge_attr = edge_attr
        self.schedule_ids = list(schedule_ids)
        self.sf_raw = sf_raw
        self.x_sched = x_sched
        self.runtime = runtime
        self.machine_id = machine_id
        self.machine = machine
        self.extra = dict(extra or {})
        self.fixed: dict = {}
        n, s = x_pipe.size(0), len(self.schedule_ids)
        if x_sched.shape[:2] != (s, n) or sf_raw.shape[:2] != (s, n) or runtime.shape != (s,):
            raise ValueError(f"{program_id}: inconsistent shapes for {s} schedules of {n} nodes")

    @property
    def num_nodes(self) -> int:
        return self.x_pipe.size(0)

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    @property
    def num_schedules(self) -> int:
        return len(self.schedule_ids)

    @property
    def y(self) -> Tensor:
        """Target: log run time in seconds, ``[S]`` float32."""
        return torch.log(self.runtime).float()

    def select(self, index: Tensor | Sequence[int]) -> "ProgramData":
        """The same program with a subset (or reordering) of its schedules."""
        index = torch.as_tensor(index, dtype=torch.long)
        return self._sharing_fixed(ProgramData(
            self.program_id,
            self.split,
            self.pf_raw,
            self.x_pipe,
            self.edge_index,
            self.edge_attr,
            [self.schedule_ids[i] for i in index.tolist()],
            self.sf_raw[index],
            self.x_sched[index],
            self.runtime[index],
            self.machine_id,
            self.machine,
            {k: v[index] for k, v in self.extra.items()},
        ))

    def _sharing_fixed(self, other: "ProgramData") -> "ProgramData":
        other.fixed = self.fixed
        return other

    def for_machine(self, machine_id: str, machine: Tensor | None) -> "ProgramData":
        """The same program and schedules, their run times to be predicted for another machine."""
        out = self.select(torch.arange(self.num_schedules))
        out.machine_id, out.machine = machine_id, machine
        return out

    def with_schedules(
        self,
        sf_raw: Tensor,
        stats: FeatureStats,
        schedule_ids: Sequence[str] | None = None,
    ) -> "ProgramData":
        """The same program with new schedules given by their raw features ``[S, n, 39]``
        (as a schedule search produces them), normalized with ``stats`` in torch."""
        s = sf_raw.size(0)
        x = torch.sign(sf_raw) * torch.log1p(sf_raw.abs())
        x_sched = (x - stats.sched_mean.to(sf_raw.device)) / stats.sched_std.to(sf_raw.device)
        ids = list(schedule_ids) if schedule_ids is not None else [str(i) for i in range(s)]
        runtime = torch.full((s,), float("nan"), dtype=torch.float64, device=sf_raw.device)
        return self._sharing_fixed(ProgramData(
            self.program_id, self.split, self.pf_raw, self.x_pipe, self.edge_index, self.edge_attr,
            ids, sf_raw, x_sched, runtime, self.machine_id, self.machine,
        ))

    def to(self, device: torch.device | str) -> "ProgramData":
        out = ProgramData.__new__(ProgramData)
        out.__dict__.update(
            {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.__dict__.items()}
        )
        out.extra = {k: v.to(device) for k, v in self.extra.items()}
        # the cache is the fixed tensors' (a training step moves batches to where they already are)
        out.fixed = self.fixed if out.x_pipe.device == self.x_pipe.device else {}
        return out

    def to_data_list(self) -> list[Data]:
        """One PyG graph per schedule: ``x = [x_pipe | x_sched[s]]`` (``[n, 287 + 39]``),
        ``edge_index``, ``edge_attr``, ``y = [log run time]``, ``program_id``, ``schedule_id``,
        and, when the program has machine features, ``machine`` (``[1, MACHINE_DIM]``)."""
        y = self.y
        extra = {} if self.machine is None else {"machine": self.machine.unsqueeze(0)}
        return [
            Data(
                x=torch.cat([self.x_pipe, self.x_sched[s]], dim=1),
                edge_index=self.edge_index,
                edge_attr=self.edge_attr,
                y=y[s : s + 1],
                program_id=self.program_id,
                schedule_id=sid,
                num_nodes=self.num_nodes,
                **extra,
            )
            for s, sid in enumerate(self.schedule_ids)
        ]

    def __repr__(self) -> str:
        machine = f", machine={self.machine_id!r}" if self.machine_id else ""
        return (
            f"{self.__class__.__name__}({self.program_id!r}, split={self.split!r}, "
            f"num_nodes={self.num_nodes}, num_edges={self.num_edges}, num_schedules={self.num_schedules}{machine})"
        )


def log_transform(x: np.ndarray) -> np.ndarray:
    """``sign(x) * log1p(|x|)``: ``log1p`` for the non-negative features, odd-symmetric otherwise."""
    x = np.asarray(x, dtype=np.float64)
    return (np.sign(x) * np.log1p(np.abs(x))).astype(np.float32)


def dataset_hash(dataset_dir: str | os.PathLike, tables: Iterable[str] = MODEL_INPUT_TABLES) -> str:
    """SHA-256 of the content of the dataset's table files (16 hex digits)."""
    h = hashlib.sha256()
    for name in sorted(tables):
        path = schema.table_path(dataset_dir, name)
        h.update(name.encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def split_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a split table's content (sorted ``program_id,split`` lines; 16 hex digits)."""
    split = schema.read_table(path, "split").sort("program_id")
    text = "\n".join(f"{p},{s}" for p, s in split.select("program_id", "split").iter_rows())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def choose_machine(measurements: pl.DataFrame, machine_id: str | None = None, warn: bool = True) -> str:
    """The machine whose timings are the labels: ``machine_id`` or the one with most ok rows
    (``warn``: say so when there were others to choose from)."""
    ok = measurements.filter((pl.col("timing_pass") == 1) & (pl.col("status") == "ok"))
    machines = ok.group_by("machine_id").len().sort(["len", "machine_id"], descending=[True, False])
    if machines.height == 0:
        raise UserError("no pass-1 measurement with status 'ok' in this dataset")
    if machine_id is None:
        if machines.height > 1 and warn:
            log.warning("measurements from %d machines; using %s", machines.height, machines["machine_id"][0])
        return machines["machine_id"][0]
    if machine_id not in machines["machine_id"].to_list():
        raise UserError(f"machine {machine_id!r} has no ok measurement")
    return machine_id


def labelled_machines(measurements: pl.DataFrame, first: str) -> list[str]:
    """Every machine with a pass-1 ``ok`` measurement: ``first``, then the others by id."""
    ok = measurements.filter((pl.col("timing_pass") == 1) & (pl.col("status") == "ok"))
    others = sorted(set(ok["machine_id"].unique().to_list()) - {first})
    return [first, *others]


def labels(measurements: pl.DataFrame, machine_id: str) -> pl.DataFrame:
    """``(program_id, schedule_id, runtime_s)``: the pass-1 label of ok measurements
    (the timing protocol's ``runtime_s``; the median over repeated rows, should a schedule
    have been timed twice in pass 1)."""
    return (
        measurements.lazy()
        .filter(
            (pl.col("machine_id") == machine_id)
            & (pl.col("timing_pass") == 1)
            & (pl.col("status") == "ok")
            & (pl.col("runtime_s") > 0)
        )
        .group_by(["program_id", "schedule_id"])
        .agg(pl.col("runtime_s").median().alias("runtime_s"))
        .collect()
    )


def machine_cores(machines: pl.DataFrame, machine_id: str) -> int:
    """Cores the timed code ran on (``timing_threads``, else ``n_cores``, else 1)."""
    row = machines.filter(pl.col("machine_id") == machine_id)
    if row.height == 0:
        return 1
    for col in ("timing_threads", "n_cores"):
        v = row[col][0]
        if v is not None and v > 0:
            return int(v)
    return 1


def key_offsets(keys: pl.Series) -> dict[str, tuple[int, int]]:
    """Start and length of each run of equal keys in a sorted column."""
    runs = keys.to_frame("k").group_by("k", maintain_order=True).len()
    starts = np.concatenate([[0], np.cumsum(runs["len"].to_numpy())[:-1]])
    return {k: (int(s), int(n)) for k, s, n in zip(runs["k"].to_list(), starts, runs["len"].to_list())}


def edge_features(edges: pl.DataFrame) -> np.ndarray:
    """``[E, EDGE_DIM]`` float32: one-hot ``kind``, then ``log1p`` of the numeric columns."""
    unknown = set(edges["kind"].unique().to_list()) - set(EDGE_KINDS)
    if unknown:
        raise ValueError(f"unknown edge kinds {sorted(unknown)}")
    feats = edges.select(
        [(pl.col("kind") == k).cast(pl.Float32).alias(f"kind_{k}") for k in EDGE_KINDS]
        + [pl.col(c).cast(pl.Float64).fill_null(0.0).alias(c) for c in EDGE_NUMERIC_COLUMNS]
    ).to_numpy()
    out = np.empty((len(edges), EDGE_DIM), dtype=np.float32)
    k = len(EDGE_KINDS)
    out[:, :k] = feats[:, :k]
    out[:, k:] = log_transform(feats[:, k:])
    return out


