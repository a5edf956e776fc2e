"""Models of several machines: machine features, loading every machine's labels, training
and scoring per machine, and the merge of two machines' datasets."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

from featurize import schema
from featurize.merge import merge_datasets
from models.adapt import choose_to_time
from models.evaluate import evaluate
from models.halide.inputs import load_dataset
from models.machine import MACHINE_DIM, machine_vector
from models.registry import TrainedModel
from models.split import write_split
from models.train import train
from tests.models.conftest import make_fake_dataset

ZEN3 = {"vector_bits": 256, "calibration_s": 2e-4, "halide_target": "x86-64-linux-avx-avx2-fma-sse41"}
SPR = {"vector_bits": 512, "calibration_s": 1e-4, "l1d_kib": 48, "l2_kib": 2048, "l3_kib": 491520,
       "halide_target": "x86-64-linux-avx-avx2-avx512-avx512_skylake-fma-sse41"}  # fmt: skip


def test_machine_vector_reads_the_facts_and_defaults_what_is_missing() -> None:
    v = machine_vector(ZEN3)
    assert v.shape == (MACHINE_DIM,) and v.dtype == np.float32
    # The reference values read as 0: Zen 3 here is the reference but for its unrecorded caches.
    assert np.allclose(v, 0.0)
    w = machine_vector(SPR)
    assert w[0] == pytest.approx(1.0)  # twice as fast on the calibration kernel
    assert w[1] == pytest.approx(1.0)  # 512-bit vectors: one step above 256
    assert w[3] == pytest.approx(2.0)  # 2 MiB of L2 against 512 KiB
    assert w[4] == pytest.approx(np.log2(15))  # 480 MiB of L3 as the VM reports it
    assert machine_vector({**SPR, "l3_kib": 4 << 20})[4] == 4.0  # 4 GiB: capped
    assert np.allclose(machine_vector({}), machine_vector({"calibration_s": None, "vector_bits": 256}))


@pytest.fixture(scope="module")
def two_machines(tmp_path_factory):
    """Two fake datasets timed on two machines (distinct random programs, one shared zoo
    program timed on both), merged, and a split of the merge."""
    root = tmp_path_factory.mktemp("two")
    a = make_fake_dataset(root / "a", n_random=6, seed=0, machine_id="zen3", prefix="a", machine=ZEN3)
    b = make_fake_dataset(root / "b", n_random=6, seed=0, machine_id="spr", prefix="b", machine=SPR)
    # The second machine runs everything twice as fast and its ranking is its own: reversed.
    meas = schema.read_table(schema.table_path(b, "measurements"), "measurements")
    meas = meas.with_columns(runtime_s=(1.0 / pl.col("runtime_s")) * 1e-7)
    schema.write_table("measurements", meas, schema.table_path(b, "measurements"))
    merged = root / "ab"
    merge_datasets([a, b], merged)
    split = root / "split.parquet"
    write_split(merged, split)
    return merged, split


def test_merge_keeps_a_program_timed_on_two_machines_once_with_both_labels(two_machines) -> None:
    merged, _ = two_machines
    tables = schema.read_dataset(merged)
    zoo = tables["programs"].filter(pl.col("origin") == "zoo")
    assert zoo.height == 1
    pid = zoo["program_id"][0]
    # One row of each schedule and stage, the measurements of both machines.
    assert tables["schedules"].filter(pl.col("program_id") == pid)["schedule_id"].is_unique().all()
    assert tables["node_schedule_features"].filter(pl.col("program_id") == pid).is_duplicated().sum() == 0
    assert set(tables["measurements"].filter(pl.col("program_id") == pid)["machine_id"]) == {"zen3", "spr"}
    assert sorted(tables["machines"]["machine_id"]) == ["spr", "zen3"]


def test_merge_refuses_a_program_timed_twice_on_one_machine(tmp_path) -> None:
    a = make_fake_dataset(tmp_path / "a", seed=0, machine_id="m", prefix="a")
    b = make_fake_dataset(tmp_path / "b", seed=0, machine_id="m", prefix="b")
    with pytest.raises(schema.SchemaError, match="timed on the same machine m"):
        merge_datasets([a, b], tmp_path / "ab")


def test_load_dataset_gives_one_program_per_machine_with_its_features(two_machines) -> None:
    merged, split = two_machines
    split_t = schema.read_table(split, "split")
    one = load_dataset(merged, split_t)
    both = load_dataset(merged, split_t, all_machines=True)
    assert both.machine_ids == ("spr", "zen3") or both.machine_ids == ("zen3", "spr")
    assert {p.machine_id for p in one.programs} == {one.machine_id}
    zoo = [p for p in both.programs if p.split == "zoo"]
    assert sorted(p.machine_id for p in zoo) == ["spr", "zen3"]
    spr = next(p for p in zoo if p.machine_id == "spr")
    assert torch.allclose(spr.machine, torch.from_numpy(machine_vector(SPR)))
    # The same schedules, each machine's own labels.
    zen = next(p for p in zoo if p.machine_id == "zen3")
    assert spr.schedule_ids == zen.schedule_ids and not torch.allclose(spr.runtime, zen.runtime)


def test_a_model_of_two_machines_trains_reads_them_and_is_scored_per_machine(two_machines, tmp_path) -> None:
    merged, split = two_machines
    meta = train("gatv2", merged, split, tmp_path / "gatv2", epochs=3, progress=False,
                 config={"hidden_channels": 16, "heads": 2})  # fmt: skip
    assert meta["config"]["machine_features"] is True and len(meta["machine_ids"]) == 2
    trained = TrainedModel(tmp_path / "gatv2")
    assert trained.machine_aware and trained.model.machine_dim == MACHINE_DIM
    assert "machine_dim=5" in repr(trained.model)
    assert {r["machine_id"] for r in trained.machine_rows} == {"zen3", "spr"}
    # The machine changes the prediction; the PyG path agrees with the program path.
    ds = load_dataset(merged, schema.read_table(split, "split"), stats=trained.stats, all_machines=True,
                      vector_counts=trained.vector_counts)  # fmt: skip
    prog = ds.programs[0]
    other = prog.for_machine("x", torch.zeros(MACHINE_DIM) + 3.0)
    with torch.no_grad():
        a, b = trained.model.forward_program(prog), trained.model.forward_program(other)
        from torch_geometric.data import Batch

        batch = Batch.from_data_list(prog.to_data_list())
        c = trained.model(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs, batch.machine)
    assert not torch.allclose(a, b)
    assert torch.allclose(a, c, atol=1e-5)
    metrics = evaluate(merged, split, tmp_path / "gatv2")
    assert set(metrics["per_machine"]) == {"zen3", "spr"}
    assert metrics["per_machine"][trained.machine_id]["zoo"] == metrics["zoo"]
    preds = schema.read_table(tmp_path / "gatv2" / "predictions.parquet", "predictions")
    assert set(preds["machine_id"]) == {"zen3", "spr"}
    # A single-machine model of the same data reads no machine features.
    train("gatv2", merged, split, tmp_path / "one", epochs=1, progress=False,
          config={"hidden_channels": 16, "heads": 2, "machine_features": False})  # fmt: skip
    assert not TrainedModel(tmp_path / "one").machine_aware
    assert "per_machine" not in json.loads((tmp_path / "one" / "meta.json").read_text())["metrics"]


def test_choose_to_time_takes_the_picks_then_the_disagreement_then_random() -> None:
    # 3 runs, 6 candidates: candidate 0 is predicted fastest by all; runs disagree most on 4.
    runs = np.log(np.array([
        [1.0, 2.0, 3.0, 4.0, 2.0, 6.0],
        [1.0, 2.1, 3.0, 4.0, 12.0, 6.0],
        [1.0, 2.0, 3.1, 4.0, 1.0, 6.0],
    ]))  # fmt: skip
    rng = np.random.default_rng(0)
    chosen = choose_to_time(np.exp(runs), n_time=4, n_fast=1, n_disagree=1, rng=rng)
    assert chosen[:2] == [0, 4] and len(set(chosen)) == 4
    assert sorted(choose_to_time(np.exp(runs), 10, 2, 2, rng)) == list(range(6))
    # A run that cannot score a candidate: that one is worth timing first among the disagreements.
    bad = np.exp(runs).copy()
    bad[1, 5] = np.nan
    assert choose_to_time(bad, 2, 1, 1, rng) == [0, 5]
