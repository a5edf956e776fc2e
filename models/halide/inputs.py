"""Halide's side of the model inputs: the graph tables to :class:`models.data.ProgramData`.

Node features: ``log1p`` of the 287 Adams2019 pipeline features and of the 39
schedule features (both are counts, sizes or extents, so non-negative; negative
values, if any, go through ``sign(x) * log1p(|x|)``), then standardized with the
mean and standard deviation over the *training split only* (:class:`FeatureStats`,
stored in every checkpoint so evaluation never refits them). The raw features are
kept too, for the Adams2019 baseline, which computes its cost terms from them.
With ``vector_counts="applied"`` (what every model's config but Adams2019's, ``auto``,
resolves to for labels of an AVX-512 machine) the vector and scalar counts are first
replaced by those of the schedule Halide applies (:mod:`featurize.halide.vector_counts`),
in both the raw and the normalized features.

Edges and labels are :mod:`models.data`'s. Schedules without a featurization
(Mullapudi2016 and Li2018 reference schedules) or without a good measurement are
skipped (unless ``labeled_only=False``, for ranking a user's unmeasured candidates).

Everything is vectorized over rows with polars/numpy; the only Python loop is over
programs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import polars as pl
import torch
from torch import Tensor

from featurize import schema
from featurize.halide.vector_counts import applied_vector_counts, has_masked_vectors
from featurize.schema import UserError
from models.constants import EDGE_DIM
from models.data import (MODEL_INPUT_TABLES, ProgramData, choose_machine, edge_features, key_offsets, labels,
                         labelled_machines, log_transform, machine_cores)  # fmt: skip
from models.machine import machine_vectors

log = logging.getLogger(__name__)

PIPELINE_COLUMNS = list(schema.PIPELINE_COLUMNS)


SCHEDULE_COLUMNS = list(schema.SCHEDULE_COLUMNS)

#: What a model reads as ``sf_num_vectors``/``sf_num_scalars``: Halide's counts of its
#: search state, or those of the schedule it applies
#: (:mod:`featurize.halide.vector_counts`), or ``auto``: the applied ones where the labels'
#: machine has masked vectors (its ``halide_target``), Halide's otherwise. A model's config
#: says which; training stores what ``auto`` resolved to.
VECTOR_COUNTS = ("halide", "applied", "auto")


@dataclass
class FeatureStats:
    r"""Mean and standard deviation of the log-transformed node features, fitted on the
    training split only.

    Args:
        pipe_mean (torch.Tensor): Mean of each log pipeline feature, shape ``[287]``.
        pipe_std (torch.Tensor): Its standard deviation (1 where a feature is constant).
        sched_mean (torch.Tensor): Mean of each log schedule feature, shape ``[39]``.
        sched_std (torch.Tensor): Its standard deviation (1 where a feature is constant).
    """

    pipe_mean: Tensor
    pipe_std: Tensor
    sched_mean: Tensor
    sched_std: Tensor

    @staticmethod
    def _moments(x: np.ndarray) -> tuple[Tensor, Tensor]:
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        std = np.where(std < 1e-6, 1.0, std)
        return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32))

    @classmethod
    def fit(cls, pipe_log: np.ndarray, sched_log: np.ndarray) -> "FeatureStats":
        """Fit on log-transformed rows: ``pipe_log`` one per training stage, ``sched_log``
        one per training (schedule, stage)."""
        if len(pipe_log) == 0 or len(sched_log) == 0:
            raise UserError("cannot fit feature statistics: the training split has no labeled schedules")
        pm, ps = cls._moments(pipe_log)
        sm, ss = cls._moments(sched_log)
        return cls(pm, ps, sm, ss)

    def normalize_pipe(self, pipe_log: np.ndarray) -> np.ndarray:
        return ((pipe_log - self.pipe_mean.numpy()) / self.pipe_std.numpy()).astype(np.float32)

    def normalize_sched(self, sched_log: np.ndarray) -> np.ndarray:
        return ((sched_log - self.sched_mean.numpy()) / self.sched_std.numpy()).astype(np.float32)

    def state_dict(self) -> dict[str, Tensor]:
        return {
            "pipe_mean": self.pipe_mean,
            "pipe_std": self.pipe_std,
            "sched_mean": self.sched_mean,
            "sched_std": self.sched_std,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> "FeatureStats":
        return cls(state["pipe_mean"], state["pipe_std"], state["sched_mean"], state["sched_std"])


@dataclass
class GraphDataset:
    """All programs of a dataset that a model reads, with the statistics used to normalize them."""

    programs: list[ProgramData]
    stats: FeatureStats
    machine_id: str
    num_cores: int
    dropped: dict[str, int]
    vector_counts: str = "halide"
    #: Every machine whose labels are in it (``machine_id``, the one with most, first), and the
    #: rows of the ``machines`` table that describe them.
    machine_ids: tuple[str, ...] = ()
    machine_rows: tuple[dict, ...] = ()

    def split(self, *names: str) -> list[ProgramData]:
        return [p for p in self.programs if p.split in names]

    def __repr__(self) -> str:
        counts = {}
        for p in self.programs:
            counts[p.split] = counts.get(p.split, 0) + 1
        n_sched = sum(p.num_schedules for p in self.programs)
        machines = f"machines={list(self.machine_ids)!r}" if len(self.machine_ids) > 1 else f"machine={self.machine_id!r}"
        return f"GraphDataset(programs={counts}, schedules={n_sched}, {machines})"


def read_model_tables(dataset_dir: str | os.PathLike) -> dict[str, pl.DataFrame]:
    """Read the tables the models need, through the schema reader (version-checked)."""
    return schema.read_dataset(dataset_dir, MODEL_INPUT_TABLES)


def _checked_nodes(nodes: pl.DataFrame, needed: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``nodes`` rows of the needed programs, sorted, checked to be 0..n-1 per program;
    and each program's node count."""
    nodes = (
        nodes.lazy()
        .join(needed.lazy(), on="program_id", how="inner")
        .sort(["program_id", "node_id"])
        .with_columns(pl.int_range(pl.len()).over("program_id").alias("_expect"))
        .collect()
    )
    bad = nodes.filter(pl.col("node_id") != pl.col("_expect"))["program_id"].unique()
    if len(bad):
        raise ValueError(f"node ids are not 0..n-1 for programs {bad.to_list()[:5]}")
    return nodes, nodes.group_by("program_id").len().rename({"len": "n_nodes"})


