"""The model stages on a tiny TVM dataset: TVM's XGBModel and the GNNs, scored by models.evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tvm", reason="apache-tvm is not installed")

from featurize import schema  # noqa: E402
from models import split as split_mod  # noqa: E402
from models.tvm import inputs, stages, xgbmodel  # noqa: E402


@pytest.fixture(scope="module")
def tvm_split(tvm_work):
    path = tvm_work["data"] / "split.parquet"
    split_mod.write_split(tvm_work["data"], path)
    return path


def test_split_puts_zoo_apart(tvm_split) -> None:
    split = schema.read_table(tvm_split, "split")
    assert dict(split.select("program_id", "split").rows()) == {"t00000": "train", "tzoo_softmax": "zoo"}


def test_xgbmodel_offline_equals_tvm_update(tvm_work, tvm_split) -> None:
    """Training from the tables is what XGBModel.update() does with the same candidates."""
    from tvm import s_tir
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo

    from pipelines.tvm import ops as tp
    from pipelines.tvm.sample import light_intrinsics, make_target

    light_intrinsics()
    tables = inputs.read_tables(tvm_work["data"])
    split = schema.read_table(tvm_split, "split")
    progs, _, _ = inputs.load_programs(tables, split)
    train = [p for p in progs if p.split == "train"]
    base = xgbmodel.XGBModelBaseline(threads=1).fit(train)
    scores = base.predict_scores(train)[0]
    assert np.all(np.isfinite(scores)) and scores.shape == (train[0].num_schedules,)

    prog = json.loads((tvm_work["work"][0] / "program.json").read_text())
    mod = tp.workload_module(tp.build_workload(prog["spec"], prog["program_id"]))
    ctx = ms.TuneContext(mod=mod, target=make_target(1), space_generator="post-order-apply",
                         search_strategy="replay-trace", num_threads=1)  # fmt: skip
    cands = schema.read_table(tvm_work["work"][0] / "candidates.parquet", "tvm_candidates")
    by_id = {r["schedule_id"]: r for r in cands.iter_rows(named=True)}
    mcs, results = [], []
    for sid, t in zip(train[0].schedule_ids, train[0].runtime):
        sch = s_tir.Schedule(mod)
        s_tir.Trace.apply_json_to_schedule(json.loads(by_id[sid]["trace_json"]), sch)
        mcs.append(ms.MeasureCandidate(sch, ArgInfo.from_prim_func(mod["main"])))
        results.append(ms.runner.RunnerResult([float(t)], None))
    online = xgbmodel.make_xgbmodel(threads=1)
    online.update(ctx, mcs, results)
    np.testing.assert_allclose(online.predict(ctx, mcs), scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["tvm_xgb", "gcn"])
def test_train_and_evaluate(tvm_work, tvm_split, tmp_path, name) -> None:
    out = tmp_path / name
    meta = stages.train(name, tvm_work["data"], tvm_split, out, epochs=3, threads=1)
    assert meta["n_train_programs"] == 1
    metrics = stages.evaluate(tvm_work["data"], tvm_split, out)
    assert metrics["test"] is None and metrics["zoo"]["n_programs"] == 1
    assert set(metrics["zoo"]) >= {"mape", "rmse_log", "kendall_tau", "pairwise_acc", "top1", "top5"}
    pred = schema.read_table(out / "predictions.parquet", "predictions")
    assert pred.height == metrics["zoo"]["n_schedules"] and (pred["y_pred"] > 0).all()
    summary = stages.summarize(tmp_path, tvm_work["data"], tvm_split, tmp_path / "summary.json")
    assert name in summary["models"] and (tmp_path / "summary.md").read_text().startswith("### TVM")


def test_gnn_features_have_the_adapter_widths(tvm_work, tvm_split) -> None:
    tables = inputs.read_tables(tvm_work["data"])
    progs, _, _ = inputs.load_programs(tables, schema.read_table(tvm_split, "split"))
    stats = inputs.TVMStats.fit(progs)
    data = inputs.to_program_data(progs[0], stats)
    assert data.x_pipe.shape == (progs[0].num_nodes, inputs.NODE_DIM)
    assert data.x_sched.shape == (progs[0].num_schedules, progs[0].num_nodes, inputs.SCHED_DIM)
    model = stages.build_gnn("gine", {**__import__("models.registry", fromlist=["x"]).DEFAULT_CONFIGS["gine"]})
    out = model.forward_program(data)
    assert out.shape == (progs[0].num_schedules,) and bool(out.isfinite().all())


def test_seed_runs_are_averaged_and_reported(tvm_work, tvm_split, tmp_path) -> None:
    """Each model's runs (seeds/<k> beside the first, as the workflow writes them) are averaged in the
    summary with their spread, the XGBModel / best-GNN ratio is given per seed, and the report's
    TVM section and ratio rows show both."""
    import polars as pl

    from report.load import Inputs
    from report.sections import SectionContext, section_tvm, tvm_ratio_rows

    models = tmp_path / "tvm_x"
    for name in ("tvm_xgb", "gcn"):
        for k, run in enumerate((models / name, models / name / "seeds" / "1")):
            stages.train(name, tvm_work["data"], tvm_split, run, epochs=2, threads=1, seed=k)
            stages.evaluate(tvm_work["data"], tvm_split, run)
    summary = stages.summarize(models, tvm_work["data"], tvm_split, models / "summary.json", n_seeds=2)
    assert summary["seeds"] == {"tvm_xgb": 2, "gcn": 2}
    zoo = summary["models"]["gcn"]["zoo"]
    assert zoo["n_seeds"] == 2 and zoo["kendall_tau_std"] is not None
    per_seed = [json.loads((run / "metrics.json").read_text())["zoo"]["mape"]
                for run in (models / "gcn", models / "gcn" / "seeds" / "1")]  # fmt: skip
    assert zoo["mape"] == pytest.approx(np.mean(per_seed))
    r = summary["ratios"]["zoo"]
    assert r["best_gnn"] == "gcn" and len(r["mape_ratio_seeds"]) == 2
    assert r["mape_ratio_xgbmodel_vs_best_gnn"] > 0 and r["mape_calibrated_ratio_xgbmodel_vs_best_gnn"] > 0

    inp = Inputs(dataset_dir=tvm_work["data"], models_dir=tmp_path, config={"dataset": "x"})
    rows = tvm_ratio_rows(inp, {})
    assert [row["split"] for row in rows] == ["zoo (TVM programs)"] and rows[0]["MAPE ratio"] == r["mape_ratio_xgbmodel_vs_best_gnn"]
    ctx = SectionContext(inp=inp, headline={}, noise={}, noise_pairs=pl.DataFrame(), preds=pl.DataFrame(), per_prog={})
    html = "".join(b if isinstance(b, str) else b.html() for b in section_tvm(ctx))
    assert "±" in html and "XGBModel MAPE / best GNN (gcn" in html
    assert "### TVM, zoo programs (mean ± std over training seeds)" in ctx.markdown["tvm"]
