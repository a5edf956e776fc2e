"""The report's sections: each a function of the loaded inputs that returns its content as
blocks (:class:`report.render.Table`, :class:`report.render.Figure` and HTML text, in reading
order); :func:`report.render.render_blocks` is the one renderer, :mod:`report.build` puts the
page together. A section whose data is missing says "no data" and why.
"""

from __future__ import annotations

import json
import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from featurize import schema
from models.constants import EVAL_SPLITS, XGB_MODELS
from models.metrics import HIGHER_IS_BETTER, METRIC_DOCS
from report import figures, stats
from report.load import MODEL_DOCS, Inputs, model_kind, paper_ratios, ratios
from report.render import (
    DASH,
    Block,
    Figure,
    Table,
    esc,
    fmt_num,
    fmt_pct,
    fmt_ratio,
    fmt_seconds,
    nodata,
    note,
    pre,
    ul,
)

log = logging.getLogger(__name__)

#: Column headers of the metrics, in the headline table's order.
METRIC_HEADERS = {
    "mape": "MAPE",
    "mape_calibrated": "MAPE calibrated",
    "rmse_log": "RMSE log",
    "kendall_tau": "Kendall τ",
    "pairwise_acc": "pairwise acc.",
    "top1": "top-1",
    "top5": "top-5",
}
METRIC_FORMATS = {
    "MAPE": fmt_pct(1),
    "MAPE calibrated": fmt_pct(1),
    "RMSE log": fmt_num(3),
    "Kendall τ": fmt_num(3),
    "pairwise acc.": fmt_num(3),
    "top-1": fmt_num(3),
    "top-5": fmt_num(3),
}
NOISE_NAME = "timing noise (split-half)"
SECTION_IDS = (
    "overview",
    "headline",
    "ratios",
    "predicted-vs-measured",
    "error-cdf",
    "kendall",
    "top-k",
    "selection",
    "training",
    "tvm",
    "fresh",
    "machines",
    "dataset",
    "machine",
    "config",
)


@dataclass
class SectionContext:
    inp: Inputs
    headline: dict[str, dict[str, dict[str, Any] | None]]
    noise: dict[str, dict[str, Any] | None]
    noise_pairs: pl.DataFrame
    preds: pl.DataFrame
    per_prog: dict[str, dict[str, pl.DataFrame]]  # split -> model (or NOISE_NAME) -> per-program metrics
    draw: bool = True
    figures: dict[str, bytes] = field(default_factory=dict)
    markdown: dict[str, str] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def model_names(self) -> list[str]:
        return list(self.inp.models)

    @property
    def found(self) -> list[str]:
        return [m.name for m in self.inp.found_models]

    def figure(self, name: str, draw: Callable[[], bytes | None], alt: str, caption: str, reason: str) -> Block:
        """Draw one figure (unless figures are off): the figure, or a note saying why there is none."""
        if not self.draw:
            return note(f"Figure not drawn (figures are turned off): {esc(alt)}.")
        png = draw()
        if png is not None:
            self.figures[name] = png
        return Figure(png, alt, caption, reason=reason)


# --- Sections -------------------------------------------------------------------------------


def _split_counts(ctx: SectionContext, split: str) -> str:
    progs = max((int((m.get(split) or {}).get("n_programs") or 0) for m in ctx.headline.values()), default=0)
    return f"{progs} program{'s' if progs != 1 else ''}"


def _headline_table(ctx: SectionContext, split: str) -> Table | None:
    rows = []
    for name in ctx.model_names:
        m = (ctx.headline.get(name) or {}).get(split)
        run = ctx.inp.models[name]
        row = {"model": name, "kind": model_kind(name)}
        for k, h in METRIC_HEADERS.items():
            row[h] = None if m is None else m.get(k)
        row["programs"] = None if m is None else m.get("n_programs")
        row["schedules"] = None if m is None else m.get("n_schedules")
        if m is None:
            row["kind"] += " — no data" + ("" if run.found else " (model not found)")
        rows.append(row)
    if not any(r["programs"] for r in rows):
        return None
    nf = ctx.noise.get(split)
    nrow = {"model": NOISE_NAME, "kind": "odd vs even timing rounds, same schedules"}
    for k, h in METRIC_HEADERS.items():
        nrow[h] = None if not nf else nf.get(k)
    nrow["programs"] = None if not nf else nf.get("n_programs")
    nrow["schedules"] = None if not nf else nf.get("n_schedules")
    if not nf or not nf.get("n_schedules"):
        nrow["kind"] += " — no split-half labels"
    rows.append(nrow)
    frame = pl.DataFrame(
        rows,
        schema={"model": pl.String, "kind": pl.String, **{h: pl.Float64 for h in METRIC_HEADERS.values()},
                "programs": pl.Int64, "schedules": pl.Int64},
    )
    bold = set()
    for k, h in METRIC_HEADERS.items():
        col = frame[h][:-1]  # models only, not the noise floor
        vals = [(i, v) for i, v in enumerate(col.to_list()) if v is not None]
        if not vals:
            continue
        best = max(v for _, v in vals) if HIGHER_IS_BETTER[k] else min(v for _, v in vals)
        bold |= {(i, h) for i, v in vals if v == best}
    row_class = {frame.height - 1: "noise"}
    row_class.update({i: "missing" for i, r in enumerate(rows[:-1]) if r["programs"] is None})
    return Table(frame, formats={**METRIC_FORMATS, "programs": fmt_num(), "schedules": fmt_num()},
                 bold=bold, row_class=row_class)


SEED_METRICS = ("mape", "mape_calibrated", "kendall_tau", "top1")


def _pm(m: dict[str, Any], k: str) -> str:
    v, sd = m.get(k), m.get(f"{k}_std")
    if v is None:
        return DASH
    pct = k.startswith("mape")
    fmt = (lambda x: f"{x:.1f}%") if pct else (lambda x: f"{x:.3f}")
    return fmt(v) + (f" ± {fmt(sd)}" if sd is not None else "")


def _seed_table(ctx: SectionContext) -> Table | None:
    """Mean ± std over training seeds, per split and model (from summary.json)."""
    rows = []
    for split in EVAL_SPLITS:
        for name in ctx.model_names:
            m = (ctx.headline.get(name) or {}).get(split)
            if not m or (m.get("n_seeds") or 1) < 2:
                continue
            rows.append({"split": split, "model": name, **{METRIC_HEADERS[k]: _pm(m, k) for k in SEED_METRICS},
                         "seeds": m["n_seeds"]})  # fmt: skip
    if not rows:
        return None
    return Table(pl.DataFrame(rows), numeric={*(METRIC_HEADERS[k] for k in SEED_METRICS), "seeds"})


