"""perfgraph adapt: programs timed here within a budget, the schedules chosen by the model,
and the model's seed runs fine-tuned on them."""

from __future__ import annotations

import copy
import json

import polars as pl
import pytest

from featurize import schema
from models.adapt import AdaptError, adapt
from models.registry import TrainedModel
from models.select import default_config
from models.train import train
from pipelines.cli import main
from tests.conftest import FAST_TIMING

pytestmark = pytest.mark.write_disk

TINY = {"max_stages": 3, "widths": [32], "channels": [4], "max_macs": 1_000_000}


def tiny_settings() -> dict:
    s = copy.deepcopy(default_config()["adapt"])
    s["programs"] = {"first_seed": 90000, "params": [TINY]}
    s["samplers"] = {"adams2019_random_weights_d50": {"count": 4, "beam_size": 1, "random_dropout": 50,
                                                      "weights": "random", "max_attempts": 8}}  # fmt: skip
    s["selection"] = {"time": 3, "fast": 1, "disagree": 1}
    s["finetune"] = {"epochs": 2, "patience": 2, "lr_scale": 0.3, "replay": 1.0}
    s["local_weights"] = False
    return s


@pytest.fixture(scope="module")
def base_models(fake_dataset, fake_split, tmp_path_factory):
    """gatv2 trained on the fake dataset with two seeds, as the workflow lays them out."""
    d = tmp_path_factory.mktemp("base")
    for k, run in enumerate(["gatv2", "gatv2/seeds/1"]):
        train("gatv2", fake_dataset, fake_split, d / run, epochs=2, seed=k, progress=False,
              config={"hidden_channels": 16, "heads": 2})  # fmt: skip
    return d


def test_adapt_times_what_the_model_chooses_and_fine_tunes_every_run(base_models, tmp_path) -> None:
    out = tmp_path / "adapted"
    # A budget this small runs one round: two programs, drawn and compiled side by side.
    record = adapt(base_models, out, budget_min=0.01, jobs=2, threads=1, settings=tiny_settings(),
                   timing=FAST_TIMING)  # fmt: skip
    timed = record["timing"]["programs"]
    assert [p["program_id"] for p in timed] == ["r90000", "r90001"]
    for p in timed:
        work = out / "work" / p["program_id"]
        drawn = schema.read_table(work / "drawn.parquet", "candidates")
        chosen = schema.read_table(work / "candidates.parquet", "candidates")
        # Every draw was featurized, none compiled; only the chosen ones were compiled and timed.
        assert (drawn["compile_status"] == "not_compiled").all() and drawn.height == p["drawn"] >= 3
        assert chosen.height == p["chosen"] == 3
        assert set(chosen["schedule_id"]) <= set(drawn["schedule_id"])  # draws re-run deterministically
        assert p["timed_ok"] >= 1
    # The timed programs are a dataset of this machine, with its facts.
    data = schema.read_dataset(out / "data")
    assert data["programs"].height == 2
    (machine,) = data["machines"].to_dicts()
    assert machine["calibration_s"] > 0 and machine["vector_bits"] in (128, 256, 512)
    assert set(data["measurements"]["machine_id"]) == {machine["machine_id"]}
    # Each seed run was fine-tuned; its checkpoint is a model of this machine.
    for run in ("gatv2", "gatv2/seeds/1"):
        adapted = TrainedModel(out / run)
        assert adapted.machine_id == machine["machine_id"]
        meta = json.loads((out / run / "meta.json").read_text())
        assert meta["adapted_from"] == str(base_models / run)
        assert meta["n_replay_programs"] == meta["n_train_programs"] > 0
    assert json.loads((out / "adapt.json").read_text())["models"]["gatv2"][1]["run"].endswith("seeds/1")


def test_adapt_on_programs_already_timed_times_nothing(base_models, fake_dataset, tmp_path) -> None:
    """--data: the train programs of a split, timed on one machine, are what every seed run fine-tunes on."""
    from models.split import held_out

    programs = schema.read_dataset(fake_dataset, ("programs",))["programs"]
    split = held_out(programs, adapt_on=("random",))
    assert set(split.filter(pl.col("split") == "train")["program_id"]) == set(
        programs.filter(pl.col("origin") == "random")["program_id"])
    assert set(split.filter(pl.col("split") == "zoo")["program_id"]) == set(
        programs.filter(pl.col("origin") == "zoo")["program_id"])
    schema.write_table("split", split, tmp_path / "held_out.parquet")
    out = tmp_path / "adapted"
    record = adapt(base_models, out, threads=1, settings=tiny_settings(), data=fake_dataset,
                   data_split=tmp_path / "held_out.parquet")  # fmt: skip
    adapted_on = sorted(split.filter(pl.col("split") == "train")["program_id"])
    assert [p["program_id"] for p in record["timing"]["programs"]] == adapted_on
    assert record["timing"]["source"] == str(fake_dataset) and record["budget_min"] is None
    assert not (out / "work").exists() and not (out / "data").exists()
    local = schema.read_table(out / "split.parquet", "split")
    assert sorted(local.filter(pl.col("split").is_in(["train", "val"]))["program_id"]) == adapted_on
    assert local.filter(pl.col("split") == "val").height >= 1
    for run in ("gatv2", "gatv2/seeds/1"):
        meta = json.loads((out / run / "meta.json").read_text())
        assert meta["n_train_programs"] + meta["n_val_programs"] == len(adapted_on)
        assert meta["dataset"] == str(fake_dataset)
    with pytest.raises(AdaptError, match="at least 2"):
        adapt(base_models, tmp_path / "b", settings=tiny_settings(), data=fake_dataset,
              data_split=_one_program_split(split, tmp_path))  # fmt: skip


def _one_program_split(split: pl.DataFrame, tmp_path):
    first = split.filter(pl.col("split") == "train")["program_id"][0]
    one = split.with_columns(split=pl.when(pl.col("program_id") == first).then(pl.lit("train")).otherwise(pl.lit("test")))
    schema.write_table("split", one, tmp_path / "one.parquet")
    return tmp_path / "one.parquet"


def test_adapt_refuses_a_bad_budget_or_no_model(base_models, tmp_path) -> None:
    with pytest.raises(AdaptError, match="positive budget"):
        adapt(base_models, tmp_path / "a", budget_min=0, settings=tiny_settings())
    with pytest.raises(AdaptError, match="no trained model here"):
        adapt(tmp_path / "none", tmp_path / "a", settings=tiny_settings())


def test_adapt_has_help_with_a_budget(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["adapt", "--help"])
    assert done.value.code == 0
    assert "--budget-min" in capsys.readouterr().out