def _complete_schedule_rows(
    tables: dict[str, pl.DataFrame], lab: pl.DataFrame, needed: pl.DataFrame, n_nodes: pl.DataFrame,
    labeled_only: bool, dropped: dict[str, int], lab_machine: str,
) -> pl.DataFrame:
    """The ``node_schedule_features`` rows of the featurized (and, with ``labeled_only``,
    labelled) schedules of the needed programs, with their labels (``lab``: program_id,
    schedule_id, runtime_s, machine_id; a schedule timed on two machines has two rows),
    sorted by program, machine, schedule and node. A schedule must have exactly one feature
    row per node, for nodes 0..n-1; one that does not is dropped and counted in ``dropped``."""
    sched = tables["schedules"].lazy().filter(pl.col("has_featurization")).select("program_id", "schedule_id")
    sched = sched.join(lab.lazy(), on=["program_id", "schedule_id"], how="inner" if labeled_only else "left")
    if not labeled_only:  # unlabelled schedules are scored for the one machine asked
        sched = sched.with_columns(pl.col("machine_id").fill_null(lab_machine))
    nsf = (
        tables["node_schedule_features"].lazy()
        .join(sched, on=["program_id", "schedule_id"], how="inner")
        .join(needed.lazy(), on="program_id", how="inner")
        .join(n_nodes.lazy(), on="program_id", how="inner")
        .sort(["program_id", "machine_id", "schedule_id", "node_id"])
        .with_columns(
            pl.int_range(pl.len()).over(["program_id", "machine_id", "schedule_id"]).alias("_expect"),
            pl.len().over(["program_id", "machine_id", "schedule_id"]).alias("_count"),
        )
        .collect()
    )
    incomplete = (
        nsf.filter((pl.col("_count") != pl.col("n_nodes")) | (pl.col("node_id") != pl.col("_expect")))
        .select("program_id", "schedule_id")
        .unique()
    )
    if incomplete.height:
        dropped["incomplete_featurization"] = incomplete.height
        log.warning("dropping %d schedules whose featurization does not cover every node", incomplete.height)
        nsf = nsf.join(incomplete, on=["program_id", "schedule_id"], how="anti")
    # One ProgramData per (program, machine): its key, contiguous in this order.
    return nsf.with_columns(_key=pl.concat_str("program_id", pl.lit("\0"), "machine_id"))


