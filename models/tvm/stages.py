"""The model stages on a TVM dataset: train, evaluate and summarize TVM's own ``XGBModel``
(:mod:`models.tvm.xgbmodel`) and the GNNs, scored as on the Halide side.

The GNNs (:class:`models.gcn.GCN`, :class:`models.gine.GINE`, :class:`models.gatv2.GATv2`,
their default configs) read the TVM graph (:mod:`models.tvm.inputs`) with their first layer
re-sized to its node features; training is :mod:`models.train`'s loop (Adam, batches of one
program's schedules, early stopping on validation loss; target log run time), and every
model is scored by :func:`models.evaluate.score_splits` into ``predictions.parquet`` (table
``predictions``) and ``metrics.json``. :func:`summarize` gathers them beside the noise floor
(:func:`models.evaluate.noise_by_split`) and the baseline / best-GNN ratios
(:func:`models.metrics.headline_ratios`, the best GNN chosen on validation).

    perfgraph tvm-train     --dataset D --split F --model NAME --out DIR [--epochs N --threads T --seed S]
    perfgraph tvm-evaluate  --dataset D --split F --model-dir DIR
    perfgraph tvm-summarize --models-dir DIR --dataset D --split F --out F
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featurize import schema
from featurize.schema import UserError
from models import metrics as metrics_mod
from models.data import ProgramData
from models.evaluate import noise_by_split, score_splits, write_scores
from models.train import predictions_frame
from models.tvm.inputs import NODE_DIM, SCHED_DIM, TVMStats, load_programs, read_tables, to_program_data
from models.tvm.xgbmodel import XGBModelBaseline

log = logging.getLogger(__name__)

#: Models trained on TVM data (``tvm_xgb``: TVM's own XGBModel).
TVM_MODELS = ("tvm_xgb", "gcn", "gine", "gatv2")
EVAL_SPLITS = ("test", "zoo")
#: What the summary keeps of each model's ``meta.json``.
TRAINING_KEYS = ("train_wall_s", "epochs_run", "best_epoch", "n_params", "n_train_programs", "n_train_schedules")


def build_gnn(name: str, config: dict):
    """A perfgraph GNN whose first layer reads TVM node features (:data:`NODE_DIM` + :data:`SCHED_DIM`)."""
    from models.registry import build_model

    model = build_model(name, config)
    h = model.hidden_channels
    model.pipe_lin = torch.nn.Linear(NODE_DIM, h)
    model.sched_lin = torch.nn.Linear(SCHED_DIM, h, bias=False)
    model.reset_parameters()
    return model


def train_gnn(name: str, config: dict, train: list[ProgramData], val: list[ProgramData], seed: int) -> dict[str, Any]:
    """A GNN trained by :func:`models.train.run_epochs`, the loop of both backends."""
    from models.train import adam, fresh_train_state, run_epochs

    torch.manual_seed(seed)
    model = build_gnn(name, config)
    model.y_shift.fill_(float(torch.cat([p.y for p in train]).mean()))
    opt = adam(name, model, config)
    state = fresh_train_state()
    t0 = time.perf_counter()
    best_state = run_epochs(model, name, opt, train, val, config, seed, torch.device("cpu"), state,
                            copy.deepcopy(model.state_dict()))  # fmt: skip
    model.load_state_dict(best_state)
    return {"model": model, "history": state["history"], "best_epoch": state["best_epoch"],
            "best_val_loss": state["best_val"], "train_wall_s": time.perf_counter() - t0,
            "n_params": sum(p.numel() for p in model.parameters())}  # fmt: skip


@torch.no_grad()
def gnn_seconds(model, progs: list[ProgramData]) -> list[np.ndarray]:
    model.eval()
    return [model.to_seconds(model.forward_program(p)).numpy() for p in progs]


def train(
    model_name: str,
    dataset_dir: str | os.PathLike,
    split_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    epochs: int | None = None,
    threads: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Train one model on the train split of a TVM dataset; write its files to ``out_dir``."""
    from models.registry import DEFAULT_CONFIGS

    if model_name not in TVM_MODELS:
        raise UserError(f"unknown TVM model {model_name!r}; choose from {', '.join(TVM_MODELS)}")
    torch.set_num_threads(max(1, threads))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    split = schema.read_table(split_path, "split")
    tables = read_tables(dataset_dir)
    progs, machine, cores = load_programs(tables, split, ("train", "val"))
    train_p = [p for p in progs if p.split == "train"]
    val_p = [p for p in progs if p.split == "val"]
    if not train_p:
        raise UserError("the split has no training program with labeled schedules")
    meta: dict[str, Any] = {
        "model": model_name,
        "dataset": str(dataset_dir),
        "split": str(split_path),
        "machine_id": machine,
        "num_cores": cores,
        "seed": seed,
        "threads": threads,
        "n_train_programs": len(train_p),
        "n_train_schedules": sum(p.num_schedules for p in train_p),
        "n_val_programs": len(val_p),
    }
    if model_name == "tvm_xgb":
        t0 = time.perf_counter()
        # TVM's own seed (43) for the first run, as for the GNNs models.seed + k for run k.
        base = XGBModelBaseline(threads=threads, seed=43 + seed).fit(train_p)
        base.save(out_dir)
        meta.update(
            repr=repr(base),
            config={"seed": base.seed, **base.model.config.to_dict()},
            train_wall_s=time.perf_counter() - t0,
            n_params=sum(len(t.splitlines()) for t in base.model.booster.get_dump()),
            calibration={
                "log_scale": base.log_scale,
                "score_floor": base.score_floor,
                "note": "t = exp(log_scale) / pos(score), fitted on training programs; rank metrics use the score",
            },  # fmt: skip
        )
        val_pred = base.predict_seconds(val_p)
        history: list = []
    else:
        cfg = copy.deepcopy(DEFAULT_CONFIGS[model_name])
        if epochs is not None:
            cfg["epochs"] = int(epochs)
        stats = TVMStats.fit(train_p)
        tr = [to_program_data(p, stats) for p in train_p]
        va = [to_program_data(p, stats) for p in val_p]
        res = train_gnn(model_name, cfg, tr, va, seed)
        model = res["model"]
        ckpt = {"model": model_name, "config": cfg, "state": model.state_dict(), "stats": stats.state(),
                "node_dim": NODE_DIM, "sched_dim": SCHED_DIM}  # fmt: skip
        buf = io.BytesIO()
        torch.save(ckpt, buf)
        data = buf.getvalue()
        schema.atomic_write_bytes(out_dir / "checkpoint.pt", lambda tmp: Path(tmp).write_bytes(data))
        history = res["history"]
        meta.update(repr=repr(model), config=cfg, train_wall_s=res["train_wall_s"], n_params=res["n_params"],
                    epochs_run=len(history), best_epoch=res["best_epoch"],
                    best_val_loss=res["best_val_loss"])  # fmt: skip
        val_pred = gnn_seconds(model, va)
    meta["metrics"] = {"val": metrics_mod.compute_metrics(predictions_frame(model_name, val_p, val_pred)) if val_p else None}
    schema.write_json(history, out_dir / "history.json")
    schema.write_json(meta, out_dir / "meta.json")
    return meta


