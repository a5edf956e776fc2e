from __future__ import annotations

import json
import pickle

import polars as pl
import pytest
import torch

from featurize import schema
from featurize.schema import UserError
from models.__main__ import main
from models.evaluate import evaluate, summarize
from models.registry import CHECKPOINT, TrainedModel, load_checkpoint
from models.train import train


@pytest.mark.write_disk
def test_train_writes_checkpoint_history_meta(fake_dataset, fake_split, tmp_path) -> None:
    out = tmp_path / "gcn"
    meta = train("gcn", fake_dataset, fake_split, out, epochs=3, config={"hidden_channels": 8})
    assert {p.name for p in out.iterdir()} >= {CHECKPOINT, "history.json", "meta.json"}
    hist = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [0, 1, 2]
    assert meta["epochs_run"] == 3 and len(meta["dataset_hash"]) == 16
    assert meta["config"]["hidden_channels"] == 8
    assert meta["metrics"]["val"]["n_programs"] == 1
    ckpt = load_checkpoint(out)
    assert ckpt["done"] and set(ckpt["stats"]) == {"pipe_mean", "pipe_std", "sched_mean", "sched_std"}
    # "auto" resolved against the labels' machine, which has no target with masked vectors here
    assert meta["config"]["vector_counts"] == "halide" == TrainedModel(out).vector_counts


@pytest.mark.write_disk
def test_vector_counts_follow_the_labels_machine(fake_dataset, fake_split, tmp_path) -> None:
    """Labels of an AVX-512 machine: the model reads the applied schedule's vector counts,
    and its checkpoint says so; a checkpoint from before the setting existed read Halide's."""
    import shutil

    data = tmp_path / "avx512"
    shutil.copytree(fake_dataset, data)
    machines = schema.read_table(data / "machines.parquet", "machines").with_columns(
        halide_target=pl.lit("x86-64-linux-avx-avx2-avx512-avx512_skylake-f16c-fma-sse41"))
    schema.write_table("machines", machines, data / "machines.parquet")
    out = tmp_path / "gcn"
    train("gcn", data, fake_split, out, epochs=1, config={"hidden_channels": 8}, progress=False)
    assert TrainedModel(out).vector_counts == "applied"
    ckpt = load_checkpoint(out)
    del ckpt["config"]["vector_counts"]
    torch.save(ckpt, out / CHECKPOINT)
    assert TrainedModel(out).vector_counts == "halide"


@pytest.mark.write_disk
def test_resume_equals_uninterrupted_run(fake_dataset, fake_split, tmp_path) -> None:
    cfg = {"hidden_channels": 8, "patience": 100}
    train("gine", fake_dataset, fake_split, tmp_path / "a", epochs=2, config=cfg)
    meta = train("gine", fake_dataset, fake_split, tmp_path / "a", epochs=4, config=cfg)
    train("gine", fake_dataset, fake_split, tmp_path / "b", epochs=4, config=cfg)
    ha = json.loads((tmp_path / "a" / "history.json").read_text())
    hb = json.loads((tmp_path / "b" / "history.json").read_text())
    assert meta["epochs_run"] == 4
    assert [h["train_loss"] for h in ha] == [h["train_loss"] for h in hb]
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for k in a["best_state"]:
        torch.testing.assert_close(a["best_state"][k], b["best_state"][k])
    # a changed config does not resume
    other = train("gine", fake_dataset, fake_split, tmp_path / "a", epochs=1, config={"hidden_channels": 4})
    assert other["epochs_run"] == 1


class _Payload:
    def __reduce__(self):
        return (print, ("arbitrary code ran",))


@pytest.mark.write_disk
def test_gnn_epoch_budget_does_not_cut_adams2019_short(fake_dataset, fake_split, tmp_path) -> None:
    meta = train("adams2019", fake_dataset, fake_split, tmp_path / "a", epochs=2, config={"patience": 3})
    assert meta["epochs_run"] > 2  # its own budget (200, here with patience 3), not the GNNs' 2
    assert TrainedModel(tmp_path / "a").vector_counts == "halide"  # what Halide's search computes


def test_checkpoint_refuses_pickled_code(tmp_path) -> None:
    with open(tmp_path / CHECKPOINT, "wb") as f:
        torch.save({"format": 1, "evil": _Payload()}, f)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(tmp_path)