def _program_data(
    program_ids: list[str], split_of: pl.DataFrame, nodes: pl.DataFrame, nsf: pl.DataFrame, edges: pl.DataFrame,
    stats: FeatureStats | None, dropped: dict[str, int], machines: dict[str, np.ndarray],
) -> tuple[list[ProgramData], FeatureStats]:
    """One :class:`ProgramData` per program and machine that timed it (in ``nsf``), sliced
    from whole-table arrays (features are log-transformed and normalized once for all
    programs), and the normalization statistics (fitted on the train split's rows when
    ``stats`` is ``None``); a program without nodes or without schedules is counted in
    ``dropped``. ``machines``: each machine's features (:mod:`models.machine`)."""
    pf_raw_all = nodes.select(PIPELINE_COLUMNS).to_numpy().astype(np.float32)
    sf_raw_all = nsf.select(SCHEDULE_COLUMNS).to_numpy().astype(np.float32)
    pf_log_all, sf_log_all = log_transform(pf_raw_all), log_transform(sf_raw_all)
    if stats is None:
        # Statistics always come from the train split, whatever is being built.
        stats = FeatureStats.fit(pf_log_all[(nodes["split"] == "train").to_numpy()],
                                 sf_log_all[(nsf["split"] == "train").to_numpy()])  # fmt: skip
    x_pipe_all = stats.normalize_pipe(pf_log_all)
    x_sched_all = stats.normalize_sched(sf_log_all)
    runtime_all = nsf["runtime_s"].cast(pl.Float64).fill_null(float("nan")).to_numpy()
    edge_attr_all = edge_features(edges)
    edge_index_all = edges.select("src", "dst").to_numpy().astype(np.int64)
    node_off, edge_off, nsf_off = key_offsets(nodes["program_id"]), key_offsets(edges["program_id"]), key_offsets(nsf["_key"])
    sched_ids_all = nsf["schedule_id"].to_numpy()
    split_map = dict(zip(split_of["program_id"].to_list(), split_of["split"].to_list()))
    keys_of: dict[str, list[tuple[str, str]]] = {}
    for key in nsf_off:
        pid, machine_id = key.split("\0")
        keys_of.setdefault(pid, []).append((key, machine_id))

    programs: list[ProgramData] = []
    for pid in program_ids:
        if pid not in node_off:
            dropped["program_without_nodes"] = dropped.get("program_without_nodes", 0) + 1
            continue
        if pid not in keys_of:
            dropped["program_without_schedules"] = dropped.get("program_without_schedules", 0) + 1
            continue
        a, n = node_off[pid]
        e0, ne = edge_off.get(pid, (0, 0))
        ei = edge_index_all[e0 : e0 + ne].T.copy()
        if ne and (ei.min() < 0 or ei.max() >= n):
            raise ValueError(f"{pid}: edge endpoints outside 0..{n - 1}")
        for key, machine_id in keys_of[pid]:
            c, m = nsf_off[key]
            s = m // n
            vec = machines.get(machine_id)
            programs.append(
                ProgramData(
                    program_id=pid,
                    split=split_map[pid],
                    pf_raw=torch.from_numpy(pf_raw_all[a : a + n]),
                    x_pipe=torch.from_numpy(x_pipe_all[a : a + n]),
                    edge_index=torch.from_numpy(ei).reshape(2, ne),
                    edge_attr=torch.from_numpy(edge_attr_all[e0 : e0 + ne]).reshape(ne, EDGE_DIM),
                    schedule_ids=sched_ids_all[c : c + m : n].tolist(),
                    sf_raw=torch.from_numpy(sf_raw_all[c : c + m].reshape(s, n, -1)),
                    x_sched=torch.from_numpy(x_sched_all[c : c + m].reshape(s, n, -1)),
                    runtime=torch.from_numpy(runtime_all[c : c + m : n].copy()),
                    machine_id=machine_id,
                    machine=None if vec is None else torch.from_numpy(vec),
                )
            )
    return programs, stats


