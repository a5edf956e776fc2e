"""How much a model of other machines gains from ``perfgraph adapt`` here, against its budget.

Given models trained without this machine (``--base-models``: their seed runs), one
``perfgraph adapt`` run with a generous budget (``--adapted``: its ``adapt.json`` records when
each program's timing finished) and this machine's own labels to score on (``--eval-dataset``:
a dataset timed here, none of whose programs the adaptation drew, e.g. a published dataset of
this machine), for each budget of ``--budgets`` (minutes):

1. the programs ``adapt`` had timed by then are the adaptation data (what ``adapt
   --budget-min B`` would have timed: the schedules it chose do not depend on the budget);
2. every base seed run is fine-tuned on them exactly as ``adapt`` does
   (:func:`models.adapt.finetune_run`), and, as the comparison the issue asks for, the same
   model is trained from scratch on the same programs (3 seeds);
3. each is scored on the evaluation dataset's random programs (``test``) and zoo programs
   (``zoo``), with this machine's labels: Kendall's tau and top-1 per program, averaged, for
   the seed runs (mean and spread) and for the seeds used as one (geometric mean of their
   predictions); with ``--zoo-pools``, also the zoo candidate pools of
   ``benchmarks/zoo_selection.py`` (every candidate timed here, labels the median over its
   sessions): tau there and the picks against Halide's default pick, beam 32.

Budget 0 is the base models as they are. The JSON goes to ``--out``; the training runs are kept
under ``--work-dir``, and a rerun reuses them. ``--weights-for B`` only retrains Adams2019 from
Halide's weights on budget ``B``'s programs (what ``adapt --budget-min B`` writes as
``adams2019_local.weights``) into ``--work-dir``/local_<B>.weights and stops: the zoo pools'
local beam searches are drawn with it, so that a budget's picks are scored among the candidates
its own adaptation can draw.

    python benchmarks/adaptation.py --base-models results/bench/base_ref --adapted results/adapted_45 \\
        --eval-dataset datasets/xeon_spr_a --zoo-pools results/_work/zoo_pool1 results/_work/zoo_pool2 \\
        --budgets 0 5 10 20 30 45

``--pool-models DIR ...`` scores other models on the pools too (``--budgets`` may then be empty).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from common import ROOT, environment  # noqa: F401  (puts the repository on sys.path)

from featurize import schema  # noqa: E402
from featurize.build import featurize_dataset  # noqa: E402
from models import metrics as metrics_mod  # noqa: E402
from models.adapt import finetune_run, local_adams2019, local_split  # noqa: E402
from models.evaluate import evaluate, seed_run_dirs  # noqa: E402
from models.machine import host_machine_row  # noqa: E402
from models.select import default_config, default_timing, load_model, score_candidates  # noqa: E402
from models.selection import pick_speedups, reference_columns, seed_ensemble, session_labels  # noqa: E402
from models.split import write_split  # noqa: E402
from models.train import train  # noqa: E402


def prefix_dataset(adapted: Path, minutes: float, out: Path) -> dict:
    """The programs ``adapt`` had timed within ``minutes``, as a dataset (and its split)."""
    record = json.loads((adapted / "adapt.json").read_text())
    work = adapted / "work" if (adapted / "work").is_dir() else Path(record.get("work_dir", adapted / "work"))
    programs = [p for p in record["timing"]["programs"] if "error" not in p and p.get("elapsed_s", 0) <= 60 * minutes]
    if not (out / "split.parquet").exists():
        featurize_dataset([work / p["program_id"] for p in programs], None, out)
        schema.write_table("split", local_split(out, 0), out / "split.parquet")
    return {"programs": len(programs), "schedules": sum(p.get("timed_ok", 0) for p in programs),
            "timing_s": max([p["elapsed_s"] for p in programs], default=0.0)}  # fmt: skip


def scored_on(run_dirs: list[Path], eval_dataset: Path, held_out: Path, sub: str) -> dict:
    """Each run scored on the evaluation dataset (every program held out), and the runs as one."""
    per_run, frames = [], []
    for run in run_dirs:
        target = run / sub
        if not (target / "metrics.json").exists():
            evaluate(eval_dataset, held_out, run, strict=False, out_dir=target)
        per_run.append(json.loads((target / "metrics.json").read_text()))
        frames.append(schema.read_table(target / "predictions.parquet", "predictions"))
    out = {}
    for split in ("test", "zoo"):
        runs = [m[split] for m in per_run if m.get(split)]
        if not runs:
            continue
        ens = seed_ensemble([f.filter(pl.col("split") == split) for f in frames])
        one = metrics_mod.compute_metrics(ens)
        out[split] = {
            "kendall_tau": float(np.mean([r["kendall_tau"] for r in runs])),
            "kendall_tau_runs": [r["kendall_tau"] for r in runs],
            "top1": float(np.mean([r["top1"] for r in runs])),
            "seeds_as_one": {"kendall_tau": one["kendall_tau"], "top1": one["top1"],
                             "n_programs": one["n_programs"]},  # fmt: skip
        }
    return out


def pool_figures(run_dirs: list[Path], pools: list[Path], host_row: dict) -> dict:
    """On each zoo pool (benchmarks/zoo_selection.py's work directory, already timed): tau of
    the runs as one over each program's candidates, and the picks against Halide's beam-32 pick."""
    out = {}
    runs = [load_model(r) for r in run_dirs]
    for pool in pools:
        names = sorted(d.name for d in pool.iterdir() if (d / "candidates.parquet").exists())
        sessions = [pl.concat([schema.read_table(f, "measurements") for f in sorted((pool / n).glob("measurements*.parquet"))])
                    for n in names]  # fmt: skip
        labels = session_labels(sessions).select("schedule_id", pl.col("runtime_s").alias("y_true"))
        cands = pl.concat([schema.read_table(pool / n / "candidates.parquet", "candidates") for n in names])
        refs = reference_columns(cands["program_id"], cands, labels.rename({"y_true": "runtime_s"}))
        scored = []
        for run in runs:
            preds = pl.concat([score_candidates(pool / n, run, host_row).filter(pl.col("status") == "scored")
                               .select("schedule_id", pl.col("predicted_s").alias("y_pred")) for n in names])  # fmt: skip
            scored.append(preds.join(cands.select("program_id", "schedule_id"), on="schedule_id").join(labels, on="schedule_id"))
        ens = seed_ensemble(scored)
        picks, _ = pick_speedups([ens], refs)
        runs_picks, _ = pick_speedups(scored, refs)
        tau = metrics_mod.compute_metrics(ens)["kendall_tau"]
        out[pool.name] = {"kendall_tau_seeds_as_one": tau,
                          "top1_seeds_as_one": picks["top1"], "per_program": picks["per_program"],
                          "top1_per_run": runs_picks["per_run"], "oracle": picks["oracle"]}  # fmt: skip
        print(f"  {pool.name}: tau {tau:.3f}, top-1 {picks['top1']['geomean']:.2f}x (worst {picks['top1']['min']:.2f}x), "
              f"oracle {picks['oracle']['geomean']:.2f}x", file=sys.stderr, flush=True)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-models", required=True, help="models trained without this machine (their parent directory)")
    ap.add_argument("--model", default="gatv2")
    ap.add_argument("--adapted", required=True, help="a perfgraph adapt output with a budget at least the largest")
    ap.add_argument("--eval-dataset", required=True, help="a dataset timed on this machine, not drawn by adapt")
    ap.add_argument("--zoo-pools", nargs="*", default=[], help="benchmarks/zoo_selection.py work directories")
    ap.add_argument("--budgets", nargs="*", type=float, default=[0, 5, 10, 20, 30])
    ap.add_argument("--pool-models", nargs="*", default=[], metavar="DIR",
                    help="other model directories (their seed runs) to score on the zoo pools too, e.g. one "
                         "trained on every dataset of this machine: what more local data than a budget buys")
    ap.add_argument("--scratch", action="store_true", help="also train the model from scratch on each budget's programs")
    ap.add_argument("--weights-for", type=float, default=None, metavar="B",
                    help="only write the local Adams2019 weights of budget B's programs, then stop")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work-dir", default="results/_work/adaptation")
    ap.add_argument("--out", default="results/bench/adaptation.json")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    work, adapted, eval_dataset = Path(args.work_dir), Path(args.adapted), Path(args.eval_dataset)
    base_runs = seed_run_dirs(Path(args.base_models) / args.model)
    held_out = work / "held_out.parquet"
    if not held_out.exists():
        write_split(eval_dataset, held_out, all_held_out=True)
    settings = json.loads((adapted / "adapt.json").read_text())["settings"]
    # Scores are kept beside each run, the base runs' too, which replays on other evaluation
    # datasets share: one directory per evaluation dataset, so none reads another's.
    scores_dir = f"on_{eval_dataset.name}"
    if args.weights_for is not None:
        data = work / f"data_{args.weights_for:g}"
        prefix_dataset(adapted, args.weights_for, data)
        out = work / f"local_{args.weights_for:g}"
        local = local_adams2019(data, data / "split.parquet", out, args.threads)
        weights = work / f"local_{args.weights_for:g}.weights"
        Path(local["weights"]).replace(weights)
        print(weights)
        return 0
    host_row = host_machine_row(default_timing(), work / "calibration") if args.zoo_pools else None
    if args.pool_models and not args.zoo_pools:
        raise schema.UserError("--pool-models scores on the zoo pools: give --zoo-pools too")
    result = {"environment": environment(), "model": args.model, "base_models": args.base_models,
              "adapted": str(adapted), "eval_dataset": str(eval_dataset), "budgets": []}  # fmt: skip
    for budget in args.budgets:
        print(f"budget {budget:g} min", file=sys.stderr, flush=True)
        entry: dict = {"budget_min": budget}
        if budget == 0:
            runs = base_runs
        else:
            data = work / f"data_{budget:g}"
            entry["data"] = prefix_dataset(adapted, budget, data)
            runs = []
            for k, run in enumerate(base_runs):
                target = work / f"adapted_{budget:g}" / (args.model if k == 0 else f"{args.model}/seeds/{k}")
                if not (target / "checkpoint.pt").exists():
                    finetune_run(run, data, data / "split.parquet", target, settings["finetune"], k, args.threads)
                runs.append(target)
            if args.scratch:
                scratch = []
                for k in range(len(base_runs)):
                    target = work / f"scratch_{budget:g}" / (args.model if k == 0 else f"{args.model}/seeds/{k}")
                    if not (target / "checkpoint.pt").exists():
                        train(args.model, data, data / "split.parquet", target, seed=k, threads=args.threads,
                              progress=False, config=default_config()["models"]["hparams"].get(args.model))  # fmt: skip
                    scratch.append(target)
                entry["scratch"] = scored_on(scratch, eval_dataset, held_out, scores_dir)
                if args.zoo_pools:
                    entry["scratch"]["pools"] = pool_figures(scratch, [Path(p) for p in args.zoo_pools], host_row)
        entry["adapted"] = scored_on(runs, eval_dataset, held_out, scores_dir)
        if args.zoo_pools:
            entry["adapted"]["pools"] = pool_figures(runs, [Path(p) for p in args.zoo_pools], host_row)
        zoo = entry["adapted"].get("zoo", {})
        print(f"  {eval_dataset.name}: zoo tau {zoo.get('kendall_tau', float('nan')):.3f} "
              f"(seeds as one {zoo.get('seeds_as_one', {}).get('kendall_tau', float('nan')):.3f}), test tau "
              f"{entry['adapted'].get('test', {}).get('kendall_tau', float('nan')):.3f}", file=sys.stderr, flush=True)
        result["budgets"].append(entry)
        schema.write_json(result, args.out)
    for model_dir in args.pool_models:
        print(f"pool models {model_dir}", file=sys.stderr, flush=True)
        result.setdefault("pool_models", {})[model_dir] = pool_figures(
            seed_run_dirs(Path(model_dir)), [Path(p) for p in args.zoo_pools], host_row
        )
        schema.write_json(result, args.out)
    result["wall_s"] = time.perf_counter() - t0
    schema.write_json(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(schema.run_reporting_user_errors(main))