def _uncertainty_table(ctx: SectionContext) -> Table | None:
    rows = []
    for split in EVAL_SPLITS:
        for name in [*ctx.model_names, NOISE_NAME]:
            f = ctx.per_prog.get(split, {}).get(name)
            if f is None or not f.height:
                continue
            row: dict[str, Any] = {"split": split, "model": name, "programs": f.height}
            for k in ("mape", "kendall_tau"):
                v = f[k].to_numpy()
                fin = v[np.isfinite(v)]
                ci = stats.bootstrap_mean_ci(v)
                fmt = (lambda x: f"{x:.1f}%") if k == "mape" else (lambda x: f"{x:.3f}")
                row[METRIC_HEADERS[k]] = fmt(fin.mean()) if len(fin) else DASH
                row[f"{METRIC_HEADERS[k]} 95% CI"] = f"[{fmt(ci[0])}, {fmt(ci[1])}]" if ci else DASH
            rows.append(row)
    if not rows:
        return None
    return Table(pl.DataFrame(rows), numeric={"programs", "MAPE", "MAPE 95% CI", "Kendall τ", "Kendall τ 95% CI"})


def noise_words(nf: dict[str, Any]) -> str:
    """One sentence with both noise figures of a split."""
    bits = []
    for kind, what in (("split_half", "split-half"), ("drift", "drift of a later re-time")):
        a = nf.get(kind) or {}
        if a.get("mape") is not None:
            bits.append(f"{what} MAPE {a['mape']:.1f}% (median ratio {a['median_ratio']:.3f}, "
                        f"{a['n_schedules']} schedules)")  # fmt: skip
    return ("timing noise: " + "; ".join(bits) + ".") if bits else "no timing-noise figures for this split."


def section_overview(ctx: SectionContext) -> list[Block]:
    inp = ctx.inp
    parts = []
    findings = []
    for split in EVAL_SPLITS:
        avail = {n: m[split] for n, m in ctx.headline.items() if m.get(split)}
        if not avail:
            findings.append(f"<b>{split}</b>: no model has predictions on {split} programs.")
            continue
        by_mape = {n: m["mape"] for n, m in avail.items() if m.get("mape") is not None}
        by_tau = {n: m["kendall_tau"] for n, m in avail.items() if m.get("kendall_tau") is not None}
        bits = [f"<b>{split}</b> ({_split_counts(ctx, split)}):"]
        if by_mape:
            b = min(by_mape, key=by_mape.get)
            bits.append(f"lowest MAPE <b>{esc(b)}</b> ({by_mape[b]:.1f}%);")
        if by_tau:
            b = max(by_tau, key=by_tau.get)
            bits.append(f"highest Kendall τ <b>{esc(b)}</b> ({by_tau[b]:.3f});")
        bits.append(noise_words(ctx.noise.get(split) or {}))
        findings.append(" ".join(bits))
    r = ratios(inp, ctx.headline)
    pr = paper_ratios(inp)
    for split in EVAL_SPLITS:
        e = r.get(split) or {}
        for base in ("adams2019", "tvm_xgb"):
            v = (e.get(base) or {}).get("mape_ratio_vs_best_gnn")
            if v is not None:
                findings.append(
                    f"{split}: {esc(base)} MAPE / best GNN ({esc(e.get('best_gnn'))}, chosen on "
                    f"{esc(e.get('selected_on') or split)}) MAPE = <b>{v:.2f}x</b> "
                    f"(paper: {pr.get(base, float('nan')):.2f}x; above 1 the GNN is better)."
                )
    parts.append('<div class="key">' + ul(findings) + "</div>")

    found = ctx.found
    missing = [n for n in ctx.model_names if n not in found]
    items = [
        f"dataset: <code>{esc(inp.dataset_dir)}</code>"
        + (f" (content hash {esc(inp.summary.get('dataset_hash'))})" if inp.summary and inp.summary.get("dataset_hash") else ""),
        f"models: <code>{esc(inp.models_dir)}</code> — found {len(found)}: {esc(', '.join(found) or 'none')}"
        + (f"; missing: {esc(', '.join(missing))}" if missing else ""),
        "summary: " + (f"<code>{esc(inp.summary_path)}</code>" if inp.summary_path else
                       "none (headline numbers from each model's metrics.json; noise floor and ratios computed here)"),
        "split: " + (f"<code>{esc(inp.split_path)}</code>" if inp.split_path else "not found"),
        "config: " + (esc(", ".join(p for p, _ in inp.config_files)) if inp.config_files else "not given"),
    ]
    parts.append("<h3>Inputs</h3>" + ul(items))
    problems = list(inp.problems) + [p for m in inp.models.values() for p in m.problems]
    if problems:
        parts.append(
            "<h3>Missing or unreadable inputs</h3>"
            + '<div class="warn">' + ul(esc(p) for p in problems[:40])
            + (f"<p>… and {len(problems) - 40} more</p>" if len(problems) > 40 else "") + "</div>"
        )
    return parts


def section_headline(ctx: SectionContext) -> list[Block]:
    parts = [
        note(
            "Each metric is computed within a held-out program, then averaged over programs. "
            "<b>Bold</b>: the best model in the column. The last row is the timing noise on the same "
            "schedules: the label from one half of the timing rounds against the label from the other "
            "half. A model error below it cannot be told apart from measurement noise; the drift of a "
            "later re-time is given in the overview and the dataset section."
        )
    ]
    md = []
    for split in EVAL_SPLITS:
        what = "held-out random and user programs" if split == "test" else "hand-written real programs, out of distribution"
        parts.append(f"<h3>{split} programs ({what})</h3>")
        t = _headline_table(ctx, split)
        if t is None:
            parts.append(nodata(f"no model has predictions on {split} programs"))
            md.append(f"### {split} programs\n\nno data\n")
            continue
        parts.append(t)
        md.append(f"### {split} programs\n\n{t.markdown()}\n")
    seeds = _seed_table(ctx)
    if seeds is not None:
        parts.append("<h3>Spread over training seeds</h3>")
        parts.append(note("Each model trained once per seed (models.seeds); the tables above show the mean over "
                          "seeds, this one the mean ± standard deviation of each metric."))
        parts.append(seeds)
        md.append(f"### Spread over training seeds (mean ± std)\n\n{seeds.markdown()}\n")
    ctx.markdown["headline"] = "\n".join(md)
    docs = dict(METRIC_DOCS)
    docs.update({k: v for k, v in ((ctx.inp.summary or {}).get("metric_docs") or {}).items() if isinstance(v, str)})
    parts.append("<h3>Metrics</h3>" + ul(f"<b>{esc(METRIC_HEADERS.get(k, k))}</b>: {esc(v)}" for k, v in docs.items()))
    parts.append("<h3>Models</h3>" + ul(
        f"<b>{esc(n)}</b> ({esc(model_kind(n))}): {esc(MODEL_DOCS.get(n, 'model outside the standard set'))}"
        for n in ctx.model_names
    ))
    t = _uncertainty_table(ctx)
    parts.append("<h3>How sure: 95% bootstrap intervals over programs</h3>")
    if t is None:
        parts.append(nodata("no predictions to resample"))
    else:
        parts.append(note(
            f"Programs resampled with replacement ({stats.N_BOOT} times); recomputed from predictions.parquet, "
            "so the means equal the table above. Few programs give wide intervals."
        ))
        parts.append(t)
    return parts