def load_trained(model_dir: str | os.PathLike, threads: int = 1):
    """``(name, predict_seconds(list[TVMProgram]) -> list[np.ndarray])`` of a trained model."""
    model_dir = Path(model_dir)
    meta = json.loads((model_dir / "meta.json").read_text())
    name = meta["model"]
    if name == "tvm_xgb":
        base = XGBModelBaseline.load(model_dir, meta, threads)
        return name, meta, base.predict_seconds
    ckpt = torch.load(model_dir / "checkpoint.pt", weights_only=True)
    model = build_gnn(name, ckpt["config"])
    model.load_state_dict(ckpt["state"])
    stats = TVMStats.from_state(ckpt["stats"])
    return name, meta, lambda progs: gnn_seconds(model, [to_program_data(p, stats) for p in progs])


def evaluate(dataset_dir, split_path, model_dir, threads: int = 1) -> dict[str, Any]:
    """Predict the test and zoo programs; write ``predictions.parquet`` and ``metrics.json``
    (:func:`models.evaluate.score_splits`, as on the Halide side)."""
    model_dir = Path(model_dir)
    name, meta, predict = load_trained(model_dir, threads)
    split = schema.read_table(split_path, "split")
    progs, _, _ = load_programs(read_tables(dataset_dir), split, EVAL_SPLITS, machine_id=meta["machine_id"])
    table, out = score_splits(name, {s: [p for p in progs if p.split == s] for s in EVAL_SPLITS}, predict)
    # Validation metrics come from training; the summary chooses the best GNN on them.
    out["val"] = (meta.get("metrics") or {}).get("val")
    write_scores(model_dir, table, out)
    return out


