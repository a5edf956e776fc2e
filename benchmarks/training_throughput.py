"""Training throughput of each model: graphs (labelled schedules) per second.

Each schedule of a program is one graph (the program's stage graph with that schedule's
features), so a training epoch over the ``train`` split processes one graph per training
schedule. For each model:

* torch models (GNNs, Adams2019): the training step of ``models/train.py`` (same
  batching: schedules of one program, up to ``batch_size``, ``programs_per_step``
  programs per step; Adam; gradient clipping), ``--epochs`` timed epochs after one
  warm-up epoch; ``graphs_per_s`` = training schedules / median epoch seconds;
* XGBoost models: one ``fit`` with exactly ``--rounds`` boosting rounds (early stopping
  off); ``graphs_per_s`` = training schedules x rounds / seconds (one pass over every
  graph's rows per round), and ``fit_s``.

Also the time to build the tensors from Parquet (``load_dataset``). Threads: ``--threads``
(the workflow's ``models.threads``, default 1). Not a test; nothing is written but the JSON.

    python benchmarks/training_throughput.py --dataset results/default \\
        --out results/bench/training_throughput.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_DIR, ROOT, environment, write_result  # noqa: E402

from featurize import schema  # noqa: E402
from models.constants import GNN_MODELS, MODEL_NAMES, TORCH_MODELS, XGB_MODELS  # noqa: E402
from models.halide.inputs import load_dataset, read_model_tables  # noqa: E402
from models.registry import build_model, default_config  # noqa: E402
from models.split import assign_splits, read_split  # noqa: E402
from models.train import group_steps, programs_per_step, schedule_batches, seed_everything, train_epoch  # noqa: E402


def default_dataset() -> Path:
    for name in ("default", "tiny"):
        d = ROOT / "results" / name
        try:
            schema.read_dataset(d)
            return d
        except schema.SchemaError:
            continue
    raise SystemExit("error: no readable results/default or results/tiny: run the workflow first (make run)")


def bench_torch(name: str, ds, epochs: int, device: torch.device) -> dict:
    cfg = default_config(name)
    train = [p.to(device) for p in ds.split("train")]
    model = build_model(name, cfg, num_cores=ds.num_cores).to(device)
    if name in GNN_MODELS:
        model.y_shift.fill_(float(torch.cat([p.y for p in train]).mean()))
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], eps=1e-5 if name == "adams2019" else 1e-8)
    per_step = programs_per_step(cfg, len(train))
    n_graphs = sum(p.num_schedules for p in train)

    def epoch(e: int) -> int:
        """One epoch of the training loop itself (models.train.train_epoch); its step count."""
        steps = group_steps(schedule_batches(train, cfg["batch_size"], torch.Generator().manual_seed(e)), per_step)
        train_epoch(model, name, opt, steps, cfg["grad_clip"], torch.device("cpu"))
        return len(steps)

    epoch(-1)  # warm-up
    times, steps = [], 0
    for e in range(epochs):
        t0 = time.perf_counter()
        steps += epoch(e)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {
        "kind": "torch",
        "repr": repr(model),
        "n_params": sum(p.numel() for p in model.parameters()),
        "train_graphs": n_graphs,
        "epochs": epochs,
        "steps_per_epoch": steps // epochs,
        "epoch_s": [round(t, 4) for t in times],
        # Median epoch: the machine may be shared, and a slow epoch is more likely interference.
        "graphs_per_s": round(n_graphs / med, 1),
        "graphs_per_s_range": [round(n_graphs / max(times), 1), round(n_graphs / min(times), 1)],
        "ms_per_step": round(1e3 * med / (steps / epochs), 3),
    }


def bench_xgb(name: str, ds, rounds: int, threads: int) -> dict:
    cfg = default_config(name, max_rounds=rounds, early_stopping_rounds=rounds + 1)
    train, val = ds.split("train"), ds.split("val") or ds.split("train")
    model = build_model(name, cfg, threads=threads, seed=0)
    t0 = time.perf_counter()
    model.fit(train, val)
    fit_s = time.perf_counter() - t0
    n_graphs = sum(p.num_schedules for p in train)
    ran = len(model.history)
    return {
        "kind": "xgboost",
        "train_graphs": n_graphs,
        "rounds": ran,
        "fit_s": round(fit_s, 3),
        "graphs_per_s": round(n_graphs * ran / fit_s, 1),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", help="dataset directory (default: results/default, else results/tiny)")
    ap.add_argument("--split", help="split table (default: the workflow's hash split, computed here)")
    ap.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    ap.add_argument("--epochs", type=int, default=20, help="timed epochs per torch model (after one warm-up)")
    ap.add_argument("--rounds", type=int, default=100, help="boosting rounds per XGBoost model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--out", default=str(BENCH_DIR / "training_throughput.json"))
    args = ap.parse_args(argv)
    env = environment()  # before the work: the load average it started under

    torch.set_num_threads(args.threads)
    seed_everything(0)
    device = torch.device(args.device)
    dataset = Path(args.dataset) if args.dataset else default_dataset()
    t0 = time.perf_counter()
    tables = read_model_tables(dataset)
    read_s = time.perf_counter() - t0
    split = read_split(args.split) if args.split else assign_splits(tables["programs"])
    t0 = time.perf_counter()
    ds = load_dataset(tables=tables, split=split, splits=("train", "val"))
    build_s = time.perf_counter() - t0
    n_graphs = sum(p.num_schedules for p in ds.split("train") + ds.split("val"))
    if not ds.split("train"):
        raise SystemExit(f"error: {dataset}: the split has no training program with labelled schedules")

    results = {}
    for name in args.models:
        print(f"{name} ...", file=sys.stderr, flush=True)
        if name in TORCH_MODELS:
            results[name] = bench_torch(name, ds, args.epochs, device)
        elif name in XGB_MODELS:
            results[name] = bench_xgb(name, ds, args.rounds, args.threads)
    result = {
        "benchmark": "training_throughput",
        "dataset": str(dataset),
        "threads": args.threads,
        "device": str(device),
        "train_programs": len(ds.split("train")),
        "load": {
            "read_parquet_s": round(read_s, 3),
            "build_tensors_s": round(build_s, 3),
            "graphs": n_graphs,
            "graphs_per_s": round(n_graphs / build_s, 1),
        },
        "models": results,
    }
    result["environment"] = env
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
