"""Tuning curves: a learned model inside MetaSchedule's search, against TVM's own.

For each TVM zoo layer, each cost model and each search seed, ``perfgraph tvm-tune``
(:func:`models.tvm.tune.tune`) runs MetaSchedule's evolutionary search for ``--trials``
trials; the curve is the best latency after each trial. The cost models: every ``--model``
directory ``perfgraph tvm-train`` wrote (a GNN, frozen), ``xgb`` (TVM's XGBModel, learning
online: MetaSchedule's default) and ``random`` (the floor). The same budget, rounds and
runner for each.

What it reports, per model: the geometric mean over layers (each layer's latency the median
over seeds) of the best latency at each checkpoint (8, 16, 32, 64 trials by default), relative
to ``xgb``'s at the last checkpoint; and the trials each needs to reach ``xgb``'s last-checkpoint
latency on each layer (the issue's target: the pretrained GNN reaches in at most 32 trials what
XGBModel reaches in 64). Latencies are MetaSchedule's runner's (``models.tvm.tune.RUNNER``), one
run after another on one machine: the machine's drift between runs is in them, which is why
several seeds are run and the medians compared.

    python benchmarks/tvm_tuning.py --models results/models/tvm_default/gatv2 xgb random \\
        --layers bert_qkv_dense resnet18_conv3x3_256 --seeds 0 1 2 --trials 64 \\
        --out results/bench/tvm_tuning.json

Runs are kept under ``--work-dir`` (one ``tune.json`` each); a rerun reuses every finished one.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from common import environment, write_result  # noqa: F401  (puts the repository on sys.path)

from models.tvm.tune import tune  # noqa: E402

CHECKPOINTS = (8, 16, 32, 64)


def model_label(model: str) -> str:
    path = Path(model)
    return model if not path.is_dir() else f"{path.parent.name}/{path.name}"


def trials_to_reach(curve: list[float | None], target: float) -> int | None:
    """The first trial (1-based) whose best-so-far latency is at most ``target``."""
    for i, v in enumerate(curve):
        if v is not None and v <= target * (1 + 1e-9):
            return i + 1
    return None


def at(curve: list[float | None], trials: int) -> float | None:
    if not curve:
        return None
    return curve[min(trials, len(curve)) - 1]


def summarize(runs: dict, layers: list[str], checkpoints: list[int], reference: str) -> dict:
    """Per model: geometric means over layers of the median-over-seeds best latency at each
    checkpoint relative to ``reference``'s at the last, and trials to reach that latency."""
    last = checkpoints[-1]
    ref_at = {}
    for layer in layers:
        vals = [at(r["best_so_far_s"], last) for r in runs.get(reference, {}).get(layer, [])]
        vals = [v for v in vals if v is not None]
        ref_at[layer] = float(np.median(vals)) if vals else None
    out = {}
    for label, by_layer in runs.items():
        rel = {c: [] for c in checkpoints}
        reach = {}
        for layer in layers:
            target = ref_at.get(layer)
            seeds = by_layer.get(layer, [])
            if target is None or not seeds:
                continue
            for c in checkpoints:
                vals = [v for v in (at(r["best_so_far_s"], c) for r in seeds) if v is not None]
                if vals:
                    rel[c].append(float(np.median(vals)) / target)
            reach[layer] = [trials_to_reach(r["best_so_far_s"], target) for r in seeds]
        out[label] = {
            "latency_vs_reference_geomean": {
                str(c): (float(math.exp(np.mean(np.log(v)))) if v else None) for c, v in rel.items()
            },
            "trials_to_reference_latency": reach,
            "layers_reached_within": {
                str(c): sum(1 for v in reach.values() if sorted(x or 10**9 for x in v)[len(v) // 2] <= c)
                for c in checkpoints
            },
        }  # fmt: skip
    return {"reference": reference, "reference_latency_s": ref_at, "models": out}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", required=True, help="tvm-train model directories, xgb, random")
    ap.add_argument("--layers", nargs="+", required=True, help="TVM zoo layers (pipelines/tvm/zoo.py)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--per-round", type=int, default=16)
    ap.add_argument("--checkpoints", nargs="+", type=int, default=list(CHECKPOINTS))
    ap.add_argument("--reference", default="xgb", help="the model whose last-checkpoint latency is the target")
    ap.add_argument("--cores", type=int, default=None)
    ap.add_argument("--work-dir", default="results/_work/tvm_tuning")
    ap.add_argument("--out", default="results/bench/tvm_tuning.json")
    args = ap.parse_args(argv)

    env = environment()  # the load before the runs
    checkpoints = sorted(c for c in args.checkpoints if c <= args.trials) or [args.trials]
    work = Path(args.work_dir)
    runs: dict[str, dict[str, list]] = {}
    for layer in args.layers:
        for seed in args.seeds:
            # Models inside the seed loop: a drift of the machine falls on every model alike.
            for model in args.models:
                label = model_label(model)
                run_dir = work / label.replace("/", "_") / layer / f"seed{seed}"
                path = run_dir / "tune.json"
                if path.exists():
                    r = json.loads(path.read_text())
                else:
                    r = tune(layer, model, args.trials, work_dir=run_dir, seed=seed, cores=args.cores,
                             per_round=args.per_round, out=path)  # fmt: skip
                runs.setdefault(label, {}).setdefault(layer, []).append(
                    {k: r[k] for k in ("seed", "best_so_far_s", "best_s", "trials_run", "trials_failed", "wall_s")}
                )
                print(f"{layer} {label} seed {seed}: best {r['best_s']} s, {r['wall_s']:.0f} s", file=sys.stderr,
                      flush=True)  # fmt: skip
    reference = model_label(args.reference)
    result = {
        "environment": env, "layers": args.layers, "seeds": args.seeds, "trials": args.trials,
        "per_round": args.per_round, "checkpoints": checkpoints, "runs": runs,
        "summary": summarize(runs, args.layers, checkpoints, reference),
    }  # fmt: skip
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
