"""Train one model on the train split, early-stopping on the validation split.

Writes to ``out_dir`` (``results/models/<name>/``):

* ``checkpoint.pt``: state dicts (last and best), optimizer state, feature
  statistics, config, history and a fingerprint of (model, config, dataset content,
  split, seed, machine). Loaded with ``torch.load(..., weights_only=True)``.
  Written after every epoch, so an interrupted run resumes where it stopped; a
  finished run is not retrained unless ``--epochs`` grows (or ``--fresh``).
* ``history.json``: per epoch (boosting round for XGBoost) train and validation loss.
* ``meta.json``: dataset path and content hash, split hash, config, seed, threads,
  device, epochs run, best epoch, wall time, parameter count, validation metrics.

Batches are schedules of one program (up to ``batch_size``), as Adams2019 trains and
as the pairwise ranking loss needs. Runs on CUDA when available, CPU otherwise.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import polars as pl
import torch
import torch_geometric
import xgboost as xgb
from tqdm import tqdm

from featurize import schema
from featurize.schema import UserError
from models import metrics as metrics_mod
from models.constants import GNN_MODELS, TORCH_MODELS, XGB_MODELS
from models.data import ProgramData, dataset_hash, split_hash
from models.halide.inputs import GraphDataset, load_dataset, read_model_tables
from models.registry import (
    CHECKPOINT,
    CHECKPOINT_FORMAT,
    TrainedModel,
    booster_to_tensor,
    build_model,
    default_config,
    load_checkpoint,
    save_checkpoint,
)

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_machine_features(setting, measurements: pl.DataFrame) -> bool:
    """``machine_features``: ``"auto"`` reads them when the labels come from several machines."""
    if setting == "auto":
        ok = measurements.filter((pl.col("timing_pass") == 1) & (pl.col("status") == "ok"))
        return ok["machine_id"].n_unique() > 1
    if not isinstance(setting, bool):
        raise UserError(f"machine_features {setting!r}: expected true, false or auto")
    return setting


def fingerprint(name: str, config: dict, dhash: str, shash: str, seed: int, machine_id: str) -> dict[str, str]:
    """What a checkpoint must match to be resumed (the epoch budget may grow)."""
    cfg = {k: v for k, v in config.items() if k != "epochs"}
    return {
        "model": name,
        "config": json.dumps(cfg, sort_keys=True),
        "dataset_hash": dhash,
        "split_hash": shash,
        "seed": str(seed),
        "machine_id": machine_id,
    }


def schedule_batches(progs: list[ProgramData], batch_size: int, gen: torch.Generator | None) -> list[ProgramData]:
    """Chunks of at most ``batch_size`` schedules of one program; shuffled when ``gen`` is given."""
    out = []
    order = torch.randperm(len(progs), generator=gen).tolist() if gen is not None else range(len(progs))
    for i in order:
        p = progs[i]
        idx = torch.randperm(p.num_schedules, generator=gen) if gen is not None else torch.arange(p.num_schedules)
        for a in range(0, p.num_schedules, batch_size):
            out.append(p.select(idx[a : a + batch_size]))
    return out


def group_steps(batches: list[ProgramData], per_step: int) -> list[list[ProgramData]]:
    return [batches[i : i + per_step] for i in range(0, len(batches), per_step)]


def programs_per_step(config: dict, n_train: int) -> int:
    """``"auto"``: enough programs per step for about 32 steps per epoch (1 on small data)."""
    v = config.get("programs_per_step", 1)
    return max(1, round(n_train / 32)) if v == "auto" else max(1, int(v))


def summed_loss(name: str, loss: torch.Tensor, step: list[ProgramData]) -> float:
    # GNN losses are means over a step's schedules, Adams2019's a sum (as in Halide):
    # return the sum over schedules, to report both per schedule.
    n = sum(b.num_schedules for b in step)
    return loss.detach().item() * (1 if name == "adams2019" else n)


@torch.no_grad()
def eval_loss(model, name: str, batches: list[ProgramData], device: torch.device) -> float:
    model.eval()
    total, count = 0.0, 0
    for b in batches:
        b = b.to(device)
        total += summed_loss(name, model.training_loss([b]), [b])
        count += b.num_schedules
    return total / max(count, 1)


def predictions_frame(name: str, progs: Sequence, preds: Sequence[np.ndarray]) -> pl.DataFrame:
    """The ``predictions`` table for ``progs`` (run times in seconds).

    ``progs`` are :class:`ProgramData` (Halide) or ``TVMProgram``: anything with
    ``program_id``, ``split``, ``schedule_ids``, ``num_schedules`` and ``runtime``.
    """
    rows = {
        "model": [],
        "program_id": [],
        "machine_id": [],
        "schedule_id": [],
        "split": [],
        "y_true": [],
        "y_pred": [],
    }
    for p, y in zip(progs, preds):
        s = p.num_schedules
        rows["model"] += [name] * s
        rows["program_id"] += [p.program_id] * s
        rows["machine_id"] += [getattr(p, "machine_id", None)] * s
        rows["schedule_id"] += list(p.schedule_ids)
        rows["split"] += [p.split] * s
        rows["y_true"] += np.asarray(p.runtime, dtype=np.float64).tolist()
        rows["y_pred"] += np.asarray(y, dtype=np.float64).tolist()
    return pl.DataFrame(rows, schema=schema.polars_schema("predictions"))


def _resume(name: str, out_dir: Path, fp: dict, model, opt, state: dict, best_state: dict) -> dict:
    """Continue from ``out_dir``'s checkpoint if it was made by the same training (its
    fingerprint): restore the model, optimizer, RNG and ``state`` in place; the best state."""
    if not (out_dir / CHECKPOINT).exists():
        return best_state
    ckpt = load_checkpoint(out_dir, map_location="cpu")
    if ckpt.get("fingerprint") != fp:
        diff = [k for k in fp if ckpt.get("fingerprint", {}).get(k) != fp[k]]
        log.warning("checkpoint in %s does not match (%s differ); training from scratch", out_dir, diff)
        return best_state
    model.load_state_dict(ckpt["model_state"])
    opt.load_state_dict(ckpt["optimizer_state"])
    torch.set_rng_state(ckpt["rng_state"])
    state.update({k: ckpt[k] for k in state})
    log.info("resuming %s after epoch %d", name, state["epoch"])
    return ckpt["best_state"]


def train_epoch(model, name: str, opt, steps: list[list[ProgramData]], grad_clip: float, device) -> float:
    """One pass over the training steps; the mean training loss per schedule."""
    model.train()
    total, count = 0.0, 0
    for step in steps:
        step = [b.to(device) for b in step]
        loss = model.training_loss(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        total += summed_loss(name, loss, step)
        count += sum(b.num_schedules for b in step)
    return total / max(count, 1)


def adam(name: str, model, config: dict) -> torch.optim.Adam:
    """The optimizer of every torch model: Adam at the config's ``lr`` and ``weight_decay``,
    with Halide's ``eps`` of 1e-5 for Adams2019 (its retrain tool's) and torch's 1e-8 else."""
    return torch.optim.Adam(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"],
                            eps=1e-5 if name == "adams2019" else 1e-8)  # fmt: skip