def load_dataset(
    dataset_dir: str | os.PathLike | None = None,
    split: pl.DataFrame | None = None,
    *,
    tables: dict[str, pl.DataFrame] | None = None,
    stats: FeatureStats | None = None,
    splits: Sequence[str] | None = None,
    machine_id: str | None = None,
    labeled_only: bool = True,
    vector_counts: str = "halide",
    all_machines: bool = False,
) -> GraphDataset:
    """Build :class:`ProgramData` for every program of the split (with ``all_machines``, for
    every program and machine that timed it).

    Args:
        dataset_dir (str, optional): Dataset directory (or pass ``tables``).
        split (pl.DataFrame): The ``split`` table. Programs missing from it are skipped.
        tables (dict, optional): Already-read tables (see :func:`read_model_tables`).
        stats (FeatureStats, optional): Normalization statistics; fitted on the ``train``
            split when not given. Pass the checkpoint's at evaluation time.
        splits (Sequence[str], optional): Keep only programs of these splits.
        machine_id (str, optional): Whose timings are the labels (default: the machine
            with most ok measurements).
        labeled_only (bool, optional): Drop schedules without a label; otherwise they are
            kept with a NaN run time (for inference). (default: :obj:`True`)
        vector_counts (str, optional): ``"halide"`` (the counts Halide featurized),
            ``"applied"`` (those of the applied schedule, :mod:`featurize.halide.vector_counts`)
            or ``"auto"`` (applied if the labels' machine has masked vectors; Halide's where
            its target is unknown). The dataset records what was used: with ``all_machines``,
            ``auto`` stays ``auto``, each machine's rows as its target says. (default: :obj:`"halide"`)
        all_machines (bool, optional): Labels of every machine in the measurements, each
            program once per machine that timed it (for a model of several machines);
            otherwise those of ``machine_id`` alone. (default: :obj:`False`)
    """
    if vector_counts not in VECTOR_COUNTS:
        raise UserError(f"vector_counts {vector_counts!r}: expected one of {', '.join(VECTOR_COUNTS)}")
    if split is None:
        raise UserError("a split table is required (perfgraph split)")
    if tables is None:
        if dataset_dir is None:
            raise ValueError("give dataset_dir or tables")
        tables = read_model_tables(dataset_dir)
    if labeled_only or machine_id is None or tables["measurements"].height:
        machine = choose_machine(tables["measurements"], machine_id, warn=not all_machines)
    else:
        # Scoring schedules nobody has timed (perfgraph predict): the model's own machine.
        machine = machine_id
    machine_ids = labelled_machines(tables["measurements"], machine) if all_machines else [machine]
    num_cores = machine_cores(tables["machines"], machine)
    masked = {m: has_masked_vectors(t) for m, t in tables["machines"].select("machine_id", "halide_target").iter_rows()}
    if vector_counts == "auto" and not all_machines:
        vector_counts = "applied" if masked.get(machine, False) else "halide"
    dropped: dict[str, int] = {}

    split_of = split.select("program_id", "split")
    keep = split_of if splits is None else split_of.filter(pl.col("split").is_in(list(splits)))
    if stats is None:
        # Statistics always come from the train split, whatever is being built.
        needed = keep.vstack(split_of.filter(pl.col("split") == "train")).unique("program_id")
    else:
        needed = keep

    nodes, n_nodes = _checked_nodes(tables["nodes"], needed)
    lab = pl.concat([labels(tables["measurements"], m).with_columns(machine_id=pl.lit(m)) for m in machine_ids])
    nsf = _complete_schedule_rows(tables, lab, needed, n_nodes, labeled_only, dropped, machine)
    if vector_counts == "applied":
        nsf = applied_vector_counts(nsf, nodes, tables["schedules"])
    elif vector_counts == "auto":  # several machines: each machine's rows as its target says
        on_masked = pl.col("machine_id").replace_strict(masked, default=False, return_dtype=pl.Boolean)
        nsf = pl.concat([applied_vector_counts(nsf.filter(on_masked), nodes, tables["schedules"]),
                         nsf.filter(~on_masked)]).sort(["program_id", "machine_id", "schedule_id", "node_id"])  # fmt: skip

    edges = tables["edges"].join(needed, on="program_id", how="inner").sort(["program_id", "src", "dst"])
    programs, stats = _program_data(sorted(set(keep["program_id"].to_list())), split_of, nodes, nsf, edges, stats, dropped,
                                    machine_vectors(tables["machines"]))  # fmt: skip
    rows = {r["machine_id"]: r for r in tables["machines"].iter_rows(named=True)}
    return GraphDataset(programs=programs, stats=stats, machine_id=machine, num_cores=num_cores, dropped=dropped,
                        vector_counts=vector_counts, machine_ids=tuple(machine_ids),
                        machine_rows=tuple(rows[m] for m in machine_ids if m in rows))  # fmt: skip
