from __future__ import annotations

import base64
import json
import re

import polars as pl
import pytest

from featurize import schema
from report import SECTION_IDS, build_report
from report.__main__ import main

from tests.report.report_fakes import FAKE_MODELS, make_models

pytestmark = pytest.mark.write_disk

IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
#: Figures of a complete report: scatter, CDF, Kendall, top-k, training, 3 dataset figures.
N_FIGURES = 9


def _section(html: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', html, re.S)
    assert m, f"section {sid} missing"
    return m.group(1)


def test_every_section_and_image_present(full_report) -> None:
    res, html, _ = full_report
    assert res.failed_sections == []
    assert res.sections == list(SECTION_IDS)
    for sid in SECTION_IDS:
        _section(html, sid)
    images = IMG.findall(html)
    assert len(images) == N_FIGURES
    for b64 in images:
        png = base64.b64decode(b64)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    # one image per figure section, three in the dataset section
    for sid in ("predicted-vs-measured", "error-cdf", "kendall", "top-k", "training"):
        assert len(IMG.findall(_section(html, sid))) == 1, sid
    assert len(IMG.findall(_section(html, "dataset"))) == 3
    assert len(IMG.findall(_section(html, "machine"))) == 1  # the machine-speed series
    assert sorted(p.name for p in res.figures.values()) == sorted(
        f"{n}.png" for n in ("predicted_vs_measured", "error_cdf", "kendall_tau", "top_k", "training_curves", "machine_speed",
                             "program_shapes", "runtime_distribution", "sampler_status"))
    assert all(p.exists() for p in res.figures.values())


def test_self_contained(full_report) -> None:
    _, html, _ = full_report
    assert "<script" not in html.lower()
    assert not re.search(r'(src|href)="(?!data:|#)', html), "a resource outside the page"
    assert "http://" not in html and "https://" not in html


def test_headline_table_numbers(full_report, models_dir) -> None:
    _, html, md = full_report
    head = _section(html, "headline")
    for name in FAKE_MODELS:
        assert f"<td>{name}</td>" in head
    assert "timing noise (split-half)" in head
    # gatv2 is in the config's model list but was not trained: listed with no data
    assert "gatv2" in head and "model not found" in head
    assert "gatv2" in _section(html, "overview") and "missing: gatv2" in _section(html, "overview")
    # the numbers are the models' own metrics.json
    metrics = json.loads((models_dir / "gine" / "metrics.json").read_text())
    assert f"{metrics['test']['mape']:.1f}%" in head
    assert f"{metrics['zoo']['kendall_tau']:.3f}" in head


def test_summary_md(full_report, models_dir) -> None:
    _, _, md = full_report
    assert "| model | kind | MAPE | MAPE calibrated | RMSE log | Kendall τ | pairwise acc. | top-1 | top-5 | programs | schedules |" in md
    assert "### test programs" in md and "### zoo programs" in md
    for name in FAKE_MODELS:
        assert re.search(rf"^\| \**{name}\** \|", md, re.M), name
    assert re.search(r"^\| \*timing noise \(split-half\)\* \|", md, re.M)
    assert "### Timing noise" in md and "split-half MAPE" in md and "drift of a later re-time MAPE" in md
    summary = json.loads((models_dir / "summary.json").read_text())
    ratio = summary["ratios"]["test"]["adams2019"]["mape_ratio_vs_best_gnn"]
    assert f"{ratio:.2f}x" in md
    assert "7.75x" in md and "12.00x" in md


def test_ratios_beside_the_paper(full_report) -> None:
    _, html, _ = full_report
    r = _section(html, "ratios")
    assert "7.75x" in r and "12.00x" in r
    assert "gine" in r  # the best GNN of the fake models
    assert re.search(r"\[\d+\.\d\dx, \d+\.\d\dx\]", r), "bootstrap interval of the ratio"


def test_dataset_machine_config_sections(full_report, config_file) -> None:
    _, html, _ = full_report
    ds = _section(html, "dataset")
    assert "9 (random 6, user 1, zoo 2)" in ds
    for sampler in ("adams2019_dropout", "adams2019_beam", "mullapudi2016", "li2018"):
        assert sampler in ds
    for status in ("timeout", "compile_error", "crash"):
        assert status in ds
    m = _section(html, "machine")
    assert "Timing noise and machine speed" in m and "machine speed through the timing jobs" in m
    assert "split-half" in m and "drift" in m
    assert "Test CPU @ 3GHz" in m and "x86-64-linux-avx2" in m and "21.0.0" in m and "2.13.0+cpu" in m
    c = _section(html, "config")
    assert "# test config" in c and str(config_file) in c
    assert len(IMG.findall(_section(html, "training"))) == 1


def test_missing_model_and_empty_split(dataset, tmp_path) -> None:
    """One model, evaluated on test only: zoo says "no data", nothing crashes."""
    models = make_models(tmp_path / "models", dataset, names={"adams2019": 0.5}, splits=("test",), summary=False)
    res = build_report(dataset, models, tmp_path / "out", strict=True)
    html = res.index_html.read_text()
    assert res.failed_sections == []
    for sid in SECTION_IDS:
        _section(html, sid)
    head = _section(html, "headline")
    assert "no data: no model has predictions on zoo programs" in head
    assert "adams2019" in head
    r = _section(html, "ratios")
    assert "no data" in r  # no GNN to divide by
    assert "no data" in _section(html, "config")  # no config given
    # the timing noise was computed here (no summary.json)
    assert "timing noise (split-half)" in head
    md = res.summary_md.read_text()
    assert "### zoo programs\n\nno data" in md


def test_nothing_there(tmp_path) -> None:
    """No dataset, no models: every section still renders and says why it is empty."""
    res = build_report(tmp_path / "no-dataset", tmp_path / "no-models", tmp_path / "out", strict=True)
    html = res.index_html.read_text()
    assert res.failed_sections == []
    for sid in SECTION_IDS:
        body = _section(html, sid)
        if sid != "overview":
            assert "no data" in body, sid
    assert IMG.findall(html) == []
    assert "dataset directory not found" in _section(html, "overview")
    assert (tmp_path / "out" / "figures").is_dir() and res.figures == {}


def test_predictions_with_bad_values(dataset, tmp_path) -> None:
    """Zero, negative and NaN predictions (a diverged model) are drawn, not fatal."""
    models = make_models(tmp_path / "models", dataset, names={"gcn": 0.3}, summary=False)
    path = models / "gcn" / "predictions.parquet"
    pred = schema.read_table(path, "predictions")
    bad = pl.Series([0.0, -1.0, float("nan")] + [None] * (pred.height - 3), dtype=pl.Float64)
    pred = pred.with_columns(pl.coalesce(bad, pl.col("y_pred")).alias("y_pred"))
    schema.write_table("predictions", pred, path)
    res = build_report(dataset, models, tmp_path / "out", strict=True)
    assert res.failed_sections == []
    assert len(IMG.findall(_section(res.index_html.read_text(), "predicted-vs-measured"))) == 1


def test_cli(dataset, models_dir, config_file, tmp_path, capsys) -> None:
    out = tmp_path / "report"
    cfg = json.dumps({"dataset": "ds", "models": {"names": list(FAKE_MODELS), "epochs": 12}})
    rc = main(["--dataset", str(dataset), "--models", str(models_dir), "--config", str(config_file), str(config_file),
               "--config-json", cfg, "--out", str(out), "--strict", "--no-figures"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"index_html": str(out / "index.html"), "summary_md": str(out / "summary.md"),
                       "figures": 0, "failed_sections": []}
    html = (out / "index.html").read_text()
    assert "Effective configuration" in html and html.count("# test config") == 1  # the file once, not twice
    assert "gatv2" not in _section(html, "headline")  # the effective config lists only the fake models
    assert "| gine |" in (out / "summary.md").read_text()


def test_reads_the_real_summarize_output(dataset, tmp_path) -> None:
    """The summary written by models.evaluate.summarize (not our imitation) is understood."""
    pytest.importorskip("torch")
    from models.evaluate import summarize

    models = make_models(tmp_path / "models", dataset, summary=False)
    summarize(models, dataset, out=models / "summary.json", split_path=schema.table_path(dataset, "split"))
    res = build_report(dataset, models, tmp_path / "out", strict=True, draw_figures=False)
    html = res.index_html.read_text()
    assert IMG.findall(html) == [] and "Figure not drawn" in _section(html, "error-cdf")
    summary = json.loads((models / "summary.json").read_text())
    assert f"<code>{models / 'summary.json'}</code>" in html
    ratio = summary["ratios"]["test"]["tvm_xgb"]["mape_ratio_vs_best_gnn"]
    assert f"{ratio:.2f}x" in _section(html, "ratios")
    nf = summary["noise_floor"]["test"]["mape"]
    assert f"{nf:.1f}%" in _section(html, "headline")


def test_json_config_file(dataset, models_dir, tmp_path) -> None:
    """The workflow passes the validated config as results/<dataset>/config.json."""
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"dataset": "ds", "models": {"names": ["gcn", "gatv2"], "epochs": 3}}, indent=1))
    res = build_report(dataset, models_dir, tmp_path / "out", config_files=[cfg], strict=True, draw_figures=False)
    html = res.index_html.read_text()
    assert "&quot;epochs&quot;: 3" in _section(html, "config")
    head = _section(html, "headline")
    assert "model not found" in head and "gatv2" in head  # expected by the config, not trained
    assert "<td>gine</td>" in head  # trained although not listed: still shown