def fresh_train_state() -> dict[str, Any]:
    """The bookkeeping of a training run before its first epoch (what :func:`end_epoch` updates)."""
    return {"epoch": -1, "best_val": float("inf"), "best_epoch": -1, "bad_epochs": 0, "history": [], "wall_s": 0.0,
            "stopped_early": False}  # fmt: skip


def end_epoch(name: str, state: dict, epoch: int, train_loss: float, val_loss: float, patience: int, model,
               best_state: dict, wall) -> dict:
    """Record an epoch in ``state`` (history, early stopping on the validation loss, a
    non-finite training loss stops too); the best state so far. ``wall()``: seconds so far."""
    state["history"].append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "wall_s": wall()})
    if not np.isfinite(train_loss):
        log.warning("%s: non-finite training loss at epoch %d; stopping", name, epoch)
        state["stopped_early"] = True
    if val_loss < state["best_val"]:
        state.update(best_val=val_loss, best_epoch=epoch, bad_epochs=0)
        best_state = copy.deepcopy(model.state_dict())
    else:
        state["bad_epochs"] += 1
        if state["bad_epochs"] >= patience:
            state["stopped_early"] = True
    state["epoch"] = epoch
    state["wall_s"] = wall()
    return best_state


def run_epochs(
    model, name: str, opt, train: list[ProgramData], val: list[ProgramData], config: dict, seed: int, device,
    state: dict, best_state: dict, *, after_epoch=None, progress: bool = False,
) -> dict:
    """The training loop of every torch model on either backend: from epoch ``state["epoch"] + 1``
    to the config's budget, Adam steps on batches of one program's schedules (a seeded order
    per epoch), the validation loss after each epoch, early stopping on it (``patience``).

    ``state`` (:func:`fresh_train_state`, or a resumed one) is updated in place; ``after_epoch(epoch,
    best_state)`` runs after each epoch (the Halide side checkpoints there). Returns the best
    state dict.
    """
    epochs = int(config["epochs"])
    per_step = programs_per_step(config, len(train))
    if hasattr(model, "prepare_programs"):  # what a model derives once from each program's fixed inputs
        model.prepare_programs(train + val)  # on the programs' device; steps move them with the batch
    val_batches = schedule_batches(val or train, config["batch_size"], None)
    t0, wall0 = time.perf_counter(), state["wall_s"]
    bar = tqdm(range(state["epoch"] + 1, epochs), desc=name, disable=not (progress and sys.stderr.isatty()), leave=False)
    for epoch in bar if not state["stopped_early"] else []:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        train_loss = train_epoch(model, name, opt, group_steps(schedule_batches(train, config["batch_size"], gen), per_step),
                                  config["grad_clip"], device)  # fmt: skip
        val_loss = eval_loss(model, name, val_batches, device)
        best_state = end_epoch(name, state, epoch, train_loss, val_loss, config["patience"], model, best_state,
                                lambda: wall0 + time.perf_counter() - t0)  # fmt: skip
        bar.set_postfix(train=f"{train_loss:.4g}", val=f"{val_loss:.4g}")
        if after_epoch is not None:
            after_epoch(epoch, best_state)
        if state["stopped_early"]:
            break
    return best_state