def _seed_ratio(v: dict[str, Any]) -> str:
    """The MAPE ratio of each seed's runs, as median [min, max] (n), and how far apart the
    baseline's own seeds are in raw MAPE."""
    per = v.get("mape_ratio_vs_best_gnn_seeds") or []
    if len(per) < 2:
        return DASH
    spread = v.get("baseline_seed_mape_spread")
    apart = f"; seeds {spread:.2f}x apart" if spread else ""
    return f"{np.median(per):.2f}x [{min(per):.2f}x, {max(per):.2f}x] ({len(per)}{apart})"


def _seed_mean_mape(ctx: SectionContext, model: str, split: str) -> pl.DataFrame | None:
    """Per-program MAPE of ``model`` on ``split``, averaged over its training seeds, so the
    ratio's interval is about the same seed-averaged MAPEs as the ratio itself (read once
    per model and split: the best GNN is the denominator of every row)."""
    key = f"seed_mean_mape:{model}:{split}"
    if key not in ctx.cache:
        ctx.cache[key] = _read_seed_mean_mape(ctx, model, split)
    return ctx.cache[key]


def _read_seed_mean_mape(ctx: SectionContext, model: str, split: str) -> pl.DataFrame | None:
    n_seeds = ((ctx.inp.summary or {}).get("seeds") or {}).get(model)
    frame = seed_mean_mape(ctx.inp.models_dir / model, n_seeds, split)
    return ctx.per_prog.get(split, {}).get(model) if frame is None else frame


def seed_mean_mape(model_dir: Path, n_seeds: int | None, split: str) -> pl.DataFrame | None:
    """Per-program MAPE on ``split`` of a model's training runs (``model_dir`` and its
    ``seeds/<k>``), averaged over the runs; None where no run has predictions there."""
    from models.evaluate import seed_run_dirs

    frames = []
    for run in seed_run_dirs(model_dir, n_seeds):
        path = run / "predictions.parquet"
        if path.exists():
            preds = schema.read_table(path, "predictions").filter(pl.col("split") == split)
            if preds.height:
                frames.append(stats.per_program(preds).select("program_id", "mape"))
    if not frames:
        return None
    # Sorted: the bootstrap draws programs by position, so the order must not vary between runs.
    return pl.concat(frames).group_by("program_id").agg(pl.col("mape").mean()).sort("program_id")


def section_ratios(ctx: SectionContext) -> list[Block]:
    inp = ctx.inp
    r = ratios(inp, ctx.headline)
    pr = paper_ratios(inp)
    rows = []
    for split in EVAL_SPLITS:
        e = r.get(split) or {}
        best = e.get("best_gnn")
        for base in ("adams2019", "tvm_xgb"):
            v = e.get(base)
            if not best or not isinstance(v, dict):
                rows.append({"split": split, "baseline": base, "best GNN": best or DASH,
                             "selected on": e.get("selected_on") or DASH, "MAPE ratio": None,
                             "95% CI": DASH, "MAPE ratio vs gcn": None, "RMSE-log ratio": None,
                             "calibrated MAPE ratio": None, "over seeds": DASH, "paper's ratio": pr.get(base)})
                continue
            ci = None
            pb, pg = _seed_mean_mape(ctx, base, split), _seed_mean_mape(ctx, best, split)
            if pb is not None and pg is not None and pb.height and pg.height:
                j = pb.select("program_id", pl.col("mape").alias("b")).join(
                    pg.select("program_id", pl.col("mape").alias("g")), on="program_id")
                ci = stats.bootstrap_ratio_ci(j["b"].to_numpy(), j["g"].to_numpy())
            rows.append({
                "split": split,
                "baseline": base,
                "best GNN": best,
                "selected on": e.get("selected_on") or split,
                "MAPE ratio": v.get("mape_ratio_vs_best_gnn"),
                "95% CI": f"[{ci[0]:.2f}x, {ci[1]:.2f}x]" if ci else DASH,
                "MAPE ratio vs gcn": v.get("mape_ratio_vs_gcn"),
                "RMSE-log ratio": v.get("rmse_log_ratio_vs_best_gnn"),
                "calibrated MAPE ratio": v.get("mape_calibrated_ratio_vs_best_gnn"),
                "over seeds": _seed_ratio(v),
                "paper's ratio": pr.get(base),
            })
    rows += tvm_ratio_rows(ctx.inp, pr)
    parts = [note(
        "Error of a baseline divided by the error of the best GNN on the same programs (the GNN with the "
        "lowest validation MAPE, chosen once for all held-out splits; “selected on” says otherwise): "
        "above 1 the GNN is better. The paper (Singh et al., MAPS 2022) reports "
        f"{pr.get('adams2019', 7.75):.2f}x against Halide's model and {pr.get('tvm_xgb', 12.0):.0f}x against TVM's. "
        "“vs gcn”: against the paper's own architecture. The interval resamples programs in pairs "
        "(each program's MAPE averaged over the training seeds, as the ratio is). "
        "The paper's ratios are of raw MAPE, which the “MAPE ratio” column reproduces; the calibrated "
        "ratio divides MAPEs after each program's predictions are rescaled by one measured schedule, "
        "the fair comparison for scale-free models such as TVM's. “Over seeds”: the ratio of run k of "
        "the baseline to run k of the best GNN, median [min, max] over the training seeds, every seed kept; "
        "“seeds apart”: the baseline's largest raw MAPE over its smallest across its seeds (a seed that "
        "diverged would show there). Rows “TVM's XGBModel”: TVM's own cost model against the GNNs trained on "
        "the TVM dataset's programs (report section TVM), where a TVM dataset was used."
    )]
    frame = pl.DataFrame(rows, schema={"split": pl.String, "baseline": pl.String, "best GNN": pl.String,
                                       "selected on": pl.String, "MAPE ratio": pl.Float64, "95% CI": pl.String,
                                       "MAPE ratio vs gcn": pl.Float64, "RMSE-log ratio": pl.Float64,
                                       "calibrated MAPE ratio": pl.Float64, "over seeds": pl.String,
                                       "paper's ratio": pl.Float64})
    if frame["MAPE ratio"].drop_nulls().len() == 0:
        parts.append(nodata("needs a GNN and a baseline evaluated on the same split"))
    t = Table(frame, formats={"MAPE ratio": fmt_ratio, "MAPE ratio vs gcn": fmt_ratio, "RMSE-log ratio": fmt_ratio,
                              "calibrated MAPE ratio": fmt_ratio, "paper's ratio": fmt_ratio},
              numeric={"MAPE ratio", "95% CI", "MAPE ratio vs gcn", "RMSE-log ratio", "calibrated MAPE ratio",
                       "over seeds", "paper's ratio"})  # fmt: skip
    parts.append(t)
    ctx.markdown["ratios"] = t.markdown()
    notes = (inp.summary or {}).get("notes") or {}
    if not notes.get("tvm_xgb") and "tvm_xgb" in ctx.found:
        notes = {**notes, "tvm_xgb": "TVM's model predicts a scale-free score; its MAPE depends on a fitted "
                 "score→seconds constant. Its ranking metrics are the fair comparison."}
    if notes:
        parts.append("<h3>Notes</h3>" + ul(f"<b>{esc(k)}</b>: {esc(v)}" for k, v in notes.items() if isinstance(v, str)))
    return parts


