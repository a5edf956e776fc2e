"""The workflow end to end on a tiny config: dataset tables, reruns, a single stage."""

from __future__ import annotations

import re

import polars as pl

from featurize import schema

from tests.conftest import snakemake


def test_dataset_has_every_table(tiny_run) -> None:
    data = schema.read_dataset(tiny_run / "results/tiny")
    assert set(data) == set(schema.TABLE_NAMES)
    assert set(data["programs"]["origin"]) == {"random", "zoo"}
    assert data["programs"].height == 3
    # Every schedule has one main-pass measurement; some have a noise-floor re-time.
    m = data["measurements"]
    assert m.filter(pl.col("timing_pass") == 1).height == data["schedules"].height
    assert m.filter(pl.col("timing_pass") == 2).height >= 1
    assert data["machines"].height == 1
    # Node-schedule features exist exactly for the featurized schedules, for every stage.
    n_nodes = dict(data["programs"].select("program_id", "n_nodes").iter_rows())
    feat = data["schedules"].filter(pl.col("has_featurization"))
    assert data["node_schedule_features"].height == sum(n_nodes[p] for p in feat["program_id"])


def test_every_model_is_trained_evaluated_and_reported(tiny_run) -> None:
    import json

    summary = json.loads((tiny_run / "results/models/summary.json").read_text())
    for model in ("gcn", "gine", "gatv2", "adams2019", "tvm_xgb", "pooled_xgb"):
        metrics = json.loads((tiny_run / f"results/models/{model}/metrics.json").read_text())
        assert "zoo" in metrics, model
        preds = schema.read_table(tiny_run / f"results/models/{model}/predictions.parquet", "predictions")
        assert preds.height > 0 and (preds["y_pred"] > 0).all(), model
        # models.seeds = 2: a second run under seeds/1, labelled with the model's own name
        second = schema.read_table(tiny_run / f"results/models/{model}/seeds/1/predictions.parquet", "predictions")
        assert set(second["model"]) == {model}
        assert json.loads((tiny_run / f"results/models/{model}/seeds/1/meta.json").read_text())["model"] == model
    assert set(summary["models"]) >= {"gcn", "adams2019", "tvm_xgb"}
    assert set(summary["seeds"].values()) == {2}
    assert summary["models"]["gcn"]["zoo"]["n_seeds"] == 2 and "mape_std" in summary["models"]["gcn"]["zoo"]
    html = (tiny_run / "results/report/index.html").read_text()
    assert 'id="headline"' in html and "data:image/png;base64," in html
    assert (tiny_run / "results/report/summary.md").read_text().startswith("# perfgraph")


def test_rerun_does_nothing_and_one_stage_reruns_alone(tiny_run) -> None:
    again = snakemake(tiny_run, "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr
    forced = snakemake(tiny_run, "featurize", "--forcerun", "featurize", "--dry-run")
    assert job_counts(forced.stdout + forced.stderr) == {"featurize": 1, "total": 1}


def job_counts(log: str) -> dict[str, int]:
    """The "Job stats" table of a Snakemake log."""
    counts = {}
    for line in log.split("Job stats:", 1)[-1].splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


def test_models_train_on_a_published_dataset_and_score_the_fresh_one(tiny_run, tmp_path) -> None:
    """Publish the tiny dataset with its card, then train on it as on datasets/reference:
    the models are also scored on the dataset the run builds, and the report says so."""
    import json
    import shutil

    import yaml

    from featurize.card import card_figures

    work = tmp_path / "run"
    shutil.copytree(tiny_run, work, symlinks=True)
    published = snakemake(work, "publish_dataset")
    assert published.returncode == 0, published.stderr[-3000:]
    card = json.loads((work / "datasets/tiny/card.json").read_text())
    from tests.featurize.test_card import rounded

    for key, value in card_figures(work / "datasets/tiny").items():
        assert json.dumps(rounded(card[key]), sort_keys=True) == json.dumps(rounded(value), sort_keys=True), key
    readme = (work / "datasets/tiny/README.md").read_text()
    assert f"Schedules: {card['schedules']}" in readme and "Within-program spread" in readme

    cfg = yaml.safe_load((work / "config/config.yaml").read_text())
    cfg["models"].update(dataset="datasets/tiny", names=["gcn", "pooled_xgb"], seeds=1)
    # perfgraph adapt in the workflow, as make run does it: on the random programs the run builds.
    cfg["adapt"] = {"models": ["gcn"], "local_weights": False, "finetune": {"epochs": 2, "patience": 2}}
    (work / "config/config.yaml").write_text(yaml.safe_dump(cfg))
    run = snakemake(work)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((work / "results/models/summary.json").read_text())
    assert summary["dataset"] == "datasets/tiny"
    fresh = summary["fresh"]
    assert fresh["dataset"] == "results/tiny" and set(fresh["models"]) == {"gcn", "pooled_xgb", "gcn+adapted"}
    assert summary["adapt"]["timing"]["programs"] == 2 and "gcn+adapted" in summary["selection"]["models"]
    assert summary["adapt"]["timing"]["source"] == "results/tiny"
    # The random programs adapted on are scored by no model: the zoo program is.
    held_out = schema.read_table(work / "results/tiny/split_held_out.parquet", "split")
    assert sorted(held_out["split"]) == ["train", "train", "zoo"]
    for name in ("gcn", "gcn+adapted"):
        assert fresh["models"][name]["zoo"]["n_programs"] == 1 and not fresh["models"][name].get("test")
    assert "split_half" in fresh["noise"]
    assert (work / "results/models/gcn/on_tiny/predictions.parquet").exists()
    assert "Cross-machine check" in (work / "results/report/summary.md").read_text()
