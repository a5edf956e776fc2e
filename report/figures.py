"""The report's figures, drawn with matplotlib's Agg backend into PNG bytes.

Each function returns the PNG bytes of one figure, or ``None`` when there is nothing
to draw (the caller then writes "no data"). Figures are built with
:class:`matplotlib.figure.Figure` directly, never through pyplot's global state.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter, PercentFormatter  # noqa: E402

from report import stats  # noqa: E402

DPI = 100
SPLIT_COLORS = {"test": "#1f77b4", "zoo": "#d62728", "train": "#7f7f7f", "val": "#2ca02c"}
ORIGIN_COLORS = {"random": "#4c72b0", "zoo": "#dd8452", "user": "#55a868"}
STATUS_COLORS = {
    "ok": "#55a868",
    "compile_error": "#c44e52",
    "runtime_error": "#dd8452",
    "crash": "#8172b3",
    "timeout": "#937860",
    "not timed": "#bbbbbb",
}
NOISE_LABEL = "timing noise (split-half)"

RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def model_colors(names: Sequence[str]) -> dict[str, str]:
    cycle = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
    return {n: cycle[i % len(cycle)] for i, n in enumerate(names)}


def _new(width: float, height: float, nrows: int = 1, ncols: int = 1, **kw):
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _grid(n: int, ncols: int = 3) -> tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


def _log_bins(values: np.ndarray, per_decade: int = 8) -> np.ndarray:
    lo, hi = np.log10(values.min()), np.log10(values.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    n = max(5, int(math.ceil((hi - lo) * per_decade)))
    return np.logspace(lo, hi, n + 1)


def _log_labels(axis, suffix: str) -> None:
    """Label a log axis with plain numbers plus a unit suffix ("2x", "50%"); on a
    range of under two decades, label the 2s and 5s between the powers of ten too."""
    ax = axis.axes
    lo, hi = sorted(ax.get_xlim() if axis is ax.xaxis else ax.get_ylim())  # get_*lim applies pending autoscaling
    fmt = FuncFormatter(lambda v, _: f"{v:g}{suffix}")
    axis.set_major_formatter(fmt)
    if lo > 0 and hi / lo < 100:
        axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}{suffix}" if f"{v:e}"[0] in "25" else ""))
    else:
        axis.set_minor_formatter(NullFormatter())


def _count_axis(axis) -> None:
    axis.set_major_locator(MaxNLocator(integer=True))


def _no_data(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#888888")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


# --- Predictions ---------------------------------------------------------------------------


def predicted_vs_measured(preds: pl.DataFrame, models: Sequence[str], splits: Sequence[str]) -> bytes | None:
    """Log-log scatter of predicted against measured run time, one panel per model."""
    preds = preds.filter(pl.col("split").is_in(list(splits)) & (pl.col("y_true") > 0))
    models = [m for m in models if preds.filter(pl.col("model") == m).height]
    if not models:
        return None
    pos = preds.filter(pl.col("y_pred").is_finite() & (pl.col("y_pred") > 0))
    vals = np.concatenate([pos["y_true"].to_numpy(), pos["y_pred"].to_numpy()]) if pos.height else np.array([1e-3])
    lo, hi = vals.min() / 2, vals.max() * 2
    nrows, ncols = _grid(len(models))
    fig, axes = _new(3.9 * ncols, 3.6 * nrows, nrows, ncols)
    with matplotlib.rc_context(RC):
        for ax, name in zip(axes.flat, models):
            sub = preds.filter(pl.col("model") == name)
            for split in splits:
                s = sub.filter(pl.col("split") == split)
                if not s.height:
                    continue
                y = s["y_pred"].to_numpy().astype(float)
                bad = ~(np.isfinite(y) & (y > 0))
                y = np.where(bad, lo, y)  # non-positive or missing predictions sit on the floor
                ax.scatter(s["y_true"].to_numpy(), y, s=14, alpha=0.65, color=SPLIT_COLORS.get(split),
                           edgecolors="none", label=f"{split} ({s.height})")
            ax.plot([lo, hi], [lo, hi], color="black", lw=1, ls="--", label="y = x")
            for f, style in ((2.0, ":"), (0.5, ":")):
                ax.plot([lo, hi], [lo * f, hi * f], color="#999999", lw=0.8, ls=style)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.minorticks_off()  # decades only: readable, and minor log ticks cost seconds per panel
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            ax.set_aspect("equal")
            ax.set_title(name)
            ax.set_xlabel("measured run time (s)")
            ax.set_ylabel("predicted run time (s)")
            ax.legend(loc="upper left", frameon=False)
        for ax in list(axes.flat)[len(models):]:
            ax.set_visible(False)
    return _png(fig)


def error_cdf(
    preds: pl.DataFrame, models: Sequence[str], splits: Sequence[str], noise: pl.DataFrame | None
) -> bytes | None:
    """CDF of per-schedule absolute percentage error, one panel per split, with the noise floor."""
    if not preds.height and (noise is None or not noise.height):
        return None
    colors = model_colors(models)
    fig, axes = _new(5.6 * len(splits), 3.9, 1, len(splits))
    with matplotlib.rc_context(RC):
        for ax, split in zip(axes.flat, splits):
            drawn = False
            curves = [(m, preds.filter((pl.col("model") == m) & (pl.col("split") == split)), colors[m], "-") for m in models]
            if noise is not None:
                curves.append((NOISE_LABEL, noise.filter(pl.col("split") == split), "black", "--"))
            for label, sub, color, ls in curves:
                if not sub.height:
                    continue
                e = np.sort(np.clip(stats.abs_pct_error(sub), 1e-3, 1e6))
                y = np.arange(1, len(e) + 1) / len(e)
                ax.step(e, y, where="post", color=color, ls=ls, lw=1.6, label=f"{label} ({len(e)})")
                drawn = True
            if not drawn:
                _no_data(ax, f"no data for {split}")
                ax.set_title(f"{split} programs")
                continue
            ax.set_xscale("log")
            _log_labels(ax.xaxis, "%")
            ax.set_ylim(0, 1.02)
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            ax.set_xlabel("absolute error of predicted run time (% of measured)")
            ax.set_ylabel("share of schedules with error ≤ x")
            ax.set_title(f"{split} programs")
            ax.legend(loc="best", frameon=True, framealpha=0.9, edgecolor="#cccccc")
    return _png(fig)


def kendall_distribution(per_prog: dict[str, dict[str, pl.DataFrame]], models: Sequence[str],
                         splits: Sequence[str]) -> bytes | None:
    """Per-program Kendall tau, a box (and the points) per model, a panel per split.

    ``per_prog[split][model]`` is the frame of :func:`report.stats.per_program`; the
    noise floor may be one of the models (``NOISE_LABEL``)."""
    if not any(f.height for s in per_prog.values() for f in s.values()):
        return None
    colors = model_colors(models)
    colors[NOISE_LABEL] = "#555555"
    fig, axes = _new(5.6 * len(splits), 4.2, 1, len(splits))
    rng = np.random.default_rng(0)
    with matplotlib.rc_context(RC):
        for ax, split in zip(axes.flat, splits):
            names, data = [], []
            for name in [*models, NOISE_LABEL]:
                f = per_prog.get(split, {}).get(name)
                if f is None or not f.height:
                    continue
                tau = f["kendall_tau"].to_numpy()
                tau = tau[np.isfinite(tau)]
                if len(tau):
                    names.append(name)
                    data.append(tau)
            ax.set_title(f"{split} programs")
            if not data:
                _no_data(ax, f"no program with 2+ schedules in {split}")
                continue
            pos = np.arange(1, len(data) + 1)
            ax.boxplot(data, positions=pos, widths=0.55, showfliers=False, medianprops={"color": "black"})
            for p, name, d in zip(pos, names, data):
                ax.scatter(p + rng.uniform(-0.15, 0.15, len(d)), d, s=16, alpha=0.7, color=colors[name],
                           edgecolors="none", zorder=3)
            ax.axhline(0, color="#999999", lw=0.8, ls="--")
            ax.set_xticks(pos, [f"{n.replace(NOISE_LABEL, 'timing noise')}\n(n={len(d)})" for n, d in zip(names, data)],
                          rotation=30, ha="right")
            ax.set_ylim(-1.05, 1.05)
            ax.set_ylabel("Kendall τ within a program")
    return _png(fig)


def top_k_curves(preds: pl.DataFrame, models: Sequence[str], splits: Sequence[str], k_max: int = 10) -> bytes | None:
    """Mean top-k score against k, per split, with the expected score of random picks."""
    if not preds.height:
        return None
    colors = model_colors(models)
    fig, axes = _new(5.6 * len(splits), 3.9, 1, len(splits))
    ks = np.arange(1, k_max + 1)
    with matplotlib.rc_context(RC):
        for ax, split in zip(axes.flat, splits):
            sp = preds.filter(pl.col("split") == split)
            ax.set_title(f"{split} programs")
            drawn = False
            for m in models:
                sub = sp.filter(pl.col("model") == m)
                if not sub.height:
                    continue
                curve = stats.top_k_curve(sub, k_max)
                if np.all(np.isnan(curve)):
                    continue
                ax.plot(ks, curve, marker="o", ms=3, color=colors[m], label=m)
                drawn = True
            if not drawn:
                _no_data(ax, f"no program with 2+ schedules in {split}")
                continue
            first = sp.filter(pl.col("model") == sp["model"][0])
            rand = stats.random_top_k_curve(first, k_max)
            ax.plot(ks, rand, color="#777777", ls="--", label="random picks (expected)")
            ax.axhline(1.0, color="black", lw=0.8)
            ax.set_xticks(ks)
            ax.set_ylim(min(0.0, np.nanmin(rand) - 0.05) if np.isfinite(np.nanmin(rand)) else 0, 1.03)
            ax.set_xlabel("k (schedules tried, best predicted first)")
            ax.set_ylabel("best time / best of the k picks")
            ax.legend(loc="lower right", frameon=False)
    return _png(fig)


def pick_speedups(selection: dict) -> bytes | None:
    """Each model's top-1, best-of-top-5 and tuned picks as speedups over Halide's default pick
    (geometric mean over programs, 95% interval; log axis, as speedups are ratios), beside
    the oracle and the other autoschedulers."""
    models = [m for m, v in (selection.get("models") or {}).items() if (v.get("top1") or {}).get("geomean")]
    if not models:
        return None
    fig, axes = _new(max(5.6, 1.1 * len(models) + 2.5), 3.9)
    ax = axes[0, 0]
    x = np.arange(len(models))
    with matplotlib.rc_context(RC):
        for offset, key, color, label in ((-0.22, "top1", "#1f77b4", "top-1 pick"),
                                          (0.0, "top5", "#ff7f0e", "best of top-5"),
                                          (0.22, "tuned", "#9467bd", "tuned (top-5 + reference picks)")):  # fmt: skip
            # Summaries written before the tuned pick existed lack it.
            if any(not (selection["models"][m].get(key) or {}).get("geomean") for m in models):
                continue
            g = np.array([selection["models"][m][key]["geomean"] for m in models])
            lo = np.array([selection["models"][m][key]["lo"] for m in models])
            hi = np.array([selection["models"][m][key]["hi"] for m in models])
            ax.errorbar(x + offset, g, yerr=[g - lo, hi - g], fmt="o", color=color, ecolor=color, capsize=3,
                        lw=1.1, label=label)
        oracle = selection["models"][models[0]]["oracle"]["geomean"]
        ax.axhline(oracle, color="#2ca02c", ls="--", lw=1.2, label=f"oracle (best candidate) {oracle:.2f}x")
        for ref, style in (("mullapudi2016", ":"), ("li2018", "-.")):
            g = (selection.get("references") or {}).get(ref, {}).get("geomean")
            if g:
                ax.axhline(g, color="#777777", ls=style, lw=1.0, label=f"{ref} {g:.2f}x")
        ax.axhline(1.0, color="black", lw=0.9, label="Halide's default pick (1x)")
        ax.set_xticks(x, models)
        ax.set_yscale("log")
        _log_labels(ax.yaxis, "x")
        ax.set_ylabel("speedup over Halide's default pick")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _png(fig)


# --- Training -------------------------------------------------------------------------------


def training_curves(histories: dict[str, tuple[list[dict], int | None, str]]) -> bytes | None:
    """Train and validation loss per epoch (or boosting round), one panel per model.

    ``histories[model] = (history rows, best epoch or None, x-axis label)``."""
    items = [(n, h) for n, h in histories.items() if h[0]]
    if not items:
        return None
    nrows, ncols = _grid(len(items))
    fig, axes = _new(3.9 * ncols, 3.0 * nrows, nrows, ncols)
    with matplotlib.rc_context(RC):
        for ax, (name, (rows, best, xlabel)) in zip(axes.flat, items):
            ep = np.array([r.get("epoch", i) for i, r in enumerate(rows)], float)
            tr = np.array([_num(r.get("train_loss")) for r in rows])
            va = np.array([_num(r.get("val_loss")) for r in rows])
            ax.plot(ep, tr, color="#1f77b4", label="train")
            if np.isfinite(va).any():
                ax.plot(ep, va, color="#ff7f0e", label="validation")
            if best is not None:
                ax.axvline(best, color="#555555", ls=":", lw=1, label=f"best ({best})")
            both = np.concatenate([tr, va])
            both = both[np.isfinite(both)]
            if len(both) and both.min() > 0 and both.max() / both.min() > 20:
                ax.set_yscale("log")
            ax.set_title(name)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("loss (model's own objective)")
            ax.legend(frameon=False)
        for ax in list(axes.flat)[len(items):]:
            ax.set_visible(False)
    return _png(fig)


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


# --- Dataset ----------------------------------------------------------------------------


def program_shapes(programs: pl.DataFrame, nodes: pl.DataFrame) -> bytes | None:
    """Stages per program (stacked by origin) and the mix of stage kinds."""
    if not programs.height:
        return None
    fig, axes = _new(11, 3.6, 1, 2)
    ax = axes[0, 0]
    with matplotlib.rc_context(RC):
        n = programs["n_nodes"].fill_null(0).to_numpy()
        bins = np.arange(n.min(), n.max() + 2) - 0.5 if n.max() - n.min() < 40 else 30
        origins = [o for o in ("random", "zoo", "user") if o in set(programs["origin"].to_list())]
        origins += sorted(set(programs["origin"].to_list()) - set(origins))
        data = [programs.filter(pl.col("origin") == o)["n_nodes"].fill_null(0).to_numpy() for o in origins]
        ax.hist(data, bins=bins, stacked=True, label=origins, color=[ORIGIN_COLORS.get(o, "#999999") for o in origins])
        ax.set_xlabel("stages per program (graph nodes)")
        ax.set_ylabel("programs")
        _count_axis(ax.yaxis)
        _count_axis(ax.xaxis)
        ax.set_title("program size")
        ax.legend(frameon=False)
        ax = axes[0, 1]
        if nodes.height and "op_kind" in nodes.columns:
            kinds = nodes.group_by("op_kind").len().sort("len").tail(20)
            ax.barh(kinds["op_kind"].fill_null("?").to_list(), kinds["len"].to_list(), color="#4c72b0")
            ax.set_xlabel("stages")
            _count_axis(ax.xaxis)
            ax.set_title("stage kinds (all programs)")
            ax.grid(axis="y", visible=False)
        else:
            _no_data(ax)
    return _png(fig)


def machine_speed(samples: pl.DataFrame, job_order: Sequence[tuple[str, int]]) -> bytes | None:
    """The machine-speed monitor: the calibration kernel's time before every timing window,
    timing jobs laid end to end in the order they ran; windows flagged slow in red."""
    samples = samples.filter(pl.col("calibration_s") > 0)
    if not samples.height:
        return None
    fig, axes = _new(11, 3.4)
    ax = axes[0, 0]
    with matplotlib.rc_context(RC):
        offset, bounds = 0.0, []
        for pid, tpass in job_order:
            job = samples.filter((pl.col("program_id") == pid) & (pl.col("timing_pass") == tpass)).sort("started_s")
            if not job.height:
                continue
            x = offset + job["started_s"].to_numpy()
            y = job["calibration_s"].to_numpy() * 1e3
            slow = job["slow"].to_numpy()
            ax.plot(x, y, color="#4c72b0", lw=0.6, alpha=0.8)
            ax.scatter(x[slow], y[slow], s=8, color="#c44e52", zorder=3)
            bounds.append(offset)
            offset = float(x.max()) + 1.0
        for b in bounds[1:]:
            ax.axvline(b, color="#dddddd", lw=0.5, zorder=0)
        ax.scatter([], [], s=8, color="#c44e52", label="window flagged slow (re-measured)")
        ax.set_xlabel("timing-job time, jobs end to end (s)")
        ax.set_ylabel("calibration kernel (ms)")
        ax.set_title("machine speed through the timing jobs (lower is faster)")
        ax.legend(frameon=False, loc="upper right")
    return _png(fig)


def runtime_distribution(times: pl.DataFrame) -> bytes | None:
    """Histogram of measured run times (log x), stacked by program origin, plus each
    schedule's slowdown over its program's best."""
    times = times.filter(pl.col("runtime_s") > 0)
    if not times.height:
        return None
    fig, axes = _new(11, 3.6, 1, 2)
    with matplotlib.rc_context(RC):
        ax = axes[0, 0]
        v = times["runtime_s"].to_numpy()
        bins = _log_bins(v)
        origins = [o for o in ("random", "zoo", "user") if o in set(times["origin"].to_list())]
        origins += sorted(set(times["origin"].drop_nulls().to_list()) - set(origins))
        data = [times.filter(pl.col("origin") == o)["runtime_s"].to_numpy() for o in origins]
        ax.hist(data, bins=bins, stacked=True, label=origins, color=[ORIGIN_COLORS.get(o, "#999999") for o in origins])
        ax.set_xscale("log")
        ax.set_xlabel("run time, the timing protocol's label (s)")
        ax.set_ylabel("schedules")
        _count_axis(ax.yaxis)
        ax.set_title("measured run time (timing pass 1, ok)")
        ax.legend(frameon=False)
        ax = axes[0, 1]
        slow = times.with_columns(
            (pl.col("runtime_s") / pl.col("runtime_s").min().over("program_id")).alias("slowdown")
        )["slowdown"].to_numpy()
        slow = slow[slow > 1.0 + 1e-12]
        if len(slow):
            ax.hist(slow, bins=_log_bins(slow), color="#8172b3")
            ax.set_xscale("log")
            _log_labels(ax.xaxis, "x")
            _count_axis(ax.yaxis)
            ax.set_xlabel("run time / best run time of the same program")
            ax.set_ylabel("schedules (the best of each program left out)")
            ax.set_title("how much the schedule matters")
        else:
            _no_data(ax, "no program with 2+ timed schedules")
    return _png(fig)


def sampler_status(sched_status: pl.DataFrame, pass_status: pl.DataFrame) -> bytes | None:
    """Schedules per sampler split by timing status, and statuses per timing pass.

    ``sched_status``: ``sampler, status, n``; ``pass_status``: ``timing_pass, status, n``."""
    if not sched_status.height:
        return None
    fig, axes = _new(11, 3.4, 1, 2)
    with matplotlib.rc_context(RC):
        ax = axes[0, 0]
        samplers = (
            sched_status.group_by("sampler").agg(pl.col("n").sum()).sort("n")["sampler"].to_list()
        )
        statuses = [s for s in STATUS_COLORS if s in set(sched_status["status"].to_list())]
        statuses += sorted(set(sched_status["status"].to_list()) - set(statuses))
        left = np.zeros(len(samplers))
        for st in statuses:
            sub = dict(sched_status.filter(pl.col("status") == st).select("sampler", "n").iter_rows())
            w = np.array([sub.get(s, 0) for s in samplers], float)
            ax.barh(samplers, w, left=left, color=STATUS_COLORS.get(st, "#999999"), label=st)
            left += w
        ax.set_xlabel("schedules")
        _count_axis(ax.xaxis)
        ax.set_title("sampler mix, by timing status (pass 1)")
        ax.grid(axis="y", visible=False)
        ax.legend(frameon=False, loc="lower right")
        ax = axes[0, 1]
        if pass_status.height:
            passes = sorted(set(pass_status["timing_pass"].to_list()))
            labels = {1: "pass 1 (main)", 2: "pass 2 (re-time)"}
            x = np.arange(len(passes))
            bottom = np.zeros(len(passes))
            for st in statuses + sorted(set(pass_status["status"].to_list()) - set(statuses)):
                sub = dict(pass_status.filter(pl.col("status") == st).select("timing_pass", "n").iter_rows())
                h = np.array([sub.get(p, 0) for p in passes], float)
                if h.sum() == 0:
                    continue
                ax.bar(x, h, bottom=bottom, color=STATUS_COLORS.get(st, "#999999"), label=st, width=0.6)
                bottom += h
            ax.set_xticks(x, [labels.get(p, f"pass {p}") for p in passes])
            ax.set_ylabel("measurements")
            _count_axis(ax.yaxis)
            ax.set_title("measurement outcomes")
            ax.grid(axis="x", visible=False)
            ax.legend(frameon=False)
        else:
            _no_data(ax, "no measurements")
    return _png(fig)