def test_cross_machine_section(dataset, tmp_path) -> None:
    """Models trained on a published dataset: the fresh dataset's noise and scores are shown."""
    from featurize.summary import noise

    models = make_models(tmp_path / "models", dataset)
    summary = json.loads((models / "summary.json").read_text())
    summary["fresh"] = {
        "dataset": "results/fresh",
        "programs": 4,
        "noise": noise(schema.read_dataset(dataset)),
        "spread": {"programs": 4, "spread_median": 7.25, "near_best": 1.5, "near_best_share_median": 0.4},
        "models": {"gcn": {"test": {**summary["models"]["gcn"]["test"], "mape": 33.3}}},
    }
    schema.write_json(summary, models / "summary.json")
    res = build_report(dataset, models, tmp_path / "report", draw_figures=False)
    html = (tmp_path / "report/index.html").read_text()
    fresh = _section(html, "fresh")
    assert "results/fresh" in fresh and "7.2x" in fresh and "33.3" in fresh and "split-half" in fresh
    assert "no scores on zoo programs" in fresh
    assert "Cross-machine check" in res.summary_md.read_text()
    # Without a fresh dataset the section says why it is empty.
    summary.pop("fresh")
    schema.write_json(summary, models / "summary.json")
    build_report(dataset, models, tmp_path / "report2", draw_figures=False)
    assert "models.dataset is not set" in _section((tmp_path / "report2/index.html").read_text(), "fresh")