def _train_torch(
    name: str,
    config: dict,
    ds: GraphDataset,
    out_dir: Path,
    fp: dict,
    seed: int,
    device: torch.device,
    resume: bool,
    progress: bool,
) -> dict[str, Any]:
    train, val = ds.split("train"), ds.split("val")
    if not val:
        log.warning("no validation programs: early stopping on the training loss")
    model = build_model(name, config, num_cores=ds.num_cores).to(device)
    if name in GNN_MODELS:
        model.y_shift.fill_(float(torch.cat([p.y for p in train]).mean()))
    opt = adam(name, model, config)
    state = fresh_train_state()
    best_state = copy.deepcopy(model.state_dict())
    if resume:
        best_state = _resume(name, out_dir, fp, model, opt, state, best_state)

    def checkpoint(epoch: int, best: dict) -> None:
        done = state["stopped_early"] or epoch + 1 >= int(config["epochs"])
        save_checkpoint(_torch_ckpt(name, config, ds, fp, model, opt, best, state, done), out_dir)

    first = state["epoch"] + 1
    best_state = run_epochs(model, name, opt, train, val, config, seed, device, state, best_state,
                            after_epoch=checkpoint, progress=progress)  # fmt: skip
    if state["epoch"] + 1 == first:
        # Nothing left to train; make sure the stored checkpoint is marked done.
        save_checkpoint(_torch_ckpt(name, config, ds, fp, model, opt, best_state, state, True), out_dir)
    model.load_state_dict(best_state)
    return {
        "model_obj": model,
        "history": state["history"],
        "epochs_run": state["epoch"] + 1,
        "best_epoch": state["best_epoch"],
        "best_val_loss": state["best_val"],
        "stopped_early": state["stopped_early"],
        "train_wall_s": state["wall_s"],
        "n_params": sum(p.numel() for p in model.parameters()),
    }