def section_scatter(ctx: SectionContext) -> list[Block]:
    return [
        ctx.figure(
            "predicted_vs_measured",
            lambda: figures.predicted_vs_measured(ctx.preds, ctx.model_names, EVAL_SPLITS),
            "predicted vs measured run time per model",
            "Each point is one schedule of a held-out program (blue: test, red: zoo). Both axes in seconds, log scale. "
            "Dashed: perfect prediction; dotted: off by 2x. Non-positive predictions are drawn on the bottom edge.",
            reason="no model wrote predictions for the test or zoo programs",
        )
    ]


def section_cdf(ctx: SectionContext) -> list[Block]:
    return [
        ctx.figure(
            "error_cdf",
            lambda: figures.error_cdf(ctx.preds, ctx.model_names, EVAL_SPLITS, ctx.noise_pairs),
            "CDF of per-schedule prediction error",
            "Share of schedules (y) whose predicted run time is within x percent of the measured one (log x); "
            "higher and further left is better. Black dashed: the second timing pass against the first, "
            "the best any model can do. Legend: schedules per curve.",
            reason="no predictions and no re-timed schedules",
        )
    ]


def section_kendall(ctx: SectionContext) -> list[Block]:
    return [
        ctx.figure(
            "kendall_tau",
            lambda: figures.kendall_distribution(ctx.per_prog, ctx.model_names, EVAL_SPLITS),
            "distribution of per-program Kendall tau",
            "Kendall τ between predicted and measured run times among one program's schedules; one point per program "
            "with at least two schedules, boxes show quartiles. 1 = perfect order, 0 = no better than chance "
            "(dashed): the split-half labels of the same schedules.",
            reason="no program with two or more predicted schedules",
        )
    ]


def section_topk(ctx: SectionContext) -> list[Block]:
    k_max = 10
    if ctx.preds.height:
        k_max = int(min(10, max(2, ctx.preds.group_by("model", "program_id").len()["len"].max())))
    return [
        ctx.figure(
            "top_k",
            lambda: figures.top_k_curves(ctx.preds, ctx.model_names, EVAL_SPLITS, k_max=k_max),
            "top-k score against k",
            "Try the k schedules a model predicts fastest and keep the best: the curve is the best true time divided "
            "by the time found, averaged over programs (1 = the program's best schedule was among the k). "
            "Dashed gray: k schedules picked at random (expected value).",
            reason="no program with two or more predicted schedules",
        )
    ]


def _speedup_cell(v: dict[str, Any] | None) -> str:
    if not v or v.get("geomean") is None:
        return "–"
    return f"{v['geomean']:.2f}x [{v['lo']:.2f}, {v['hi']:.2f}]"


def _other_cell(v: dict[str, int] | None) -> str:
    """``k of n`` top-1 picks that were a schedule the loop-nest reader featurized."""
    return "–" if not v or not v.get("of") else f"{v['picks']} of {v['of']}"


def _per_run_cell(summary: dict) -> str:
    """The range of the training runs' own top-1 figures and their worst program, e.g.
    ``1.12-1.31x (worst 0.84x)``; empty for summaries written before they were kept."""
    runs = summary.get("per_run") or []
    if len(runs) < 2:
        return ""
    top1 = [r["top1"] for r in runs]
    return f"{min(top1):.2f}-{max(top1):.2f}x (worst {min(r['top1_min'] for r in runs):.2f}x)"


def section_selection(ctx: SectionContext) -> list[Block]:
    """The measured time of each model's picks against Halide's default pick (models.selection)."""
    sel = (ctx.inp.summary or {}).get("selection")
    if not sel or not sel.get("programs"):
        return [nodata("no zoo or user program with Halide's default pick timed (summary.json has no selection)")]
    rows = []
    for name, v in sel["models"].items():
        rows.append({"pick": name, "top-1": _speedup_cell(v.get("top1")), "top-1 per run": _per_run_cell(v),
                     "best of top-5": _speedup_cell(v.get("top5")),
                     "tuned": _speedup_cell(v.get("tuned")), "oracle": _speedup_cell(v.get("oracle")),
                     "oracle, Adams2019's": _speedup_cell(v.get("oracle_adams2019")),
                     "top-1 other": _other_cell(v.get("top1_other")),
                     "worst top-1": (v.get("top1") or {}).get("min"),
                     "programs": (v.get("top1") or {}).get("n_programs")})  # fmt: skip
    for ref, v in (sel.get("references") or {}).items():
        rows.append({"pick": ref, "top-1": _speedup_cell(v), "top-1 per run": "", "best of top-5": "", "tuned": "",
                     "oracle": "", "oracle, Adams2019's": "", "top-1 other": "", "worst top-1": v.get("min"),
                     "programs": v.get("n_programs")})  # fmt: skip
    frame = pl.DataFrame(rows, schema={"pick": pl.String, "top-1": pl.String, "top-1 per run": pl.String,
                                       "best of top-5": pl.String, "tuned": pl.String, "oracle": pl.String,
                                       "oracle, Adams2019's": pl.String, "top-1 other": pl.String,
                                       "worst top-1": pl.Float64, "programs": pl.Int64})  # fmt: skip
    t = Table(frame, formats={"worst top-1": fmt_num(2), "programs": fmt_num()})
    missing = sel.get("programs_without_default") or []
    words = (
        f"Measured on <code>{esc(sel.get('dataset'))}</code>, whose zoo and user programs had every candidate "
        f"timed: speedup of each pick over Halide's default pick ({esc(sel.get('halide_default'))}), geometric "
        "mean over programs with its 95% bootstrap interval; <b>top-1</b>: the candidate the model predicts "
        "fastest (per program, the geometric mean over the training runs); <b>top-1 per run</b>: the range of "
        "each training run's own figure, and its worst program; <b>best of top-5</b>: the fastest of its five "
        "predicted fastest; <b>tuned</b>: the fastest of "
        "those five and the reference picks, what <code>perfgraph tune</code> times and keeps; <b>oracle</b>: the fastest "
        "candidate a model could pick, which bounds what any model can gain from this sampling mix; <b>oracle, "
        "Adams2019's</b>: the same over the schedules Adams2019's search featurized alone (the oracle before the "
        "loop-nest reader featurized Mullapudi2016's, Li2018's and manual schedules, so that models rank them too); "
        "<b>top-1 other</b>: how many of the training runs' top-1 picks (runs x programs) were one of those; <b>worst "
        "top-1</b>: the program where the model's pick did worst. Mullapudi2016 and Li2018 are their own picks."
    )
    if missing:
        words += f" Not counted (Halide's default pick failed or timed out): {esc(', '.join(missing))}."
    ctx.markdown["selection"] = f"### Picks against Halide's default pick\n\n{t.markdown()}\n"
    plot = ctx.figure(
        "selection",
        lambda: figures.pick_speedups(sel),
        "speedup of each model's picks over Halide's default pick",
        "Points: geometric-mean speedup of the model's top-1 pick, of the best of its top-5 and of the tuned pick "
        "(the best of those and the reference picks), over Halide's default pick (1x, black), with 95% bootstrap "
        "intervals over programs; green: the best candidate.",
        reason="no model's picks could be compared",
    )
    return [note(words), t, plot]