def summarize(models_dir, dataset_dir, split_path, out=None, n_seeds: int | None = None) -> dict[str, Any]:
    """All TVM models' metrics averaged over their training seeds (each metric's standard
    deviation beside it, as on the Halide side), the noise floor per split, and the
    XGBModel / best-GNN error ratios with each seed's ratio (run k over run k)."""
    from models.evaluate import seed_runs

    models_dir = Path(models_dir)
    runs, training = {}, {}
    for name in TVM_MODELS:
        if (models_dir / name / "metrics.json").exists():
            runs[name] = seed_runs(models_dir / name, n_seeds=n_seeds)
            meta = json.loads((models_dir / name / "meta.json").read_text())
            training[name] = {k: meta.get(k) for k in TRAINING_KEYS}
    results = {name: metrics_mod.average_over_seeds(r) for name, r in runs.items()}
    noise = noise_by_split(dataset_dir, split_path, None)
    spread = metrics_mod.seed_ratio_spread(runs, metrics_mod.headline_ratios(results))
    # The Halide summary's ratios, under the names the TVM report reads.
    ratios = {}
    for s, r in spread.items():
        if "tvm_xgb" not in r:
            continue
        x = r["tvm_xgb"]
        ratios[s] = {
            "best_gnn": r["best_gnn"],
            "selected_on": r["selected_on"],
            "mape_ratio_xgbmodel_vs_best_gnn": x["mape_ratio_vs_best_gnn"],
            "rmse_log_ratio_xgbmodel_vs_best_gnn": x["rmse_log_ratio_vs_best_gnn"],
            "mape_calibrated_ratio_xgbmodel_vs_best_gnn": x["mape_calibrated_ratio_vs_best_gnn"],
            "mape_ratio_seeds": x.get("mape_ratio_vs_best_gnn_seeds"),
            "mape_ratio_seed_median": x.get("mape_ratio_vs_best_gnn_seed_median"),
            "mape_ratio_seed_range": x.get("mape_ratio_vs_best_gnn_seed_range"),
            "xgbmodel_seed_mape_spread": x.get("baseline_seed_mape_spread"),
        }
    summary = {
        "dataset": str(dataset_dir),
        "compiler": "tvm",
        "models": results,
        "seeds": {name: len(r) for name, r in runs.items()},
        "training": training,
        "noise_floor": noise,
        "ratios": ratios,
        "paper_ratio_tvm": 12.0,
        "notes": {
            "tvm_xgb": "TVM's own XGBModel (MetaSchedule) on PerStoreFeature rows; its score is scale-free "
            "(min_cost/cost), so MAPE and rmse_log use one global score->seconds constant fitted on training "
            "programs; compare it on the rank metrics (kendall_tau, pairwise_acc, top1, top5) and on calibrated "
            "MAPE (each program's predictions rescaled by one measured schedule).",
            "gnn": "perfgraph GNNs with the first layer re-sized to TVM node features (models.tvm.inputs)",
            "seeds": "each model's metrics are the mean over its training runs (seeds models.seed, +1, ...), "
            "<metric>_std their standard deviation. TVM's XGBConfig has no row or column subsampling, so "
            "XGBModel's seed runs are identical (std 0) and a ratio's spread over seeds is the GNN's.",
        },
    }
    if out is not None:
        schema.write_json(summary, out)
        Path(out).with_suffix(".md").write_text(summary_markdown(summary))
    return summary


def _cell(row: dict, col: str) -> str:
    """A metric as its mean over seed runs, with ± their standard deviation where there are several."""
    v = row.get(col)
    if v is None:
        return ""
    if not isinstance(v, float):
        return str(v)
    std = row.get(f"{col}_std")
    return f"{v:.3f}" + (f" ± {std:.3f}" if std is not None else "")


def summary_markdown(summary: dict) -> str:
    """summary.json as Markdown tables: per split, each model's metrics (mean ± std over seeds)."""
    cols = list(metrics_mod.METRICS) + ["n_programs", "n_schedules"]
    lines = []
    for s in EVAL_SPLITS:
        lines += [f"### TVM, split `{s}`", "", "| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        rows = [(m, r.get(s)) for m, r in summary["models"].items()] + [("timing noise (split-half)", summary["noise_floor"].get(s))]
        for m, r in rows:
            if not r:
                continue
            cells = [_cell(r, c) for c in cols]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
        nf = summary["noise_floor"].get(s) or {}
        for kind in ("split_half", "drift"):
            a = nf.get(kind) or {}
            if a.get("mape") is not None:
                lines.append(f"Timing noise, {kind.replace('_', '-')}: MAPE {a['mape']:.1f}%, median ratio "
                             f"{a['median_ratio']:.3f} over {a['n_schedules']} schedules.  ")  # fmt: skip
        lines.append("")
    return "\n".join(lines)