def test_selection_section(dataset, tmp_path) -> None:
    """The picks against Halide's default, from a summary as models.selection writes it: every
    pick's column (the tuned one too) and the figure."""
    from models.selection import pick_speedups, reference_speedups

    models = make_models(tmp_path / "models", dataset)
    refs = pl.DataFrame({"program_id": ["zoo_a", "zoo_b"], "adams2019_beam_s": [2.0, 1.0],
                         "mullapudi2016_s": [1.0, 4.0], "li2018_s": [3.0, 1.0]})  # fmt: skip
    preds = pl.DataFrame({"program_id": ["zoo_a", "zoo_a", "zoo_b", "zoo_b"], "schedule_id": ["a", "b", "c", "d"],
                          "y_true": [1.5, 4.0, 2.0, 3.0], "y_pred": [1.0, 2.0, 1.0, 3.0]})  # fmt: skip
    # Two training runs: the second swaps zoo_a's predictions, so it picks the 4-second candidate.
    other = preds.with_columns(y_pred=pl.Series([2.0, 1.0, 1.0, 3.0]))
    picks, _ = pick_speedups([preds, other], refs, others=frozenset({"a"}))  # "a": a Mullapudi2016 schedule
    summary = json.loads((models / "summary.json").read_text())
    summary["selection"] = {"dataset": "results/default", "halide_default": "beam search", "programs": ["zoo_a", "zoo_b"],
                            "programs_without_default": [], "references": reference_speedups(refs),
                            "models": {"gcn": picks}}  # fmt: skip
    schema.write_json(summary, models / "summary.json")
    res = build_report(dataset, models, tmp_path / "report")
    section = _section((tmp_path / "report/index.html").read_text(), "selection")
    assert "tuned" in section and "mullapudi2016" in section and len(IMG.findall(section)) == 1
    # zoo_b: both candidates are slower than the default pick (top-1 0.5x); tuned keeps the default: 1x.
    assert picks["top1"]["min"] == pytest.approx(0.5) and picks["tuned"]["min"] == pytest.approx(1.0)
    assert "tuned" in res.summary_md.read_text()
    # each run's own top-1: run 1 (2/1.5 on zoo_a, 0.5 on zoo_b) 0.82x, run 2 (0.5, 0.5) 0.5x; worst 0.5x
    assert "0.50-0.82x (worst 0.50x)" in section
    # the first run picked "a" on zoo_a: 1 of 4 top-1 picks; without "a", zoo_a's oracle is 4 s (0.5x)
    assert "1 of 4" in section and "oracle, Adams2019" in section
    assert picks["oracle_adams2019"]["min"] == pytest.approx(0.5)