@pytest.mark.write_disk
def test_evaluate_and_summarize_end_to_end(fake_dataset, fake_split, tmp_path) -> None:
    models = tmp_path / "models"
    for name in ("gcn", "adams2019", "tvm_xgb"):
        # --epochs is the GNNs' budget; Adams2019's own is cut short here through its config.
        assert main(["train", "--dataset", str(fake_dataset), "--split", str(fake_split), "--model", name,
                     "--out", str(models / name), "--epochs", "2", "--config", '{"epochs": 2}' if name == "adams2019"
                     else "{}"]) == 0  # fmt: skip
        assert main(["evaluate", "--dataset", str(fake_dataset), "--split", str(fake_split),
                     "--model-dir", str(models / name)]) == 0
    preds = schema.read_table(models / "gcn" / "predictions.parquet", "predictions")
    assert set(preds["split"]) == {"test", "zoo"}
    assert preds.height == 12 and (preds["y_pred"] > 0).all()
    metrics = json.loads((models / "tvm_xgb" / "metrics.json").read_text())
    assert set(metrics) == {"val", "test", "zoo"} and metrics["test"]["n_programs"] == 1
    meta = json.loads((models / "adams2019" / "meta.json").read_text())
    assert set(meta["metrics"]) == {"val", "test", "zoo"}

    # A model's runs scored in one call (the workflow's evaluate job), each into its own directory,
    # or into one --out-dir each; a count that does not match is one clear error.
    seed1 = models / "gcn" / "seeds" / "1"
    assert main(["train", "--dataset", str(fake_dataset), "--split", str(fake_split), "--model", "gcn",
                 "--out", str(seed1), "--epochs", "2", "--seed", "1"]) == 0  # fmt: skip
    assert main(["evaluate", "--dataset", str(fake_dataset), "--split", str(fake_split),
                 "--model-dir", str(models / "gcn"), str(seed1)]) == 0  # fmt: skip
    assert set(schema.read_table(seed1 / "predictions.parquet", "predictions")["model"]) == {"gcn"}
    elsewhere = [tmp_path / "on_a", tmp_path / "on_b"]
    assert main(["evaluate", "--dataset", str(fake_dataset), "--split", str(fake_split), "--no-strict",
                 "--model-dir", str(models / "gcn"), str(seed1), "--out-dir", *map(str, elsewhere)]) == 0  # fmt: skip
    assert all((d / "metrics.json").exists() for d in elsewhere)
    # --runs: the workflow's train job, a model's runs in one process, laid out and seeded as above.
    both = tmp_path / "both" / "gcn"
    assert main(["train", "--dataset", str(fake_dataset), "--split", str(fake_split), "--model", "gcn",
                 "--out", str(both), "--epochs", "2", "--runs", "2"]) == 0  # fmt: skip
    for run, alone in ((both, models / "gcn"), (both / "seeds" / "1", seed1)):
        meta, alone_meta = (json.loads((d / "meta.json").read_text()) for d in (run, alone))
        assert meta["seed"] == alone_meta["seed"] and meta["best_val_loss"] == alone_meta["best_val_loss"]
    with pytest.raises(UserError, match="2 directories for 1"):
        main(["evaluate", "--dataset", str(fake_dataset), "--split", str(fake_split), "--no-strict",
              "--model-dir", str(seed1), "--out-dir", *map(str, elsewhere)])  # fmt: skip

    out = tmp_path / "summary.json"
    assert main(["summarize", "--models-dir", str(models), "--dataset", str(fake_dataset), "--out", str(out)]) == 0
    s = json.loads(out.read_text())
    assert set(s["models"]) == {"gcn", "adams2019", "tvm_xgb"}
    nf = s["noise_floor"]["all"]
    # split-half on every featurized, labelled schedule (6 per program); drift on the 3 re-timed ones
    assert nf["n_schedules"] == 6 * nf["n_programs"] and nf["drift"]["n_schedules"] == 3 * nf["n_programs"]
    assert set(s["noise_floor"]) == {"all", "train", "val", "test", "zoo"}
    r = s["ratios"]["test"]
    assert r["best_gnn"] == "gcn" and r["selected_on"] == "val"
    assert r["adams2019"]["mape_ratio_vs_best_gnn"] == pytest.approx(
        s["models"]["adams2019"]["test"]["mape"] / s["models"]["gcn"]["test"]["mape"]
    )


@pytest.mark.write_disk
def test_evaluate_refuses_other_split(fake_dataset, fake_split, tmp_path) -> None:
    train("pooled_xgb", fake_dataset, fake_split, tmp_path / "m", config={"max_rounds": 20})
    other = tmp_path / "other.parquet"
    split = schema.read_table(fake_split, "split").with_columns(pl.lit("test").alias("split"))
    schema.write_table("split", split, other)
    with pytest.raises(ValueError, match="retrain"):
        evaluate(fake_dataset, other, tmp_path / "m")
    assert TrainedModel(tmp_path / "m").name == "pooled_xgb"


