from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch
from torch_geometric.data import Batch

from featurize import schema
from models.constants import EDGE_DIM, EDGE_KINDS
from models.data import log_transform
from models.halide.inputs import FeatureStats, load_dataset

PF = schema.PIPELINE_COLUMNS
SF = schema.SCHEDULE_COLUMNS


def test_loader_known_program_exact_tensors(known_dataset) -> None:
    path, split = known_dataset
    ds = load_dataset(path, split)
    assert [p.program_id for p in ds.programs] == ["pa", "pb"]
    pa = ds.programs[0]
    assert (pa.split, pa.num_nodes, pa.num_edges) == ("train", 2, 1)
    # only the two featurized, successfully timed schedules, sorted by id
    assert pa.schedule_ids == ["sa1", "sa2"]

    # Statistics come from the train program only (pb's huge values do not move them).
    l4, l2 = math.log(4), math.log(2)
    assert ds.stats.pipe_mean[10].item() == pytest.approx((l4 + l2) / 2)
    assert ds.stats.pipe_std[10].item() == pytest.approx((l4 - l2) / 2)
    assert ds.stats.pipe_std[11].item() == 1.0  # constant column
    x_pipe = torch.zeros(2, len(PF))
    x_pipe[0, 10], x_pipe[1, 10] = 1.0, -1.0
    torch.testing.assert_close(pa.x_pipe, x_pipe)
    assert pa.pf_raw[0, 10].item() == 3.0 and pa.pf_raw[1, 10].item() == 1.0

    # schedule feature 0, log1p values [[1, 0], [3, 1]] -> mean 1.25, std sqrt(1.1875)
    sd = math.sqrt(1.1875)
    expect = torch.zeros(2, 2, len(SF))
    expect[:, :, 0] = (torch.tensor([[1.0, 0.0], [3.0, 1.0]]) - 1.25) / sd
    torch.testing.assert_close(pa.x_sched, expect)
    torch.testing.assert_close(pa.sf_raw[:, :, 0], torch.tensor([[math.e - 1, 0.0], [math.e**3 - 1, math.e - 1]]))

    # edge 1 -> 0, a stencil with 3 loads
    assert pa.edge_index.tolist() == [[1], [0]]
    ea = torch.zeros(1, EDGE_DIM)
    k = len(EDGE_KINDS)
    ea[0, EDGE_KINDS.index("stencil")] = 1
    ea[0, k:] = torch.log1p(torch.tensor([3.0, 1.0, 2.0, 2.0, 1.0, 2.0]))
    torch.testing.assert_close(pa.edge_attr, ea)

    # labels: pass-1 ok medians (duplicated pass-1 rows -> their median); pass 2 ignored
    torch.testing.assert_close(pa.runtime, torch.tensor([2e-3, 5e-3], dtype=torch.float64))
    torch.testing.assert_close(pa.y, torch.log(torch.tensor([2e-3, 5e-3])))

    # the test program uses the train statistics
    pb = ds.programs[1]
    assert pb.split == "test"
    expected = (math.log1p(1000.0) - ds.stats.pipe_mean[10].item()) / ds.stats.pipe_std[10].item()
    assert pb.x_pipe[0, 10].item() == pytest.approx(expected, rel=1e-5)


def test_loader_given_stats_and_split_filter(known_dataset) -> None:
    path, split = known_dataset
    full = load_dataset(path, split)
    only_test = load_dataset(path, split, splits=("test",))
    assert [p.program_id for p in only_test.programs] == ["pb"]
    torch.testing.assert_close(only_test.stats.pipe_mean, full.stats.pipe_mean)  # still fitted on train
    stats = FeatureStats(
        torch.zeros(len(PF)), torch.ones(len(PF)), torch.zeros(len(SF)), torch.ones(len(SF))
    )
    raw = load_dataset(path, split, stats=stats, splits=("test",))
    torch.testing.assert_close(raw.programs[0].x_pipe, torch.from_numpy(log_transform(raw.programs[0].pf_raw.numpy())))