def section_training(ctx: SectionContext) -> list[Block]:
    rows, hist = [], {}
    for name, run in ctx.inp.models.items():
        meta = run.meta or {}
        if not run.meta and not run.history:
            rows.append({"model": name, "architecture": "no data (no meta.json)"})
            continue
        xgb = name in XGB_MODELS or "booster" in str(meta.get("repr", "")).lower()
        rows.append({
            "model": name,
            "architecture": meta.get("repr"),
            "parameters": meta.get("n_params"),
            "epochs": meta.get("epochs_run"),
            "best": meta.get("best_epoch"),
            "early stop": None if meta.get("stopped_early") is None else str(bool(meta.get("stopped_early"))).lower(),
            "train time": meta.get("train_wall_s"),
            "device": meta.get("device"),
            "train progs": meta.get("n_train_programs"),
            "train scheds": meta.get("n_train_schedules"),
            "val progs": meta.get("n_val_programs"),
        })
        hist[name] = (run.history or [], meta.get("best_epoch"), "boosting round" if xgb else "epoch")
    cols = {"model": pl.String, "architecture": pl.String, "parameters": pl.Int64, "epochs": pl.Int64,
            "best": pl.Int64, "early stop": pl.String, "train time": pl.Float64, "device": pl.String,
            "train progs": pl.Int64, "train scheds": pl.Int64, "val progs": pl.Int64}
    frame = pl.DataFrame([{c: r.get(c) for c in cols} for r in rows], schema=cols)
    parts = []
    if not hist:
        parts.append(nodata("no model has training metadata"))
    parts.append(Table(frame, formats={"train time": fmt_seconds}))
    parts.append(note("Parameters of tree models count tree nodes. Losses are each model's own training "
                      "objective, so compare curves within a panel, not across panels."))
    parts.append(ctx.figure("training_curves", lambda: figures.training_curves(hist), "training curves", "Loss per epoch (boosting round for XGBoost) on the training "
                        "and validation programs; dotted: the epoch kept.", reason="no history.json found"))
    return parts


def _pass1_times(inp: Inputs) -> pl.DataFrame:
    meas, progs = inp.table("measurements"), inp.table("programs")
    t = (
        meas.filter((pl.col("timing_pass") == 1) & (pl.col("status") == "ok") & (pl.col("runtime_s") > 0))
        .group_by("program_id", "schedule_id", "machine_id")
        .agg(pl.col("runtime_s").median())
    )
    return t.join(progs.select("program_id", "origin"), on="program_id", how="left")


def _sampler_and_failure_parts(ctx: SectionContext, sched: pl.DataFrame, meas: pl.DataFrame, p1: pl.DataFrame) -> list[Block]:
    """The dataset section's samplers-and-failures part: the figure, the sampler x status
    table and the most frequent failures."""
    out: list[Block] = []
    status = (
        p1.group_by("program_id", "schedule_id")
        .agg(pl.when((pl.col("status") == "ok").any()).then(pl.lit("ok")).otherwise(pl.col("status").first()).alias("status"))
    )
    ss = (
        sched.select("program_id", "schedule_id", "sampler")
        .join(status, on=["program_id", "schedule_id"], how="left")
        .with_columns(pl.col("status").fill_null("not timed"), pl.col("sampler").fill_null("?"))
    )
    sched_status = ss.group_by("sampler", "status").len().rename({"len": "n"})
    pass_status = meas.group_by("timing_pass", "status").len().rename({"len": "n"})
    out.append("<h3>Samplers and failures</h3>")
    out.append(ctx.figure("sampler_status", lambda: figures.sampler_status(sched_status, pass_status),
                        "sampler mix and failures",
                        "Left: schedules per sampler, coloured by the outcome of their main timing. "
                        "Right: outcomes of every measurement, per timing pass.", reason="no schedules"))
    if ss.height:
        piv = ss.pivot(on="status", index="sampler", values="program_id", aggregate_function="len").fill_null(0)
        cols = ["sampler"] + [c for c in ("ok", *schema.STATUSES[1:], "not timed") if c in piv.columns]
        cols += [c for c in piv.columns if c not in cols]
        out.append(Table(piv.select(cols).sort("sampler"), caption="schedules by sampler and status (pass 1)"))
    fails = meas.filter(pl.col("status") != "ok")
    if fails.height:
        top = (
            fails.with_columns(
                pl.col("error").fill_null("").str.split("\n").list.first().str.slice(0, 160).alias("error (first line)")
            )
            .group_by("status", "error (first line)")
            .agg(pl.len().alias("count"), pl.col("program_id").first().alias("e.g. program"))
            .sort("count", descending=True)
            .head(10)
        )
        out.append(Table(top, caption="most frequent failures"))
    else:
        out.append(note("No failed measurement."))
    return out


def section_dataset(ctx: SectionContext) -> list[Block]:
    inp = ctx.inp
    if inp.tables is None:
        return [nodata("the dataset could not be read (see the inputs above)")]
    progs, nodes, edges = inp.table("programs"), inp.table("nodes"), inp.table("edges")
    sched, meas, machines = inp.table("schedules"), inp.table("measurements"), inp.table("machines")
    p1 = meas.filter(pl.col("timing_pass") == 1)
    p2 = meas.filter(pl.col("timing_pass") == 2)
    times = _pass1_times(inp)
    per_prog_nodes = progs["n_nodes"].drop_nulls()
    origin_counts = ", ".join(
        f"{o} {n}" for o, n in progs.group_by("origin").len().sort("origin").iter_rows()
    ) or DASH
    sched_by = sched.group_by("sampler").len().sort("len", descending=True)
    speed = times.group_by("program_id").agg(
        (pl.col("runtime_s").max() / pl.col("runtime_s").min()).alias("spread"), pl.len().alias("n")
    ).filter(pl.col("n") >= 2)
    rows = [
        ("programs", f"{progs.height} ({origin_counts})"),
        ("stages (graph nodes)", f"{nodes.height}; per program min {per_prog_nodes.min() if len(per_prog_nodes) else DASH}, "
         f"median {per_prog_nodes.median() if len(per_prog_nodes) else DASH}, max {per_prog_nodes.max() if len(per_prog_nodes) else DASH}"),
        ("edges (producer → consumer)", f"{edges.height}"),
        ("schedules", f"{sched.height} ({sched['has_featurization'].sum()} with a featurization); "
         + ", ".join(f"{s} {n}" for s, n in sched_by.iter_rows())),
        ("timing pass 1", f"{p1.height} measurements: {p1.filter(pl.col('status') == 'ok').height} ok, "
         f"{p1.filter(pl.col('status') != 'ok').height} failed"),
        ("timing pass 2 (drift re-time)", f"{p2.height} re-timed, {p2.filter(pl.col('status') == 'ok').height} ok"),
        ("measured run time", f"{fmt_seconds(times['runtime_s'].min())} to "
         f"{fmt_seconds(times['runtime_s'].max())}, median {fmt_seconds(times['runtime_s'].median())}"
         if times.height else DASH),
        ("compile time per schedule", f"median {fmt_seconds(p1['compile_time_s'].median())}, "
         f"max {fmt_seconds(p1['compile_time_s'].max())}" if p1['compile_time_s'].drop_nulls().len() else DASH),
        ("slowest / fastest schedule of a program", f"median {speed['spread'].median():.2f}x, max {speed['spread'].max():.2f}x "
         f"over {speed.height} programs" if speed.height else DASH),
        ("machines", f"{machines.height}"),
    ]
    parts = [Table(pl.DataFrame(rows, schema=["quantity", "value"], orient="row"))]

    if inp.split is not None:
        counts = (
            inp.split.join(times.group_by("program_id").len().rename({"len": "timed schedules"}), on="program_id", how="left")
            .group_by("split").agg(pl.len().alias("programs"), pl.col("timed schedules").fill_null(0).sum())
        )
        order = {s: i for i, s in enumerate(("train", "val", "test", "zoo"))}
        counts = counts.sort(pl.col("split").replace_strict(order, default=9, return_dtype=pl.Int64))
        parts.append("<h3>Split (by program)</h3>")
        parts.append(Table(counts, caption=None))

    parts.append("<h3>Programs and stages</h3>")
    parts.append(ctx.figure("program_shapes", lambda: figures.program_shapes(progs, nodes), "program sizes and stage kinds",
                        "Left: number of stages per program, by origin. Right: how often each stage kind occurs.",
                        reason="no programs"))
    parts.append("<h3>Run times</h3>")
    parts.append(ctx.figure("runtime_distribution", lambda: figures.runtime_distribution(times),
                        "distribution of measured run times",
                        "Left: measured run time of every timed schedule (s, log scale), by program origin. "
                        "Right: each schedule's run time over the best of its program (log scale): the room a cost "
                        "model has to win or lose.", reason="no successful timing"))

    parts += _sampler_and_failure_parts(ctx, sched, meas, p1)
    return parts


