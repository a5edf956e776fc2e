"""Fixtures for the models tests: a tiny synthetic dataset written through the schema."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from featurize import schema
from models import split as split_mod

PF = schema.PIPELINE_COLUMNS
SF = schema.SCHEDULE_COLUMNS
SFI = {c: i for i, c in enumerate(SF)}


def _sched_features(rng: np.random.Generator, n: int) -> np.ndarray:
    """Plausible non-negative Adams2019 schedule features for ``n`` stages."""
    f = np.zeros((n, len(SF)), dtype=np.float32)
    points = rng.choice([1024.0, 4096.0, 16384.0, 65536.0], size=n)
    vec = rng.choice([1.0, 4.0, 8.0], size=n)
    par = rng.choice([1.0, 2.0, 8.0, 64.0], size=n)
    f[:, SFI["sf_num_realizations"]] = rng.choice([1.0, 16.0, 256.0], size=n)
    f[:, SFI["sf_num_productions"]] = f[:, SFI["sf_num_realizations"]]
    f[:, SFI["sf_points_computed_total"]] = points
    f[:, SFI["sf_points_computed_minimum"]] = points
    f[:, SFI["sf_innermost_loop_extent"]] = rng.choice([8.0, 32.0, 128.0], size=n)
    f[:, SFI["sf_inner_parallelism"]] = par
    f[:, SFI["sf_outer_parallelism"]] = 1.0
    f[:, SFI["sf_vector_size"]] = vec
    f[:, SFI["sf_native_vector_size"]] = 8.0
    f[:, SFI["sf_num_vectors"]] = points / vec
    f[:, SFI["sf_num_scalars"]] = rng.choice([0.0, 16.0], size=n)
    f[:, SFI["sf_bytes_at_realization"]] = points * 4
    f[:, SFI["sf_bytes_at_production"]] = points * 4
    f[:, SFI["sf_bytes_at_root"]] = points * 4
    f[:, SFI["sf_bytes_at_task"]] = points * 4 / par
    f[:, SFI["sf_innermost_bytes_at_task"]] = 64.0
    f[:, SFI["sf_unique_bytes_read_per_realization"]] = points * 4
    f[:, SFI["sf_unique_lines_read_per_realization"]] = points / 16
    f[:, SFI["sf_vector_loads_per_vector"]] = rng.choice([1.0, 3.0], size=n)
    f[:, SFI["sf_working_set"]] = rng.choice([0.0, 4096.0, 65536.0], size=n)
    return f


def make_fake_dataset(
    path: Path,
    n_random: int = 5,
    n_zoo: int = 1,
    n_user: int = 0,
    n_sched: int = 6,
    seed: int = 0,
    machine_id: str = "m0",
    prefix: str = "p",
    machine: dict | None = None,
) -> Path:
    """Write a tiny but complete dataset: programs, chain-with-skip graphs, featurized and
    reference schedules, pass-1 and pass-2 timings, one failure per program; timed on
    ``machine_id`` (its ``machines`` row completed by ``machine``), programs ``<prefix>00000``, ...
    (the zoo ones are named alike in every such dataset, so two of them share their zoo)."""
    rng = np.random.default_rng(seed)
    programs, nodes, edges, schedules, nsf, meas, samples = [], [], [], [], [], [], []
    origins = ["random"] * n_random + ["zoo"] * n_zoo + ["user"] * n_user
    for p, origin in enumerate(origins):
        pid = f"zoo{p:05d}" if origin == "zoo" else f"{prefix}{p:05d}"
        n = 3 + p % 2
        programs.append(
            {"program_id": pid, "compiler": "halide", "origin": origin, "n_nodes": n, "n_edges": n - 1 + (n > 3)}
        )
        for v in range(n):
            row = {
                "program_id": pid, "node_id": v, "name": f"f{v}", "func": f"f{v}", "stage_index": 0,
                "op_kind": "pointwise", "is_output": v == 0, "n_loop_dims": 2, "n_reduction_dims": 0,
            }
            pf = rng.integers(0, 5, size=len(PF)).astype(float) * (rng.random(len(PF)) < 0.2)
            row.update(dict(zip(PF, pf.tolist())))
            nodes.append(row)
        # producer v+1 -> consumer v (node 0 is the output), plus a skip edge on 4-node programs
        pairs = [(v + 1, v, "pointwise" if v % 2 else "stencil") for v in range(n - 1)]
        if n > 3:
            pairs.append((3, 0, "broadcast"))
        for src, dst, kind in pairs:
            edges.append({
                "program_id": pid, "src": src, "dst": dst, "kind": kind, "n_loads": 1 + 2 * (kind == "stencil"),
                "n_jacobians": 1, "producer_dims": 2, "consumer_loop_dims": 2, "max_stride": 1.0,
                "footprint_halo": 2 * (kind == "stencil"),
            })
        scale = 10.0 ** rng.uniform(-1, 1)
        for s in range(n_sched):
            sid = f"{p:04x}{s:012x}"
            schedules.append({"program_id": pid, "schedule_id": sid, "sampler": "random", "autoscheduler": "adams2019",
                              "has_featurization": True, "schedule_text": f"s{s}", "n_duplicates": 0})
            f = _sched_features(rng, n)
            for v in range(n):
                nsf.append({"program_id": pid, "schedule_id": sid, "node_id": v, **dict(zip(SF, f[v].tolist()))})
            work = f[:, SFI["sf_points_computed_total"]] / (f[:, SFI["sf_vector_size"]] * np.sqrt(f[:, SFI["sf_inner_parallelism"]]))
            t = float(scale * 1e-7 * work.sum() * math.exp(rng.normal(0, 0.05)))
            meas.append({"program_id": pid, "schedule_id": sid, "machine_id": machine_id, "timing_pass": 1, "status": "ok",
                         "runtime_s": t, "runtime_min_s": t * 0.95, "label_method": "min"})
            for r in range(1, 5):  # the protocol's raw windows, a little noisy
                samples.append({"program_id": pid, "schedule_id": sid, "machine_id": machine_id, "timing_pass": 1,
                                "round": r, "status": "ok", "slow": False, "calibration_s": 1e-4,
                                "window_min_s": t * math.exp(abs(rng.normal(0, 0.02)))})
            if s < 3:  # noise-floor re-time
                t2 = t * math.exp(rng.normal(0, 0.03))
                meas.append({"program_id": pid, "schedule_id": sid, "machine_id": machine_id, "timing_pass": 2,
                             "status": "ok", "runtime_s": t2, "runtime_min_s": t2 * 0.95, "label_method": "min"})
        # a reference schedule that cannot be featurized, and a failed one
        schedules.append({"program_id": pid, "schedule_id": f"{p:04x}ref000000000", "sampler": "autoscheduler",
                          "autoscheduler": "li2018", "has_featurization": False, "schedule_text": "ref", "n_duplicates": 0})
        meas.append({"program_id": pid, "schedule_id": f"{p:04x}ref000000000", "machine_id": machine_id, "timing_pass": 1,
                     "status": "ok", "runtime_s": 1e-3, "label_method": "min"})
        sid = f"{p:04x}bad000000000"
        schedules.append({"program_id": pid, "schedule_id": sid, "sampler": "random", "autoscheduler": "adams2019",
                          "has_featurization": True, "schedule_text": "bad", "n_duplicates": 0})
        f = _sched_features(rng, n)
        for v in range(n):
            nsf.append({"program_id": pid, "schedule_id": sid, "node_id": v, **dict(zip(SF, f[v].tolist()))})
        meas.append({"program_id": pid, "schedule_id": sid, "machine_id": machine_id, "timing_pass": 1,
                     "status": "timeout", "runtime_s": None})
    machines = [{"machine_id": machine_id, "hostname": "h", "cpu_model": "cpu", "n_cores": 2, "timing_threads": 2,
                 **(machine or {})}]
    path.mkdir(parents=True, exist_ok=True)
    for name, rows in [("programs", programs), ("nodes", nodes), ("edges", edges), ("schedules", schedules),
                       ("node_schedule_features", nsf), ("measurements", meas), ("timing_samples", samples),
                       ("machines", machines)]:
        schema.write_table(name, schema.from_rows(name, rows), schema.table_path(path, name))
    return path


def write_dataset(path: Path, **tables: list[dict]) -> Path:
    """Write a dataset from row dicts; feature columns left out are 0, other tables empty."""
    path.mkdir(parents=True, exist_ok=True)
    for name in schema.TABLE_NAMES:
        rows = [dict(r) for r in tables.get(name, [])]
        cols = PF if name == "nodes" else SF if name == "node_schedule_features" else ()
        for r in rows:
            for c in cols:
                r.setdefault(c, 0.0)
        schema.write_table(name, schema.from_rows(name, rows), schema.table_path(path, name))
    return path


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def fake_dataset(tmp_path_factory) -> Path:
    return make_fake_dataset(tmp_path_factory.mktemp("dataset") / "ds")


@pytest.fixture(scope="session")
def fake_split(fake_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("split") / "split.parquet"
    split_mod.write_split(fake_dataset, out)
    return out



@pytest.fixture
def known_dataset(tmp_path):
    """A train program ``pa`` (2 stages, 1 stencil edge, 2 good schedules, 2 skipped) and a
    test program ``pb`` with huge features; values chosen so tensors can be written by hand."""
    e = math.e
    nodes = [
        {"program_id": "pa", "node_id": 0, "name": "out", "func": "out", "stage_index": 0, "is_output": True, PF[10]: 3.0},
        {"program_id": "pa", "node_id": 1, "name": "in", "func": "in", "stage_index": 0, "is_output": False, PF[10]: 1.0},
        {"program_id": "pb", "node_id": 0, "name": "out", "func": "out", "stage_index": 0, "is_output": True, PF[10]: 1000.0},
    ]
    edges = [{"program_id": "pa", "src": 1, "dst": 0, "kind": "stencil", "n_loads": 3, "n_jacobians": 1,
              "producer_dims": 2, "consumer_loop_dims": 2, "max_stride": 1.0, "footprint_halo": 2}]
    schedules = [
        {"program_id": "pa", "schedule_id": sid, "has_featurization": feat}
        for sid, feat in [("sa2", True), ("sa1", True), ("sa3", True), ("sref", False)]
    ] + [{"program_id": "pb", "schedule_id": "sb1", "has_featurization": True}]
    nsf = [
        {"program_id": "pa", "schedule_id": "sa1", "node_id": 0, SF[0]: e - 1},
        {"program_id": "pa", "schedule_id": "sa1", "node_id": 1, SF[0]: 0.0},
        {"program_id": "pa", "schedule_id": "sa2", "node_id": 0, SF[0]: e**3 - 1},
        {"program_id": "pa", "schedule_id": "sa2", "node_id": 1, SF[0]: e - 1},
        {"program_id": "pa", "schedule_id": "sa3", "node_id": 0, SF[0]: 50.0},
        {"program_id": "pa", "schedule_id": "sa3", "node_id": 1, SF[0]: 50.0},
        {"program_id": "pb", "schedule_id": "sb1", "node_id": 0, SF[0]: 1e9},
    ]

    def m(pid, sid, k, status, t):
        return {"program_id": pid, "schedule_id": sid, "machine_id": "m0", "timing_pass": k, "status": status,
                "runtime_s": t, "label_method": "min"}

    meas = [
        m("pa", "sa1", 1, "ok", 2e-3),
        m("pa", "sa1", 2, "ok", 9.0),  # re-time: not a label
        m("pa", "sa2", 1, "ok", 4e-3),
        m("pa", "sa2", 1, "ok", 6e-3),  # timed twice in pass 1: median 5e-3
        m("pa", "sa3", 1, "crash", None),
        m("pa", "sref", 1, "ok", 1e-3),  # no featurization
        m("pb", "sb1", 1, "ok", 1.0),
    ]
    programs = [{"program_id": "pa", "origin": "random"}, {"program_id": "pb", "origin": "user"}]
    machines = [{"machine_id": "m0", "n_cores": 4, "timing_threads": 2}]
    path = write_dataset(tmp_path / "known", programs=programs, nodes=nodes, edges=edges, schedules=schedules,
                         node_schedule_features=nsf, measurements=meas, machines=machines)
    split = pl.DataFrame({"program_id": ["pa", "pb"], "split": ["train", "test"]})
    return path, split
