"""How trained models rank the schedules only the loop-nest reader featurizes (issue 32).

Scores every training run of each model (``<models-dir>/<name>`` and its ``seeds/<k>``) on a
dataset holding Mullapudi2016's and Li2018's schedules beside Adams2019's (such as
``datasets/zen3_mullapudi_a``), with ``perfgraph evaluate``, then per model, its seed runs as
one (geometric mean of their predictions), over the programs with three or more labelled
schedules:

* ``tau_all`` / ``tau_adams2019``: mean per-program Kendall tau over every featurized schedule,
  and over Adams2019's alone (what the models were scored on before);
* ``top1_is_loopnest`` / ``best_is_loopnest``: programs whose predicted fastest / measured
  fastest is a schedule the loop-nest reader featurized;
* ``top1_speedup_from_loopnest``: geometric mean over programs of the measured time of the top-1
  among Adams2019's schedules over the top-1 among all (above 1: ranking the other
  autoschedulers' schedules too gave faster picks);
* the oracle: the fastest schedule over the fastest of Adams2019's, geometric mean.

    python benchmarks/loopnest_ranking.py --dataset datasets/zen3_mullapudi_a \\
        --models-dir results/models --out results/bench/loopnest_ranking.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from common import write_result
from scipy.stats import kendalltau

from featurize import schema
from models.evaluate import seed_run_dirs
from models.selection import seed_ensemble

MODELS = ["gine", "gcn", "gatv2", "adams2019", "pooled_xgb", "tvm_xgb"]


def geomean(x) -> float:
    return float(np.exp(np.mean(np.log(np.asarray(x, float)))))


def score(dataset: Path, runs: list[Path], work: Path) -> list[pl.DataFrame]:
    split = work / "split.parquet"
    if not split.exists():
        subprocess.run([sys.executable, "-m", "pipelines", "split", "--dataset", str(dataset), "--out", str(split),
                        "--held-out"], check=True, capture_output=True)  # fmt: skip
    outs = [work / run.parent.name / run.name for run in runs]
    subprocess.run([sys.executable, "-m", "pipelines", "evaluate", "--dataset", str(dataset), "--split", str(split),
                    "--no-strict", "--model-dir", *map(str, runs), "--out-dir", *map(str, outs)],
                   check=True, capture_output=True)  # fmt: skip
    return [schema.read_table(o / "predictions.parquet", "predictions") for o in outs]


def ranking(preds: pl.DataFrame, schedules: pl.DataFrame) -> dict:
    taus, taus_adams, top1_ln, best_ln, gain = [], [], 0, 0, []
    for _, g in preds.join(schedules, on="schedule_id").group_by("program_id"):
        g = g.filter(pl.col("y_true").is_not_null())
        own = g.filter(pl.col("featurizer") == "adams2019")
        if g.height < 3 or own.height < 2:
            continue
        taus.append(kendalltau(g["y_true"], g["y_pred"])[0])
        taus_adams.append(kendalltau(own["y_true"], own["y_pred"])[0])
        top = g.sort("y_pred", "schedule_id").row(0, named=True)
        top1_ln += top["featurizer"] == "loopnest"
        best_ln += g.sort("y_true").row(0, named=True)["featurizer"] == "loopnest"
        gain.append(own.sort("y_pred", "schedule_id")["y_true"][0] / top["y_true"])
    return {"programs": len(taus), "tau_all": float(np.nanmean(taus)), "tau_adams2019": float(np.nanmean(taus_adams)),
            "top1_is_loopnest": int(top1_ln), "best_is_loopnest": int(best_ln),
            "top1_speedup_from_loopnest": geomean(gain)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--models-dir", type=Path, required=True)
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    schedules = schema.read_table(args.dataset / "schedules.parquet", "schedules").select("schedule_id", "featurizer")
    meas = schema.read_table(args.dataset / "measurements.parquet", "measurements")
    ok = meas.filter((pl.col("status") == "ok") & (pl.col("timing_pass") == 1)).join(schedules, on="schedule_id")
    best = ok.group_by("program_id").agg(
        pl.col("runtime_s").min().alias("all"),
        pl.col("runtime_s").filter(pl.col("featurizer") == "adams2019").min().alias("adams2019"),
    )
    result = {"dataset": str(args.dataset), "models_dir": str(args.models_dir),
              "oracle_over_adams2019s": geomean((best["adams2019"] / best["all"]).drop_nulls()),
              "programs_fastest_loopnest": int((best["adams2019"] > best["all"]).sum()), "programs": best.height,
              "models": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            runs = seed_run_dirs(args.models_dir / name, None)
            preds = score(args.dataset, runs, Path(tmp) / name)
            result["models"][name] = {"runs": len(runs), **ranking(seed_ensemble(preds), schedules)}
            print(name, result["models"][name], flush=True)
    write_result(result, args.out)


if __name__ == "__main__":
    main()