def _job_order(meas: pl.DataFrame) -> list[tuple[str, int]]:
    """Timing jobs (program, pass) in the order they ran (their measurement time)."""
    jobs = meas.group_by("program_id", "timing_pass").agg(pl.col("measured_at").min()).sort("measured_at", "program_id")
    return list(jobs.select("program_id", "timing_pass").iter_rows())


def _timing_noise(ctx: SectionContext) -> list[Block]:
    """The timing protocol's noise figures and the machine-speed series."""
    from featurize.noise import NOISE_DOCS

    parts = ["<h3>Timing noise and machine speed</h3>"]
    rows = []
    for split in ("all", *EVAL_SPLITS):
        nf = ctx.noise.get(split) or {}
        for kind in ("split_half", "drift"):
            a = nf.get(kind) or {}
            if a.get("n_schedules"):
                rows.append({"split": split, "figure": kind.replace("_", "-"), "MAPE": a["mape"],
                             "median ratio": a["median_ratio"], "p10 ratio": a["p10_ratio"],
                             "p90 ratio": a["p90_ratio"], "schedules": a["n_schedules"]})  # fmt: skip
    if rows:
        parts.append(Table(pl.DataFrame(rows), formats={"MAPE": lambda v: f"{v:.2f}%", "median ratio": lambda v: f"{v:.3f}",
                                                        "p10 ratio": lambda v: f"{v:.3f}", "p90 ratio": lambda v: f"{v:.3f}"},
                           numeric={"MAPE", "median ratio", "p10 ratio", "p90 ratio", "schedules"}))  # fmt: skip
    else:
        parts.append(nodata("no timing-noise figures"))
    parts.append(ul(f"<b>{k.replace('_', '-')}</b>: {esc(v)}" for k, v in NOISE_DOCS.items()))
    samples, meas = ctx.inp.table("timing_samples"), ctx.inp.table("measurements")
    if samples is not None and meas is not None:
        parts.append(ctx.figure("machine_speed", lambda: figures.machine_speed(samples, _job_order(meas)),
                                "machine speed through the timing jobs",
                                "The calibration kernel's time right before every timing window. Windows timed while "
                                "it ran more than the protocol's slow factor above the job's fast time are flagged "
                                "(red), left out of the labels and re-measured.", reason="no timing samples"))  # fmt: skip
    return parts


def section_machine(ctx: SectionContext) -> list[Block]:
    inp = ctx.inp
    parts = []
    machines = inp.table("machines")
    if machines is None or not machines.height:
        parts.append(nodata("no machines table"))
    else:
        cols = [c for c in ("machine_id", "hostname", "cpu_model", "n_cores", "timing_threads", "pinning",
                            "halide_target") if c in machines.columns]  # fmt: skip
        parts.append(Table(machines.select(cols), numeric={"n_cores", "timing_threads"}))
    parts += _timing_noise(ctx)
    versions: dict[str, dict[str, str]] = {}
    if machines is not None:
        for mid, v in machines.select("machine_id", "versions").iter_rows():
            try:
                d = json.loads(v) if v else {}
            except ValueError:
                d = {}
            for k, val in d.items():
                versions.setdefault(k, {})[f"dataset ({mid})"] = str(val)
    for run in inp.models.values():
        for k, val in ((run.meta or {}).get("versions") or {}).items():
            versions.setdefault(k, {}).setdefault("training", set()).add(str(val))
    import matplotlib

    here = {"python": platform.python_version(), "polars": pl.__version__, "numpy": np.__version__,
            "matplotlib": matplotlib.__version__}
    for k, v in here.items():
        versions.setdefault(k, {})["report"] = v
    present = {c for d in versions.values() for c in d}
    cols = sorted(c for c in present if c.startswith("dataset")) + [c for c in ("training", "report") if c in present]
    rows = []
    for pkg in sorted(versions):
        d = versions[pkg]
        rows.append({"package": pkg, **{c: (", ".join(sorted(d[c])) if isinstance(d.get(c), set) else d.get(c)) for c in cols}})
    parts.append("<h3>Library versions</h3>")
    parts.append(Table(pl.DataFrame(rows, schema={"package": pl.String, **{c: pl.String for c in cols}})))
    parts.append(note("dataset: recorded when the schedules were timed; training: recorded in each model's meta.json; "
                      "report: the process that wrote this page."))
    return parts


def section_config(ctx: SectionContext) -> list[Block]:
    inp = ctx.inp
    parts = []
    for path, text in inp.config_files:
        parts.append(f"<h3><code>{esc(path)}</code></h3>")
        parts.append(pre(text) if text is not None else nodata("file not readable"))
    if inp.config is not None and inp.config_given:
        import yaml

        parts.append("<h3>Effective configuration (with the schema's defaults)</h3>")
        parts.append(pre(yaml.safe_dump(inp.config, sort_keys=True, default_flow_style=None, width=100)))
    if not parts:
        parts.append(nodata("no configuration was given to the report"))
    return parts


def tvm_summary_path(inp: Inputs) -> Path:
    """The TVM models' summary of this run: ``<models>/tvm_<config's dataset>/summary.json``
    (the run's dataset name, also when the Halide models trained on a published dataset)."""
    name = (inp.config or {}).get("dataset") or Path(inp.dataset_dir).name
    return Path(inp.models_dir) / f"tvm_{name}" / "summary.json"