def _ckpt_header(name: str, config: dict, ds: GraphDataset, fp: dict) -> dict[str, Any]:
    """What every checkpoint says of itself: format, model, config, fingerprint and the data
    facts inference needs (feature statistics, the labels' machine and its cores)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model": name,
        "config": config,
        "fingerprint": fp,
        "stats": ds.stats.state_dict(),
        "machine_id": ds.machine_id,
        "machines": [dict(row) for row in ds.machine_rows],
        "num_cores": ds.num_cores,
    }


def _torch_ckpt(name, config, ds, fp, model, opt, best_state, state, done) -> dict[str, Any]:
    return {
        **_ckpt_header(name, config, ds, fp),
        "model_state": model.state_dict(),
        "best_state": best_state,
        "optimizer_state": opt.state_dict(),
        "rng_state": torch.get_rng_state(),
        "done": bool(done),
        **state,
    }


def _train_xgb(
    name: str, config: dict, ds: GraphDataset, out_dir: Path, fp: dict, seed: int, threads: int, resume: bool
) -> dict[str, Any]:
    ckpt_path = out_dir / CHECKPOINT
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(out_dir)
        if ckpt.get("fingerprint") == fp and ckpt.get("done"):
            log.info("%s already trained in %s", name, out_dir)
            return {
                "model_obj": None,
                "history": ckpt["history"],
                "epochs_run": len(ckpt["history"]),
                "best_epoch": int(ckpt["best_iteration"]),
                "best_val_loss": ckpt["best_val"],
                "stopped_early": True,
                "train_wall_s": ckpt["wall_s"],
                "n_params": int(ckpt["n_params"]),
                "resumed": True,
            }
    train, val = ds.split("train"), ds.split("val")
    model = build_model(name, config, threads=threads, seed=seed)
    t0 = time.perf_counter()
    model.fit(train, val)
    wall = time.perf_counter() - t0
    best_it = model.best_iteration
    n_nodes = sum(len(tree.splitlines()) for tree in model.booster.get_dump())
    ckpt = {
        **_ckpt_header(name, config, ds, fp),
        "booster": booster_to_tensor(model.booster),
        "best_iteration": best_it,
        "best_val": float(model.history[best_it]["val_loss"]),
        "history": model.history,
        "wall_s": wall,
        "n_params": n_nodes,  # tree nodes, for the trees
        "done": True,
    }
    if name == "tvm_xgb":
        ckpt["log_scale"] = model.log_scale
        ckpt["score_floor"] = model.score_floor
    save_checkpoint(ckpt, out_dir)
    return {
        "model_obj": model,
        "history": model.history,
        "epochs_run": len(model.history),
        "best_epoch": best_it,
        "best_val_loss": ckpt["best_val"],
        "stopped_early": len(model.history) < model.max_rounds,
        "train_wall_s": wall,
        "n_params": n_nodes,
    }


def training_meta(
    model_name: str, trained: TrainedModel, cfg: dict, ds: GraphDataset, res: dict, val_metrics: dict | None, *,
    seed: int, threads: int, dev, dataset_dir, dhash: str, split_path, shash: str, load_s: float,
) -> dict[str, Any]:
    """What ``meta.json`` records of a training run: data, configuration, result, versions."""
    val = ds.split("val")
    meta = {
        "model": model_name,
        "repr": repr(trained.model),
        "dataset": str(dataset_dir),
        "dataset_hash": dhash,
        "split": str(split_path),
        "split_hash": shash,
        "machine_id": ds.machine_id,
        "machine_ids": list(ds.machine_ids),
        "num_cores": ds.num_cores,
        "config": cfg,
        "seed": seed,
        "threads": threads,
        "device": str(dev),
        "n_train_programs": len(ds.split("train")),
        "n_train_schedules": sum(p.num_schedules for p in ds.split("train")),
        "n_val_programs": len(val),
        "n_val_schedules": sum(p.num_schedules for p in val),
        "epochs_run": res["epochs_run"],
        "best_epoch": res["best_epoch"],
        "best_val_loss": res["best_val_loss"],
        "stopped_early": res["stopped_early"],
        "train_wall_s": res["train_wall_s"],
        "load_wall_s": load_s,
        "n_params": res["n_params"],
        "metrics": {"val": val_metrics},
        "dropped": ds.dropped,
        "versions": {
            "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__,
            "xgboost": xgb.__version__,
            "polars": pl.__version__,
        },
    }
    if model_name == "tvm_xgb":
        meta["calibration"] = (
            "score -> seconds by one global constant fitted on training programs: "
            "t = exp(log_scale) / pos(score); rank metrics are unaffected (see models/scores.py)"
        )
    return meta


def train(
    model_name: str,
    dataset_dir: str | os.PathLike,
    split_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    epochs: int | None = None,
    threads: int = 1,
    seed: int = 0,
    device: str | None = None,
    config: dict[str, Any] | None = None,
    resume: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model_name`` and write its checkpoint, history and metadata to ``out_dir``.

    Args:
        model_name (str): One of :data:`models.constants.MODEL_NAMES`.
        dataset_dir (str): The dataset directory.
        split_path (str): The ``split`` table.
        out_dir (str): The model's directory, e.g. ``results/models/gcn``.
        epochs (int, optional): Override the config's epoch budget of the GNNs. Adams2019
            keeps its own (its authors' setting in :data:`models.registry.DEFAULT_CONFIGS`),
            so a budget sized for the GNNs does not cut its training short.
        threads (int, optional): ``torch.set_num_threads`` and XGBoost threads. (default: :obj:`1`)
        seed (int, optional): Seed of initialization and batch order. (default: :obj:`0`)
        device (str, optional): ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA if present). (default: auto)
        config (dict, optional): Overrides of :data:`models.registry.DEFAULT_CONFIGS`.
        resume (bool, optional): Continue from a matching checkpoint. (default: :obj:`True`)
        progress (bool, optional): Show a progress bar on a terminal. (default: :obj:`True`)

    Returns:
        dict: The metadata written to ``meta.json``.
    """
    overrides = dict(config or {})
    if epochs is not None and model_name in GNN_MODELS:
        overrides["epochs"] = epochs
    cfg = default_config(model_name, **overrides)
    torch.set_num_threads(max(1, threads))
    seed_everything(seed)
    dev = pick_device(device) if model_name in TORCH_MODELS else torch.device("cpu")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    split = schema.read_table(split_path, "split")
    dhash, shash = dataset_hash(dataset_dir), split_hash(split_path)
    t_load = time.perf_counter()
    tables = read_model_tables(dataset_dir)
    if "machine_features" in cfg:
        cfg["machine_features"] = resolve_machine_features(cfg["machine_features"], tables["measurements"])
    ds = load_dataset(tables=tables, split=split, splits=("train", "val"), vector_counts=cfg["vector_counts"],
                      all_machines=cfg.get("machine_features") is True)  # fmt: skip
    cfg["vector_counts"] = ds.vector_counts  # "auto" resolved: what scoring must read too
    load_s = time.perf_counter() - t_load
    if not ds.split("train"):
        raise UserError("the split has no training program with labeled schedules")
    fp = fingerprint(model_name, cfg, dhash, shash, seed, ds.machine_id)

    if model_name in TORCH_MODELS:
        res = _train_torch(model_name, cfg, ds, out_dir, fp, seed, dev, resume, progress)
    elif model_name in XGB_MODELS:
        res = _train_xgb(model_name, cfg, ds, out_dir, fp, seed, threads, resume)
    else:  # pragma: no cover - default_config already refused it
        raise ValueError(model_name)

    # Validation metrics of the best model, through the same path as evaluation.
    trained = TrainedModel(out_dir, device=dev, threads=threads)
    val = ds.split("val")
    val_metrics = (
        metrics_mod.compute_metrics(predictions_frame(model_name, val, trained.predict_seconds(val))) if val else None
    )
    meta = training_meta(model_name, trained, cfg, ds, res, val_metrics, seed=seed, threads=threads, dev=dev,
                         dataset_dir=dataset_dir, dhash=dhash, split_path=split_path, shash=shash, load_s=load_s)  # fmt: skip
    schema.write_json(res["history"], out_dir / "history.json")
    schema.write_json(meta, out_dir / "meta.json")
    return meta
