"""Is data or the model the limit? Ranking quality against the number of training programs.

On one dataset and one split (validation, test and zoo programs fixed), each model is trained
on ``n`` of the split's training programs for every ``n`` of ``--sizes`` (``all``: every one),
for each seed of ``--seeds``: seed ``k`` draws its own nested subsets (the first ``n`` of one
random order of the training programs) and initialises the model with ``k``, so the spread
over seeds is that of the data drawn as well as of training. Each run is scored on the test and
zoo programs (Kendall's tau and top-1 per program, averaged over programs; calibrated MAPE) by
the evaluation path the workflow uses (:func:`models.evaluate.evaluate`), beside the labels'
own ceiling on the same programs (split-half re-measurement: what a perfect model of the noisy
labels would score, :func:`models.evaluate.noise_by_split`).

The conclusion is read off the curve: the gain in test tau from the last doubling of the data,
against the spread over seeds. A gain larger than the spread says more data is what moves the
model; a flat end says the model (inputs, architecture, loss) is the limit at this size.

    python benchmarks/learning_curve.py --dataset datasets/reference --models gatv2 pooled_xgb \\
        --sizes 25 50 100 all --seeds 0 1 2 --out results/bench/learning_curve.json

``--extra-train DIR ...`` adds further shards of the same machine (e.g. ``datasets/reference_b``)
as training programs only: the shards are merged with ``--dataset`` (:func:`featurize.merge.merge_datasets`)
and every program of theirs is ``train``, while ``--dataset``'s own split (validation, test, zoo)
stays as it was, so the curve's held-out figures stay comparable with the curve without them.

The training runs are kept under ``--work-dir``; a rerun reuses every finished one.
The subsets are :func:`models.split.train_subset`'s. Each model is trained with the default
workflow's settings (:func:`workflow_config`); ``--config MODEL=JSON`` overrides them (a variant
is then its own curve: name it with ``--tag``, which the curve's name and work directory take).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from common import ROOT, write_result  # noqa: F401  (puts the repository on sys.path)

from featurize import schema  # noqa: E402
from featurize.merge import merge_datasets  # noqa: E402
from models.constants import GNN_MODELS  # noqa: E402
from models.evaluate import evaluate, noise_by_split  # noqa: E402
from models.select import default_config  # noqa: E402
from models.split import train_subset, write_split  # noqa: E402
from models.train import train  # noqa: E402

#: What each run is scored by, per held-out split.
CURVE_METRICS = ("kendall_tau", "top1", "top5", "mape", "mape_calibrated")
SCORED_SPLITS = ("val", "test", "zoo")


def workflow_config(model: str) -> dict:
    """The config the default workflow trains ``model`` with (config/config.yaml's
    ``models.hparams`` and, for the GNNs, its epoch budget), so a curve's last point is the
    model the report scores."""
    models_cfg = default_config()["models"]
    cfg = dict(models_cfg.get("hparams", {}).get(model) or {})
    if model in GNN_MODELS and models_cfg.get("epochs"):
        cfg.setdefault("epochs", models_cfg["epochs"])
    return cfg


def run_once(dataset: Path, split: pl.DataFrame, model: str, config: dict, n_train: int | None, seed: int,
             run_dir: Path, threads: int) -> dict:  # fmt: skip
    """Train one model on one subset (or reuse a finished run) and score it."""
    split_path = run_dir / "split.parquet"
    metrics_path = run_dir / "model" / "metrics.json"
    run_dir.mkdir(parents=True, exist_ok=True)
    if not metrics_path.exists():
        schema.write_table("split", train_subset(split, n_train, seed), split_path)
        t0 = time.perf_counter()
        meta = train(model, dataset, split_path, run_dir / "model", seed=seed, threads=threads, config=config,
                     progress=False)  # fmt: skip
        train_s = time.perf_counter() - t0
        evaluate(dataset, split_path, run_dir / "model", splits=("test", "zoo"), threads=threads)
        schema.write_json({"train_wall_s": train_s, "epochs_run": meta.get("epochs_run"),
                           "n_train_programs": meta.get("n_train_programs")}, run_dir / "run.json")  # fmt: skip
    scores = json.loads(metrics_path.read_text())
    run = json.loads((run_dir / "run.json").read_text())
    out = {"seed": seed, **run}
    for name in SCORED_SPLITS:
        m = scores.get(name) or {}
        out[name] = {k: m.get(k) for k in CURVE_METRICS} | {"n_programs": m.get("n_programs")}
    return out


def summarize_runs(runs: list[dict]) -> dict:
    """Mean, standard deviation and range over seeds of each split's metrics."""
    out = {}
    for name in SCORED_SPLITS:
        out[name] = {}
        for k in CURVE_METRICS:
            vals = np.array([r[name][k] for r in runs if r[name].get(k) is not None], dtype=float)
            out[name][k] = (
                {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                 "min": float(vals.min()), "max": float(vals.max()), "n_seeds": int(len(vals))}  # fmt: skip
                if len(vals) else None
            )
    return out