def _metric_row(name: str, m: dict[str, Any]) -> dict[str, Any]:
    """One row of a summary-based metric table: a model's (or the noise floor's) metrics on a split."""
    return {"model": name, **{h: m.get(k) for k, h in METRIC_HEADERS.items()},
            "programs": m.get("n_programs"), "schedules": m.get("n_schedules")}  # fmt: skip


def _metric_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"model": pl.String, **{h: pl.Float64 for h in METRIC_HEADERS.values()},
                "programs": pl.Int64, "schedules": pl.Int64},
    )  # fmt: skip


def tvm_ratio_rows(inp: Inputs, paper: dict[str, Any]) -> list[dict[str, Any]]:
    """The ratio table's rows for TVM's own XGBModel against the best GNN, both trained on the
    TVM dataset (per split; interval over programs of the seed-averaged MAPEs, as above)."""
    path = tvm_summary_path(inp)
    if not path.exists():
        return []
    summary = json.loads(path.read_text())
    rows = []
    for split, r in (summary.get("ratios") or {}).items():
        best = r.get("best_gnn")
        ci = None
        pb = seed_mean_mape(path.parent / "tvm_xgb", (summary.get("seeds") or {}).get("tvm_xgb"), split)
        pg = seed_mean_mape(path.parent / best, (summary.get("seeds") or {}).get(best), split) if best else None
        if pb is not None and pg is not None:
            j = pb.select("program_id", pl.col("mape").alias("b")).join(
                pg.select("program_id", pl.col("mape").alias("g")), on="program_id")
            ci = stats.bootstrap_ratio_ci(j["b"].to_numpy(), j["g"].to_numpy())
        per = r.get("mape_ratio_seeds") or []
        spread = r.get("xgbmodel_seed_mape_spread")
        rows.append({
            "split": f"{split} (TVM programs)",
            "baseline": "TVM's XGBModel",
            "best GNN": best or DASH,
            "selected on": r.get("selected_on") or split,
            "MAPE ratio": r.get("mape_ratio_xgbmodel_vs_best_gnn"),
            "95% CI": f"[{ci[0]:.2f}x, {ci[1]:.2f}x]" if ci else DASH,
            "MAPE ratio vs gcn": None,
            "RMSE-log ratio": r.get("rmse_log_ratio_xgbmodel_vs_best_gnn"),
            "calibrated MAPE ratio": r.get("mape_calibrated_ratio_xgbmodel_vs_best_gnn"),
            "over seeds": (f"{np.median(per):.2f}x [{min(per):.2f}x, {max(per):.2f}x] ({len(per)}"
                           + (f"; seeds {spread:.2f}x apart" if spread else "") + ")") if len(per) > 1 else DASH,
            "paper's ratio": paper.get("tvm_xgb", summary.get("paper_ratio_tvm")),
        })  # fmt: skip
    return rows


PAPER_COL = "paper's ratio"
TVM_SEED_METRICS = ("mape", "mape_calibrated", "kendall_tau", "pairwise_acc", "top1", "top5")


def section_tvm(ctx: SectionContext) -> list[Block]:
    """GNNs against TVM's own XGBModel on TVM programs (MetaSchedule candidates)."""
    path = tvm_summary_path(ctx.inp)
    if not path.exists():
        return [nodata(f"no TVM results ({path} not found; set tvm.enabled in the config)")]
    summary = json.loads(path.read_text())
    seeds = summary.get("seeds") or {}
    parts = [
        note(
            "TVM tensor programs (random and real-network layers), MetaSchedule candidates (ReplayTrace and "
            "evolutionary search) compiled and timed on the dataset's machine, in the same graph tables "
            "(compiler = tvm). tvm_xgb is TVM's own XGBModel trained on the training programs; it outputs "
            "relative scores, so its raw MAPE and RMSE use one scale fitted on training programs: compare it on "
            "calibrated MAPE and the rank columns. Each figure is the mean ± standard deviation over the "
            f"model's training runs (seeds: {', '.join(f'{m} {n}' for m, n in sorted(seeds.items())) or 'one each'}). "
            f"Dataset <code>{esc(summary.get('dataset', ''))}</code>."
        )
    ]
    md = []
    for split in EVAL_SPLITS:
        rows = []
        for name, by_split in sorted((summary.get("models") or {}).items()):
            m = by_split.get(split)
            if m:
                rows.append({"model": name, **{METRIC_HEADERS[k]: _pm(m, k) for k in TVM_SEED_METRICS},
                             "programs": m.get("n_programs"), "schedules": m.get("n_schedules"),
                             "seeds": m.get("n_seeds") or 1})  # fmt: skip
        nf = (summary.get("noise_floor") or {}).get(split)
        if nf:
            rows.append({"model": NOISE_NAME, **{METRIC_HEADERS[k]: _pm(nf, k) for k in TVM_SEED_METRICS},
                         "programs": nf.get("n_programs"), "schedules": nf.get("n_schedules"), "seeds": None})  # fmt: skip
        parts.append(f"<h3>{split} programs</h3>")
        if not rows:
            parts.append(nodata(f"no TVM predictions on {split} programs"))
            continue
        frame = pl.DataFrame(rows, schema={"model": pl.String, **{METRIC_HEADERS[k]: pl.String for k in TVM_SEED_METRICS},
                                           "programs": pl.Int64, "schedules": pl.Int64, "seeds": pl.Int64})  # fmt: skip
        t = Table(frame, formats={"programs": fmt_num(), "schedules": fmt_num()},
                  numeric={*(METRIC_HEADERS[k] for k in TVM_SEED_METRICS), "programs", "schedules", "seeds"},
                  row_class={frame.height - 1: "noise"} if nf else {})  # fmt: skip
        parts.append(t)
        md.append(f"### TVM, {split} programs (mean ± std over training seeds)\n\n{t.markdown()}\n")
    ratio_rows = tvm_ratio_rows(ctx.inp, paper_ratios(ctx.inp))
    items = [
        f"{esc(r['split'])}: XGBModel MAPE / best GNN ({esc(r['best GNN'])}, chosen on {esc(r['selected on'])}) "
        f"MAPE = <b>{fmt_ratio(r['MAPE ratio'])}</b>, 95% CI {esc(r['95% CI'])}, over seeds {esc(r['over seeds'])}; "
        f"calibrated MAPE ratio {fmt_ratio(r['calibrated MAPE ratio'])} "
        f"(paper: {fmt_ratio(r.get(PAPER_COL))}; above 1 the GNN is better)"
        for r in ratio_rows
    ]
    if items:
        parts.append("<h3>Error ratio</h3>" + ul(items))
    ctx.markdown["tvm"] = "\n".join(md)
    return parts