@pytest.mark.write_disk
def test_summarize_averages_the_seed_runs(fake_dataset, fake_split, tmp_path) -> None:
    from featurize.schema import write_json

    models = tmp_path / "models"
    for k, mape in enumerate([10.0, 14.0, 12.0]):
        d = models / "gcn" if k == 0 else models / "gcn" / "seeds" / str(k)
        write_json({s: {"mape": mape, "n_programs": 2} for s in ("val", "test", "zoo")}, d / "metrics.json")
    out = summarize(models, fake_dataset, split_path=fake_split)
    assert out["seeds"] == {"gcn": 3}
    assert out["models"]["gcn"]["test"]["mape"] == pytest.approx(12.0)
    assert out["models"]["gcn"]["test"]["mape_std"] == pytest.approx(2.0)


@pytest.mark.write_disk
def test_scores_on_another_dataset_go_beside_and_into_the_summary(fake_dataset, fake_split, tmp_path) -> None:
    """A model trained on one dataset, scored on another with every program held out
    (models.dataset set): its own labels, its own directory, a 'fresh' summary section."""
    from models.split import write_split

    models = tmp_path / "models"
    train("pooled_xgb", fake_dataset, fake_split, models / "pooled_xgb", config={"max_rounds": 20})
    evaluate(fake_dataset, fake_split, models / "pooled_xgb")
    held = write_split(fake_dataset, tmp_path / "held_out.parquet", all_held_out=True)
    assert set(held["split"]) == {"test", "zoo"}
    with pytest.raises(ValueError, match="strict"):
        evaluate(fake_dataset, tmp_path / "held_out.parquet", models / "pooled_xgb", out_dir=tmp_path / "x")
    out = evaluate(fake_dataset, tmp_path / "held_out.parquet", models / "pooled_xgb", strict=False,
                   out_dir=models / "pooled_xgb" / "on_fake")  # fmt: skip
    assert set(out) == {"test", "zoo"}  # no validation split where nothing is trained on
    # The model's own metrics are untouched; the test split now holds every random program.
    own = json.loads((models / "pooled_xgb" / "metrics.json").read_text())
    assert own["test"]["n_programs"] < out["test"]["n_programs"]
    s = summarize(models, fake_dataset, split_path=fake_split, fresh_dataset=fake_dataset, fresh_dir="on_fake")
    assert s["fresh"]["models"]["pooled_xgb"]["test"]["mape"] == pytest.approx(out["test"]["mape"])
    assert "split_half" in s["fresh"]["noise"] and s["fresh"]["programs"] > 0


@pytest.mark.write_disk
def test_search_gives_every_model_the_same_trials_and_trains_with_the_choice(fake_dataset, fake_split,
                                                                             tmp_path) -> None:  # fmt: skip
    from models.registry import default_config
    from models.search import SEARCH_SPACES, trial_configs

    from models.constants import MODEL_NAMES

    assert set(SEARCH_SPACES) == set(MODEL_NAMES)  # the same budget for every model
    for name in SEARCH_SPACES:
        configs = trial_configs(name, 5, seed=1)
        assert len(configs) == 5 and configs[0] == {}
        assert len({json.dumps(c, sort_keys=True) for c in configs}) == 5
        assert configs == trial_configs(name, 5, seed=1)
        for c in configs:
            default_config(name, **c)  # every key is one of the model's
    out = tmp_path / "search.json"
    assert main(["search", "--dataset", str(fake_dataset), "--split", str(fake_split), "--model", "pooled_xgb",
                 "--out", str(out), "--trials", "3"]) == 0  # fmt: skip
    res = json.loads(out.read_text())
    assert len(res["trials"]) == 3 and res["metric"] == "mape_calibrated"
    # The defaults are trial 0; the choice is the trial with the lowest validation calibrated MAPE.
    assert res["trials"][0]["config"] == {}
    assert res["chosen"] == min(res["trials"], key=lambda t: t["val"]["mape_calibrated"])["config"]
    assert main(["train", "--dataset", str(fake_dataset), "--split", str(fake_split), "--model", "pooled_xgb",
                 "--out", str(tmp_path / "m"), "--search", str(out)]) == 0  # fmt: skip
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    # the chosen config, with "auto" vector counts resolved for the fake machine (no target)
    assert meta["config"] == {**default_config("pooled_xgb", **res["chosen"]), "vector_counts": "halide"}
