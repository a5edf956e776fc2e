"""Command line of the model stages on a TVM dataset (:mod:`models.tvm.stages`):
``perfgraph tvm-train``, ``tvm-evaluate``, ``tvm-summarize``, and ``tvm-tune``
(:mod:`models.tvm.tune`: a trained model inside MetaSchedule's search)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from models.constants import RUNS_HELP, planned_runs
from models.tvm import stages


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.tvm.cli", description=stages.__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("train", help="train TVM's XGBModel or a GNN on the TVM dataset")
    p.add_argument("--dataset", required=True, help="the TVM dataset, e.g. datasets/reference_tvm or results/tvm_default")
    p.add_argument("--split", required=True, help="its split table (perfgraph split)")
    p.add_argument("--model", required=True, choices=stages.TVM_MODELS)
    p.add_argument("--out", required=True, help="the model's directory")
    p.add_argument("--epochs", type=int, default=None, help="epoch budget of the GNNs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", type=int, default=1, help=RUNS_HELP)
    p = sub.add_parser("evaluate", help="score a trained model on the held-out TVM programs")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--model-dir", required=True, nargs="+", help="directories tvm-train wrote (a model's seed runs)")
    p.add_argument("--threads", type=int, default=1)
    p = sub.add_parser("summarize", help="gather the TVM models' metrics, the noise and the ratios")
    p.add_argument("--models-dir", required=True, help="parent of the TVM model directories")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--seeds", type=int, default=None, help="runs per model to average (models.seeds; default: all found)")
    p.add_argument("--out", required=True)

    p = sub.add_parser("tune", help="tune a TVM program with MetaSchedule's search, guided by a trained model",
                       description="Tune a TVM program with MetaSchedule's evolutionary search, the cost model "
                       "being a model perfgraph tvm-train wrote (frozen), TVM's XGBModel (xgb: online, TVM's "
                       "default) or random scores; writes the tuning curve (best latency after each trial).")  # fmt: skip
    p.add_argument("program", help="a TVM zoo layer (e.g. bert_qkv_dense), random:SEED, or an entry .json of tvm-generate")
    p.add_argument("--model", required=True, help="a tvm-train model directory, or xgb / random")
    p.add_argument("--trials", type=int, default=64, help="schedules built and timed (default 64)")
    p.add_argument("--seed", type=int, default=0, help="the search's seed")
    p.add_argument("--per-round", type=int, default=16, help="trials per round of the search (default 16)")
    p.add_argument("--cores", type=int, default=None, help="cores the schedules target and run on (default: all)")
    p.add_argument("--threads", type=int, default=1, help="threads of the cost model")
    p.add_argument("--work-dir", default=None, help="MetaSchedule's files (default: results/tvm_tune/<program>)")
    p.add_argument("--out", default=None, help="the curve as JSON (default: <work-dir>/tune.json)")

    from pipelines.cli import name_subcommands

    name_subcommands(sub, "models.tvm.cli")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.cmd == "train":
        for out, seed in planned_runs(args.out, args.seed, args.runs):
            meta = stages.train(args.model, args.dataset, args.split, out, epochs=args.epochs, threads=args.threads,
                                seed=seed)  # fmt: skip
            keys = ("model", "train_wall_s", "epochs_run", "best_epoch")
            print(json.dumps({k: meta.get(k) for k in keys} | {"val": meta["metrics"]["val"]}), flush=True)
    elif args.cmd == "evaluate":
        for model_dir in args.model_dir:
            print(json.dumps({"model_dir": model_dir, **stages.evaluate(args.dataset, args.split, model_dir, args.threads)}))
    elif args.cmd == "tune":
        from models.tvm.tune import tune

        work = args.work_dir or f"results/tvm_tune/{args.program.replace('/', '_').replace(':', '_')}"
        r = tune(args.program, args.model, args.trials, work_dir=work, seed=args.seed, cores=args.cores,
                 per_round=args.per_round, threads=args.threads, out=args.out or f"{work}/tune.json")  # fmt: skip
        best = "none succeeded" if r["best_s"] is None else f"best {r['best_s'] * 1e3:.4f} ms at trial {r['best_trial'] + 1}"
        print(f"{r['program_id']}: {r['trials_run']} trials ({r['trials_failed']} failed), {best}, "
              f"{r['wall_s']:.1f} s; curve in {args.out or f'{work}/tune.json'}")  # fmt: skip
    else:
        s = stages.summarize(args.models_dir, args.dataset, args.split, args.out, n_seeds=args.seeds)
        print(json.dumps({"models": sorted(s["models"]), "ratios": s["ratios"]}))
    return 0


if __name__ == "__main__":
    from featurize.schema import run_reporting_user_errors

    sys.exit(run_reporting_user_errors(main))