def test_to_data_list_matches_program_tensors(known_dataset) -> None:
    path, split = known_dataset
    pa = load_dataset(path, split).programs[0]
    graphs = pa.to_data_list()
    assert [g.schedule_id for g in graphs] == ["sa1", "sa2"]
    assert all(g.program_id == "pa" for g in graphs)
    torch.testing.assert_close(graphs[1].x, torch.cat([pa.x_pipe, pa.x_sched[1]], dim=1))
    batch = Batch.from_data_list(graphs)
    assert batch.x.shape == (4, len(PF) + len(SF))
    assert batch.edge_index.tolist() == [[1, 3], [0, 2]]
    sub = pa.select([1])
    assert sub.schedule_ids == ["sa2"] and sub.x_sched.shape == (1, 2, len(SF))


def test_loader_drops_incomplete_featurization(fake_dataset, fake_split, tmp_path) -> None:
    tables = schema.read_dataset(fake_dataset)
    nsf = tables["node_schedule_features"]
    victim = nsf["schedule_id"][0]
    tables["node_schedule_features"] = nsf.filter(~((pl.col("schedule_id") == victim) & (pl.col("node_id") == 1)))
    ds = load_dataset(tables=tables, split=schema.read_table(fake_split, "split"))
    assert ds.dropped == {"incomplete_featurization": 1}
    assert victim not in {s for p in ds.programs for s in p.schedule_ids}


def test_fake_dataset_shapes(fake_dataset, fake_split) -> None:
    ds = load_dataset(fake_dataset, schema.read_table(fake_split, "split"))
    assert {p.split for p in ds.programs} == {"train", "val", "test", "zoo"}
    for p in ds.programs:
        assert p.num_schedules == 6  # the failed and the unfeaturized schedule are skipped
        assert torch.isfinite(p.x_sched).all() and torch.isfinite(p.x_pipe).all()
        assert np.all(p.runtime.numpy() > 0)
    assert ds.num_cores == 2 and ds.machine_id == "m0"


def test_applied_vector_counts_change_only_the_vector_columns(known_dataset) -> None:
    """``vector_counts="applied"`` reads a vectorized block's scalar stage as masked vectors;
    every other input is the same tensor, and an unknown setting is refused."""
    from models.halide.inputs import read_model_tables

    path, split = known_dataset
    tables = read_model_tables(path)
    text = ("Func out_1 = pipeline.get_func(1);\nout_1\n"
            "    .split(x, x, xi, 16, TailStrategy::GuardWithIf)\n    .vectorize(xi);\n")
    tables["schedules"] = tables["schedules"].with_columns(schedule_text=pl.lit(text))
    iv, isc, ie = SF.index("sf_num_vectors"), SF.index("sf_num_scalars"), SF.index("sf_innermost_pure_loop_extent")
    tables["node_schedule_features"] = tables["node_schedule_features"].with_columns(
        pl.lit(0.0, pl.Float32).alias(SF[iv]), pl.lit(64.0, pl.Float32).alias(SF[isc]),
        pl.lit(8.0, pl.Float32).alias(SF[ie]))
    halide = load_dataset(tables=tables, split=split).programs[0]
    applied = load_dataset(tables=tables, split=split, vector_counts="applied").programs[0]
    # node 0 ("out") has a vectorized block: 64 scalars in 8-wide rows -> 8 masked vectors
    assert applied.sf_raw[:, 0, iv].tolist() == [8.0, 8.0] and applied.sf_raw[:, 0, isc].tolist() == [0.0, 0.0]
    assert halide.sf_raw[:, 0, iv].tolist() == [0.0, 0.0]
    # node 1 ("in") has no block: Halide's counts
    assert torch.equal(applied.sf_raw[:, 1], halide.sf_raw[:, 1])
    keep = [j for j in range(len(SF)) if j not in (iv, isc)]
    assert torch.equal(applied.sf_raw[..., keep], halide.sf_raw[..., keep])
    with pytest.raises(schema.UserError, match="vector_counts"):
        load_dataset(tables=tables, split=split, vector_counts="lanes")
    # "auto": Halide's counts for a machine without masked vectors (or no target), the
    # applied ones for an AVX-512 one; the dataset says which it used.
    auto = load_dataset(tables=tables, split=split, vector_counts="auto")
    assert auto.vector_counts == "halide" and torch.equal(auto.programs[0].sf_raw, halide.sf_raw)
    tables["machines"] = tables["machines"].with_columns(halide_target=pl.lit("x86-64-linux-avx2-avx512-fma"))
    auto = load_dataset(tables=tables, split=split, vector_counts="auto")
    assert auto.vector_counts == "applied" and torch.equal(auto.programs[0].sf_raw, applied.sf_raw)