def test_machines_section_scores_each_machine_and_the_adaptation(dataset, tmp_path) -> None:
    """A model of two machines, per machine, and what perfgraph adapt timed, from a summary as
    models.evaluate.summarize writes them."""
    models = make_models(tmp_path / "models", dataset)
    summary = json.loads((models / "summary.json").read_text())
    m = summary["models"]["gine"]
    summary["models"]["gine"] = {**m, "per_machine": {"zen3": {"test": m["test"]}, "spr": {"test": m["test"]}},
                                  "machines": {"zen3": "zen3 (AMD EPYC, 256-bit vectors)", "spr": "spr (Xeon)"}}
    summary["adapt"] = {"budget_min": 30, "machine": {"cpu_model": "Xeon", "vector_bits": 512}, "finetune_wall_s": 20,
                        "timing": {"wall_s": 1800, "programs": 60, "schedules_timed": 600},
                        "models": {"gatv2": [{"run": "results/adapted/gatv2", "val_before": {"kendall_tau": 0.4},
                                              "val_after": {"kendall_tau": 0.5}, "epochs_run": 9}]}}  # fmt: skip
    schema.write_json(summary, models / "summary.json")
    res = build_report(dataset, models, tmp_path / "report")
    section = _section((tmp_path / "report/index.html").read_text(), "machines")
    assert "gine on zen3" in section and "gine on spr" in section and "256-bit" in section
    assert "timed 60 random programs" in section and "0.500" in section
    assert "Adaptation to this machine: 60 programs timed in 30.0 min" in res.summary_md.read_text()
    # make run's adaptation: on the random programs it built, timing nothing of its own.
    summary["adapt"].update(budget_min=None, timing={"wall_s": 0.0, "programs": 4, "schedules_timed": 80,
                                                     "source": "results/default"})  # fmt: skip
    schema.write_json(summary, models / "summary.json")
    res = build_report(dataset, models, tmp_path / "report2")
    section = _section((tmp_path / "report2/index.html").read_text(), "machines")
    assert "on 4 random programs of <code>results/default</code>" in section and "80 schedules" in section
    assert "Adaptation to this machine: 4 programs of results/default." in res.summary_md.read_text()