def conclusion(curve: dict[str, dict], ceiling: dict, target_tau: float) -> dict:
    """Per model: the test tau gain of the last doubling-or-more of the data against the
    spread over seeds, and what it says; the least-squares slope of test tau against log2 of
    the training programs over every point, and how many programs that slope would need to
    reach ``target_tau`` (an extrapolation: a curve bends, so a floor, not a promise)."""
    out = {}
    for model, points in curve.items():
        sizes = sorted(points, key=lambda s: points[s]["n_train"])
        if len(sizes) < 2:
            continue
        last, prev = points[sizes[-1]], points[sizes[-2]]
        tau_last, tau_prev = last["summary"]["test"]["kendall_tau"], prev["summary"]["test"]["kendall_tau"]
        if tau_last is None or tau_prev is None:
            continue
        gain = tau_last["mean"] - tau_prev["mean"]
        spread = max(tau_last["std"], tau_prev["std"])
        ratio = last["n_train"] / max(prev["n_train"], 1)
        per_doubling = gain / math.log2(ratio) if ratio > 1 else float("nan")
        ceiling_tau = ((ceiling.get("test") or {}).get("kendall_tau"))
        xs = np.log2([points[k]["n_train"] for k in sizes])
        ys = np.array([(points[k]["summary"]["test"]["kendall_tau"] or {}).get("mean", np.nan) for k in sizes])
        slope = float(np.polyfit(xs, ys, 1)[0]) if np.isfinite(ys).all() else float("nan")
        needed = (last["n_train"] * 2 ** ((target_tau - tau_last["mean"]) / slope)
                  if slope > 0 and tau_last["mean"] < target_tau else None)  # fmt: skip
        out[model] = {
            "from_programs": prev["n_train"], "to_programs": last["n_train"],
            "test_tau_gain": gain, "test_tau_gain_per_doubling": per_doubling, "seed_std": spread,
            "test_tau_at_all": tau_last["mean"], "label_ceiling_tau": ceiling_tau,
            "test_tau_slope_per_doubling": slope, "target_tau": target_tau,
            "programs_for_target_at_slope": needed,
            "verdict": ("data: the last doubling gains more than the seed spread" if gain > spread
                        else "model: the last doubling gains no more than the seed spread"),
        }  # fmt: skip
    return out


def with_extra_training(dataset: Path, split: pl.DataFrame, extra: list[Path], out: Path) -> tuple[Path, pl.DataFrame]:
    """``dataset`` merged with the shards ``extra`` (written once to ``out``) and the split with
    every program of the shards added as ``train``; ``dataset``'s own assignments unchanged."""
    if not (out / "programs.parquet").exists():
        merge_datasets([dataset, *extra], out)
    programs = schema.read_table(schema.table_path(out, "programs"), "programs")
    # Not a zoo program of a shard: it would be trained on while the base dataset scores the zoo.
    added = programs.filter(~pl.col("program_id").is_in(split["program_id"].to_list()) & (pl.col("origin") != "zoo"))
    split = pl.concat([split, added.select("program_id", split=pl.lit("train"))]).sort("program_id")
    return out, split


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="datasets/reference")
    ap.add_argument("--split", default=None, help="an existing split table (default: perfgraph split's, seed 0)")
    ap.add_argument("--extra-train", nargs="+", default=[], metavar="DIR",
                    help="shards of the same machine whose programs are all added as training programs")  # fmt: skip
    ap.add_argument("--models", nargs="+", default=["gatv2", "pooled_xgb"])
    ap.add_argument("--config", action="append", default=[], metavar="MODEL=JSON", help="config overrides of a model")
    ap.add_argument("--tag", default="", help="suffix of the curve names when --config is given")
    ap.add_argument("--sizes", nargs="+", default=["25", "50", "100", "all"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--target-tau", type=float, default=0.75, help="the test tau the conclusion extrapolates to")
    ap.add_argument("--work-dir", default="results/_work/learning_curve")
    ap.add_argument("--out", default="results/bench/learning_curve.json")
    args = ap.parse_args(argv)

    dataset, work = Path(args.dataset), Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    split_path = Path(args.split) if args.split else work / "split.parquet"
    if not args.split:
        write_split(dataset, split_path)
    split = schema.read_table(split_path, "split")
    if args.extra_train:
        dataset, split = with_extra_training(dataset, split, [Path(d) for d in args.extra_train], work / "dataset")
        split_path = work / "split_extra.parquet"
        schema.write_table("split", split, split_path)
    n_all = split.filter(pl.col("split") == "train").height
    overrides = {model: workflow_config(model) for model in args.models}
    for item in args.config:
        name, _, text = item.partition("=")
        overrides[name] = {**overrides.get(name, {}), **json.loads(text)}
    ceiling = noise_by_split(dataset, split_path, None)
    curve: dict[str, dict] = {}
    for model in args.models:
        label = model + (f"+{args.tag}" if args.tag else "")
        curve[label] = {}
        for size in args.sizes:
            n = None if size == "all" else int(size)
            runs = [run_once(dataset, split, model, overrides.get(model, {}), n, seed,
                             work / label / f"n{size}" / f"seed{seed}", args.threads) for seed in args.seeds]  # fmt: skip
            curve[label][size] = {"n_train": n_all if n is None else min(n, n_all), "runs": runs,
                                  "summary": summarize_runs(runs)}  # fmt: skip
            s = curve[label][size]["summary"]["test"]
            print(f"{label} n={size}: test tau {s['kendall_tau']['mean']:.3f} ± {s['kendall_tau']['std']:.3f}, "
                  f"top-1 {s['top1']['mean']:.3f}", file=sys.stderr, flush=True)  # fmt: skip
    result = {
        "dataset": str(dataset), "extra_train": args.extra_train, "split": str(split_path), "n_train_all": n_all, "seeds": args.seeds,
        "config_overrides": overrides, "label_ceiling": {k: ceiling.get(k) for k in ("val", "test", "zoo")},
        "curve": curve, "conclusion": conclusion(curve, ceiling, args.target_tau),
    }  # fmt: skip
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
