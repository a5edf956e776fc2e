"""Inference throughput of every trained model: schedules scored per second.

A cost model is called inside schedule search on batches of candidate schedules of
one program, so each model is timed on one program x ``--batch`` schedules:

* ``embed_ms``: the once-per-program part (pipeline-feature embedding, edges);
* ``batch_ms`` / ``schedules_per_s``: scoring a batch from raw schedule features
  ``[batch, n, 39]`` (normalization included) against that embedding;
* for the GNNs, ``pyg_path_schedules_per_s``: the same batch as one PyG graph per
  schedule (``Batch.from_data_list`` + ``forward``), the naive way, for comparison;
* for the XGBoost models: building the DMatrix from the raw features and predicting.

Medians over ``--repeats`` timed runs after ``--warmup`` runs. Not a test.

    python benchmarks/inference.py --dataset results/default --split results/models/split.parquet \\
        --models-dir results/models --out results/bench/inference.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torch_geometric.data import Batch  # noqa: E402

from featurize import schema  # noqa: E402
from models.constants import GNN_MODELS, MODEL_NAMES  # noqa: E402
from models.data import ProgramData  # noqa: E402
from models.halide.inputs import load_dataset  # noqa: E402
from models.registry import CHECKPOINT, TrainedModel  # noqa: E402


def _time(fn, repeats: int, warmup: int, sync) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def pick_program(programs: list[ProgramData]) -> ProgramData:
    """The held-out program with the most stages (ties: most schedules, then id)."""
    return max(programs, key=lambda p: (p.num_nodes, p.num_schedules, p.program_id))


def bench_model(tm: TrainedModel, prog: ProgramData, batch: int, repeats: int, warmup: int) -> dict:
    dev = tm.device
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    idx = torch.arange(batch) % prog.num_schedules
    sf_raw = prog.sf_raw[idx].contiguous()
    res: dict = {"model": repr(tm.model)}
    if tm.is_torch:
        model = tm.model
        p = prog.to(dev)
        sf = sf_raw.to(dev)
        with torch.inference_mode():
            emb_s = _time(lambda: model.embed_program(p), repeats, warmup, sync)
            emb = model.embed_program(p)

            def score():
                return model.forward_program(p.with_schedules(sf, tm.stats), emb)

            batch_s = _time(score, repeats, warmup, sync)
            res.update(embed_ms=emb_s * 1e3, batch_ms=batch_s * 1e3, schedules_per_s=batch / batch_s)
            if tm.name in GNN_MODELS:
                pb = p.with_schedules(sf, tm.stats)

                def naive():
                    b = Batch.from_data_list(pb.to_data_list())
                    return model(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs)

                naive_s = _time(naive, max(3, repeats // 4), 1, sync)
                res.update(pyg_path_batch_ms=naive_s * 1e3, pyg_path_schedules_per_s=batch / naive_s)
                torch.testing.assert_close(score(), naive(), rtol=1e-4, atol=1e-4)
    else:
        pb = prog.select(idx)
        batch_s = _time(lambda: tm.predict_seconds([pb]), repeats, warmup, lambda: None)
        res.update(embed_ms=0.0, batch_ms=batch_s * 1e3, schedules_per_s=batch / batch_s)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="results/default")
    ap.add_argument("--split", default="results/models/split.parquet")
    ap.add_argument("--models-dir", default="results/models")
    ap.add_argument("--out", default="results/bench/inference.json")
    ap.add_argument("--models", nargs="*", default=list(MODEL_NAMES))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    split = schema.read_table(args.split, "split")
    results, skipped, prog, stats = {}, {}, None, None
    for name in args.models:
        mdir = Path(args.models_dir) / name
        if not (mdir / CHECKPOINT).exists():
            skipped[name] = "no checkpoint"
            continue
        tm = TrainedModel(mdir, device=args.device if name not in ("tvm_xgb", "pooled_xgb") else "cpu", threads=args.threads)
        if prog is None or stats is not tm.stats:
            ds = load_dataset(args.dataset, split, stats=tm.stats, splits=("test", "zoo", "val", "train"),
                              vector_counts=tm.vector_counts)
            held_out = ds.split("test", "zoo") or ds.programs
            prog = pick_program(held_out)
            stats = tm.stats
        results[name] = bench_model(tm, prog, args.batch, args.repeats, args.warmup)
        print(f"{name:>10}: {results[name]['schedules_per_s']:>12,.0f} schedules/s", file=sys.stderr)

    out = {
        "batch": args.batch,
        "repeats": args.repeats,
        "threads": args.threads,
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "program": None
        if prog is None
        else {"program_id": prog.program_id, "num_nodes": prog.num_nodes, "num_edges": prog.num_edges},
        "models": results,
        "skipped": skipped,
    }
    schema.write_json(out, args.out)
    print(json.dumps({k: round(v["schedules_per_s"]) for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