def section_fresh(ctx: SectionContext) -> list[Block]:
    """Models trained on a published dataset, scored on the small dataset built here."""
    fresh = (ctx.inp.summary or {}).get("fresh")
    if not fresh:
        return [nodata("the models trained on the dataset built here (models.dataset is not set)")]
    spread = fresh.get("spread") or {}
    parts = [
        note(
            f"The models above trained on <code>{esc(ctx.inp.dataset_dir)}</code>. This run also built "
            f"<code>{esc(fresh.get('dataset'))}</code> ({fresh.get('programs')} programs) on this machine; none of "
            "its random programs were trained on, so every one is held out (test), and its zoo programs are the "
            "zoo. Its labels are this machine's: a model that learned the reference machine's speed, not just "
            "its ranking, shows it in the raw MAPE here, not in τ or the calibrated MAPE."
        ),
        f"<p>{esc(noise_words(fresh.get('noise') or {}))}</p>",
    ]
    if spread.get("programs"):
        parts.append(
            f"<p>Within-program spread of its featurized samples (slowest / fastest): median "
            f"{spread['spread_median']:.1f}x; median share within {spread['near_best']}x of the best: "
            f"{spread['near_best_share_median']:.0%}.</p>"
        )
    md = [f"### Cross-machine check: `{fresh.get('dataset')}` (built here)", "", noise_words(fresh.get("noise") or {}), ""]
    for split in EVAL_SPLITS:
        rows = []
        for name, by_split in (fresh.get("models") or {}).items():
            m = by_split.get(split)
            if m:
                rows.append(_metric_row(name, m))
        parts.append(f"<h3>{split} programs (mean over training seeds)</h3>")
        if not rows:
            parts.append(nodata(f"no scores on {split} programs"))
            continue
        frame = _metric_frame(rows)
        t = Table(frame, formats={**METRIC_FORMATS, "programs": fmt_num(), "schedules": fmt_num()})
        parts.append(t)
        md.append(f"{split} programs:\n\n{t.markdown()}\n")
    ctx.markdown["fresh"] = "\n".join(md)
    return parts


def section_machines(ctx: SectionContext) -> list[Block]:
    """A model of several machines scored on each machine's labels, and the adaptation to this one."""
    summary = ctx.inp.summary or {}
    parts: list[Block] = []
    md = ["### Several machines, and this one"]
    per_machine = {name: m for name, m in (summary.get("models") or {}).items() if m.get("per_machine")}
    if per_machine:
        described = {k: v for m in per_machine.values() for k, v in (m.get("machines") or {}).items()}
        parts.append(note(
            "The GNNs trained on the labels of several machines at once, each prediction told its machine "
            "(<code>models/machine.py</code>: the calibration kernel's speed, the vector width, the cache sizes). "
            "Each machine's held-out programs, scored on that machine's labels (mean over training seeds); the "
            "headline above is the first machine's, the one the baselines trained on. Machines: "
            + "; ".join(f"<code>{esc(k)}</code> {esc(v)}" for k, v in described.items()) + "."
        ))  # fmt: skip
        for split in EVAL_SPLITS:
            rows = [_metric_row(f"{name} on {machine}", by_split[split])
                    for name, m in per_machine.items() for machine, by_split in m["per_machine"].items()
                    if by_split.get(split)]  # fmt: skip
            if rows:
                t = Table(_metric_frame(rows), formats={**METRIC_FORMATS, "programs": fmt_num(), "schedules": fmt_num()})
                parts += [f"<h3>{split} programs, per machine</h3>", t]
                md.append(f"{split} programs, per machine:\n\n{t.markdown()}\n")
    adapt = summary.get("adapt")
    if adapt:
        timing = adapt.get("timing") or {}
        machine = adapt.get("machine") or {}
        where = (f"(<code>{esc(machine.get('cpu_model'))}</code>, {machine.get('vector_bits')}-bit vectors)")
        if timing.get("source"):
            what = (f"<code>perfgraph adapt</code> fine-tuned every seed run on {timing.get('programs')} random "
                    f"programs of <code>{esc(timing['source'])}</code>, timed on this machine {where} "
                    f"({timing.get('schedules_timed')} schedules), none of which any model is scored on above")  # fmt: skip
        else:
            what = (f"<code>perfgraph adapt</code> timed {timing.get('programs')} random programs "
                    f"({timing.get('schedules_timed')} schedules, chosen by the models' seed runs) on this machine "
                    f"{where} in {(timing.get('wall_s') or 0) / 60:.1f} min of a {adapt.get('budget_min'):g}-minute "
                    "budget, then fine-tuned every seed run on them")  # fmt: skip
        words = (
            f"{what} ({(adapt.get('finetune_wall_s') or 0) / 60:.1f} min of fine-tuning). The cross-machine "
            "check and the picks above list the adapted models as <code>&lt;model&gt;+adapted</code>, beside the "
            "models as trained; validation on the adaptation's own held-out programs, before and after:"
        )
        rows = [{"run": r["run"], "τ before": (r.get("val_before") or {}).get("kendall_tau"),
                 "τ after": (r.get("val_after") or {}).get("kendall_tau"), "epochs": r.get("epochs_run")}
                for runs in (adapt.get("models") or {}).values() for r in runs]  # fmt: skip
        frame = pl.DataFrame(rows, schema={"run": pl.String, "τ before": pl.Float64, "τ after": pl.Float64,
                                           "epochs": pl.Int64})  # fmt: skip
        t = Table(frame, formats={"τ before": fmt_num(3), "τ after": fmt_num(3), "epochs": fmt_num()})
        parts += [note(words), t]
        md.append(f"Adaptation to this machine: {timing.get('programs')} programs"
                  + (f" of {timing['source']}" if timing.get("source") else f" timed in {(timing.get('wall_s') or 0) / 60:.1f} min")
                  + f".\n\n{t.markdown()}\n")  # fmt: skip
    if not parts:
        return [nodata("one machine's labels, and no adaptation (models.dataset lists one dataset; adapt is off)")]
    ctx.markdown["machines"] = "\n".join(md)
    return parts


SECTIONS: list[tuple[str, str, Callable[[SectionContext], str]]] = [
    ("overview", "Overview", section_overview),
    ("headline", "Headline: models × metrics", section_headline),
    ("ratios", "Error ratios: baselines / GNN", section_ratios),
    ("predicted-vs-measured", "Predicted vs measured run time", section_scatter),
    ("error-cdf", "Error distribution", section_cdf),
    ("kendall", "Ranking within a program: Kendall τ", section_kendall),
    ("top-k", "Top-k: finding the best schedule", section_topk),
    ("selection", "Picking a schedule: the models' picks against Halide's", section_selection),
    ("training", "Training", section_training),
    ("tvm", "TVM programs: GNN vs TVM's XGBModel", section_tvm),
    ("fresh", "Cross-machine check: the dataset built on this machine", section_fresh),
    ("machines", "Several machines, and a model of this one", section_machines),
    ("dataset", "Dataset", section_dataset),
    ("machine", "Machine and library versions", section_machine),
    ("config", "Configuration used", section_config),
]
assert tuple(s[0] for s in SECTIONS) == SECTION_IDS


def per_program(preds: pl.DataFrame, noise: pl.DataFrame) -> dict[str, dict[str, pl.DataFrame]]:
    out: dict[str, dict[str, pl.DataFrame]] = {}
    for split in EVAL_SPLITS:
        d = {}
        for (model,), g in preds.filter(pl.col("split") == split).group_by("model"):
            d[model] = stats.per_program(g)
        ns = noise.filter(pl.col("split") == split)
        if ns.height:
            d[NOISE_NAME] = stats.per_program(ns)
        out[split] = d
    return out


