"""Evaluate trained models on the held-out splits and gather a summary.

:func:`evaluate` writes, in the model's directory:

* ``predictions.parquet`` (table ``predictions``): one row per schedule of the test
  and zoo programs, run times in seconds; ``model`` is the directory's name (so a
  variant such as ``results/models/adams2019_halide`` keeps its own label);
* ``metrics.json``: ``{split: {metric: value, n_programs, n_programs_ranked,
  n_schedules}}`` (see :mod:`models.metrics`), plus the prediction wall time, for
  the held-out splits and for ``val`` (used only to choose the best GNN);

and adds the held-out metrics to ``meta.json``.

:func:`summarize` gathers every model's metrics, the timing noise (split-half and
drift, per split, on the schedules the models are scored on) and the headline ratios: each baseline's MAPE
(and log RMSE) divided by the best GNN's, as the paper reports its 7.75x (Halide) and
12x (TVM). The best GNN is the one with the lowest *validation* MAPE, chosen once and
used on every held-out split, so the ratios do not select on the data they report.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl
import torch

from featurize import schema
from featurize.schema import UserError
from models import machine as machine_mod
from models import metrics as metrics_mod
from models.constants import EVAL_SPLITS, MODEL_NAMES, SELECTION_SPLIT
from models.data import dataset_hash, split_hash
from models.halide.inputs import load_dataset
from models.registry import TrainedModel
from models.train import predictions_frame
from featurize.noise import NOISE_DOCS

log = logging.getLogger(__name__)

#: The paper's reported error ratios (baseline / GNN), for reference beside ours.
PAPER_RATIOS = {"adams2019": 7.75, "tvm_xgb": 12.0}


def run_label(model_dir: Path) -> str:
    """The model a run directory belongs to: ``results/models/gcn`` and its extra seeds
    ``results/models/gcn/seeds/<k>`` are all ``gcn``."""
    return model_dir.parent.parent.name if model_dir.parent.name == "seeds" else model_dir.name


def seed_run_dirs(model_dir: Path, n_seeds: int | None = None) -> list[Path]:
    """A model's run directories: its first run, then each extra seed's in order (with
    ``n_seeds``, only the first ``n_seeds``, so runs left from a config with more seeds
    are not counted)."""
    seeds = model_dir / "seeds"
    extra = sorted((d for d in seeds.iterdir() if d.name.isdigit()), key=lambda d: int(d.name)) if seeds.is_dir() else []
    if n_seeds is not None:
        extra = [d for d in extra if int(d.name) < n_seeds]
    return [model_dir, *extra]


def seed_runs(model_dir: Path, sub: str = "", n_seeds: int | None = None) -> list[dict[str, Any]]:
    """``metrics.json`` of each run of :func:`seed_run_dirs` (with ``sub``, the
    ``<run>/<sub>/metrics.json`` of scores on another dataset)."""
    paths = [run / sub / "metrics.json" for run in seed_run_dirs(model_dir, n_seeds)]
    return [json.loads(p.read_text()) for p in paths if p.exists()]


def check_trained_on(trained: TrainedModel, model_dir: Path, dataset_dir, split_path) -> None:
    """Refuse to score a model on a dataset or split other than its training one (a
    different split could put training programs in the test set)."""
    dhash, shash = dataset_hash(dataset_dir), split_hash(split_path)
    fp = trained.fingerprint
    if fp["dataset_hash"] != dhash or fp["split_hash"] != shash:
        raise UserError(
            f"{model_dir} was trained on dataset {fp['dataset_hash']} / split {fp['split_hash']}, "
            f"not {dhash} / {shash}; retrain, or pass strict=False (--no-strict) knowingly"
        )


def score_splits(
    label: str, programs: dict[str, list], predict: Callable[[list], list[np.ndarray]], *, timed: bool = True
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Predict each split's programs and score them: the one evaluation path of both backends.

    Args:
        label (str): The ``model`` column of the predictions (the run directory's model).
        programs (dict): ``{split: programs}`` (:class:`models.data.ProgramData` or a
            backend's own program type: anything with ``program_id``, ``schedule_ids`` and
            ``runtime``, as :func:`models.train.predictions_frame` reads).
        predict (callable): The model's ``programs -> run times in seconds`` per program.
        timed (bool, optional): Record ``predict_wall_s`` per split. (default: :obj:`True`)

    Returns:
        tuple: The ``predictions`` table of every split, and ``{split: metrics or None}``
        (:func:`models.metrics.compute_metrics`; ``None`` where a split has no labeled schedule).
    """
    frames, out = [], {}
    for name, progs in programs.items():
        t0 = time.perf_counter()
        preds = predict(progs)
        wall = time.perf_counter() - t0
        frame = predictions_frame(label, progs, preds)
        frames.append(frame)
        out[name] = metrics_mod.compute_metrics(frame) if frame.height else None
        if out[name] is not None and timed:
            out[name]["predict_wall_s"] = wall
    table = pl.concat(frames) if frames else predictions_frame(label, [], [])
    return table, out


def write_scores(target: Path, table: pl.DataFrame, metrics: dict[str, Any]) -> None:
    """``predictions.parquet`` and ``metrics.json`` of one model's scores, in ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    schema.write_table("predictions", table, target / "predictions.parquet")
    schema.write_json(metrics, target / "metrics.json")


def evaluate(
    dataset_dir: str | os.PathLike,
    split_path: str | os.PathLike,
    model_dir: str | os.PathLike,
    *,
    splits: tuple[str, ...] = EVAL_SPLITS,
    device: str = "cpu",
    threads: int = 1,
    strict: bool = True,
    out_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Predict every schedule of the held-out programs and compute the metrics.

    Args:
        dataset_dir (str): The dataset the model was trained on.
        split_path (str): The ``split`` table it was trained with.
        model_dir (str): The model's directory (with ``checkpoint.pt``).
        splits (tuple[str, ...], optional): Held-out splits. (default: ``("test", "zoo")``)
        device (str, optional): Where torch models run. (default: :obj:`"cpu"`)
        threads (int, optional): CPU threads. (default: :obj:`1`)
        strict (bool, optional): Refuse a dataset or split other than the training
            one (a different split could put training programs in the test set).
            (default: :obj:`True`)
        out_dir (str, optional): Score on a dataset the model was not trained on (such
            as this machine's fresh dataset beside the reference one it trained on):
            labels are that dataset's own machine's, no validation split is scored, and
            ``metrics.json`` and ``predictions.parquet`` go to ``out_dir``.
            (default: :obj:`None`: the training dataset, into ``model_dir``)

    Returns:
        dict: The content of ``metrics.json``.
    """
    torch.set_num_threads(max(1, threads))
    model_dir = Path(model_dir)
    trained = TrainedModel(model_dir, device=device, threads=threads)
    if out_dir is not None and strict:
        raise UserError("scoring on another dataset (out_dir) needs strict=False (--no-strict)")
    if strict:
        check_trained_on(trained, model_dir, dataset_dir, split_path)
    split = schema.read_table(split_path, "split")
    elsewhere = out_dir is not None
    loaded = tuple(splits) + ((SELECTION_SPLIT,) if SELECTION_SPLIT not in splits and not elsewhere else ())
    ds = load_dataset(dataset_dir, split, stats=trained.stats, splits=loaded,
                      machine_id=None if elsewhere else trained.machine_id,
                      vector_counts=trained.vector_counts,
                      all_machines=trained.machine_aware and not elsewhere)  # fmt: skip

    label = run_label(model_dir)
    # A model of several machines is scored on each machine's labels apart (per_machine); its
    # split figures are those of its first machine, the one the single-machine baselines train
    # on, so that every model of a split is scored on the same programs and labels.
    primary = {name: [p for p in ds.split(name) if p.machine_id == ds.machine_id] for name in splits}
    table, out = score_splits(label, primary, trained.predict_seconds)
    for name in splits:
        if out[name] is None:
            log.warning("%s: no labeled schedules in split %r", trained.name, name)
    if len(ds.machine_ids) > 1:
        out["per_machine"] = {ds.machine_id: {name: out[name] for name in splits}}
        for m in ds.machine_ids[1:]:
            more, out["per_machine"][m] = score_splits(
                label, {name: [p for p in ds.split(name) if p.machine_id == m] for name in splits}, trained.predict_seconds
            )
            table = pl.concat([table, more])
        out["machines"] = {row["machine_id"]: machine_mod.describe(row) for row in ds.machine_rows}
    if SELECTION_SPLIT not in splits and not elsewhere:
        # Metrics only (no prediction rows): the summary picks the best GNN on these.
        val_progs = [p for p in ds.split(SELECTION_SPLIT) if p.machine_id == ds.machine_id]
        _, val = score_splits(label, {SELECTION_SPLIT: val_progs}, trained.predict_seconds, timed=False)
        out.update(val)
    write_scores(Path(out_dir) if elsewhere else model_dir, table, out)

    meta_path = model_dir / "meta.json"
    if meta_path.exists() and not elsewhere:
        meta = json.loads(meta_path.read_text())
        meta.setdefault("metrics", {}).update(out)
        schema.write_json(meta, meta_path)
    return out


def summarize(
    models_dir: str | os.PathLike,
    dataset_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    split_path: str | os.PathLike | None = None,
    fresh_dataset: str | os.PathLike | None = None,
    fresh_dir: str | None = None,
    models: list[str] | None = None,
    n_seeds: int | None = None,
    selection_dataset: str | os.PathLike | None = None,
    selection_dir: str = "",
    adapted_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Gather all evaluated models under ``models_dir`` into one summary.

    Args:
        models_dir (str): Parent of the model directories (``results/models``).
        dataset_dir (str): The dataset, for the noise floor.
        out (str, optional): Where to write the summary JSON.
        split_path (str, optional): The split table, to give the noise floor per split;
            defaults to the one recorded in the models' ``meta.json``.
        fresh_dataset (str, optional): A dataset the models were also scored on, none of
            whose programs they trained on (this machine's fresh dataset, when the models
            trained on a reference dataset); with ``fresh_dir``, the name of those scores'
            directory in each run. Adds ``fresh``: that dataset, its noise figures and each
            model's metrics there, averaged over seeds.
        models (list[str], optional): The model directories to gather (the workflow's
            ``models.names``). (default: every evaluated directory under ``models_dir``)
        n_seeds (int, optional): Runs per model to average (``models.seeds``).
            (default: every run found)
        selection_dataset (str, optional): A dataset whose zoo and user programs had every
            candidate timed, scored by the runs' ``<run>/<selection_dir>/predictions.parquet``:
            adds ``selection``, each model's picks against Halide's default pick there
            (:func:`models.selection.selection`).
        adapted_dir (str, optional): Models adapted to this machine (``perfgraph adapt``'s
            output), scored on ``fresh_dataset`` like the others: they join ``fresh`` and
            ``selection`` as ``<model>+adapted``, and ``adapt`` records what the adaptation timed.

    Returns:
        dict: ``models`` ({name: {split: metrics}}, averaged over the model's training
        seeds, each metric's standard deviation beside it), ``seeds`` (runs per model),
        ``training`` (of the first run: wall time, epochs, size), ``noise_floor``
        ({split: metrics}), ``ratios`` (with each seed's ratio) and ``paper_ratios``.
    """
    models_dir = Path(models_dir)
    runs, training = gather_runs(models_dir, models, n_seeds)
    results = {name: metrics_mod.average_over_seeds(r) for name, r in runs.items()}
    machines = {t.pop("machine_id") for t in training.values()}
    splits_seen = {s for s in (t.pop("split") for t in training.values()) if s}
    if split_path is None and len(splits_seen) == 1:
        split_path = next(iter(splits_seen))
    hashes = {t.get("dataset_hash") for t in training.values()}
    current = dataset_hash(dataset_dir)
    if hashes and hashes != {current}:
        log.warning("models were trained on datasets %s; %s is %s", sorted(map(str, hashes)), dataset_dir, current)
    machine = next(iter(machines)) if len(machines) == 1 else None
    noise = noise_by_split(dataset_dir, split_path, machine)

    ratios = metrics_mod.seed_ratio_spread(runs, metrics_mod.headline_ratios(results))

    summary = {
        "dataset": str(dataset_dir),
        "dataset_hash": current,
        "machine_id": machine,
        "metric_docs": metrics_mod.METRIC_DOCS,
        "models": results,
        "seeds": {name: len(r) for name, r in runs.items()},
        "training": training,
        "noise_floor": noise,
        "ratios": ratios,
        "paper_ratios": PAPER_RATIOS,
        "notes": {**SUMMARY_NOTES, **{f"noise_{k}": v for k, v in NOISE_DOCS.items()}},
    }
    adapted = _adapted_names(adapted_dir)
    if fresh_dataset is not None and fresh_dir:
        summary["fresh"] = fresh_scores(models_dir, list(runs), fresh_dataset, fresh_dir, n_seeds)
        for name in adapted:
            scores = fresh_scores(Path(adapted_dir), [name], fresh_dataset, fresh_dir, n_seeds)["models"]
            if name in scores:
                summary["fresh"]["models"][f"{name}+adapted"] = scores[name]
    if selection_dataset is not None:
        from models.selection import selection

        summary["selection"] = selection(models_dir, list(runs), selection_dataset, selection_dir, n_seeds)
        for name in adapted:
            picks = selection(adapted_dir, [name], selection_dataset, selection_dir, n_seeds)["models"]
            if name in picks:
                summary["selection"]["models"][f"{name}+adapted"] = picks[name]
    if adapted:
        record = json.loads((Path(adapted_dir) / "adapt.json").read_text())
        summary["adapt"] = {k: record.get(k) for k in ("budget_min", "machine", "settings", "models", "finetune_wall_s")}
        timed = [p for p in record["timing"]["programs"] if "error" not in p]
        summary["adapt"]["timing"] = {"wall_s": record["timing"]["wall_s"], "programs": len(timed),
                                      "source": record["timing"].get("source"),
                                      "schedules_timed": sum(p.get("timed_ok", 0) for p in timed),
                                      "programs_skipped": len(record["timing"]["programs"]) - len(timed)}  # fmt: skip
    if out is not None:
        schema.write_json(summary, out)
    return summary


def _adapted_names(adapted_dir) -> list[str]:
    """The models ``perfgraph adapt`` wrote under ``adapted_dir`` (none if it is not given)."""
    if adapted_dir is None or not (Path(adapted_dir) / "adapt.json").exists():
        return []
    return sorted(json.loads((Path(adapted_dir) / "adapt.json").read_text())["models"])


#: Notes the summary carries on how to read some of its figures.
SUMMARY_NOTES = {
    "tvm_xgb": "scores are scale-free (min_cost/cost); MAPE and rmse_log use one global "
    "score->seconds constant fitted on training programs, so they mostly measure the "
    "per-program scale the model cannot know. Its calibrated MAPE and rank metrics are the fair "
    "comparison; the paper's 12x is a ratio of raw MAPE.",
    "noise_floor": "metrics of the split-half labels (odd timing rounds vs even rounds) on the "
    "schedules models are scored on; its split_half and drift entries are the two noise figures",
}


#: What ``summary.json`` keeps of each model's ``meta.json`` (of its first run).
TRAINING_KEYS = ("model", "train_wall_s", "epochs_run", "best_epoch", "n_params", "device", "threads", "dataset_hash")


def gather_runs(
    models_dir: Path, models: list[str] | None, n_seeds: int | None
) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """(each evaluated model's runs' metrics, its first run's training facts with
    ``machine_id`` and ``split``): the six models first, then any variant directory (e.g.
    adams2019 with init="halide"), restricted to ``models`` when given."""
    names = [n for n in MODEL_NAMES if (models_dir / n).is_dir()]
    names += sorted(d.name for d in models_dir.iterdir() if d.is_dir() and d.name not in MODEL_NAMES)
    if models is not None:
        names = [n for n in names if n in models]
    runs, training = {}, {}
    for name in names:
        if not (models_dir / name / "metrics.json").exists():
            continue
        runs[name] = seed_runs(models_dir / name, n_seeds=n_seeds)
        meta_path = models_dir / name / "meta.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            training[name] = {k: meta.get(k) for k in (*TRAINING_KEYS, "machine_id", "split")}
    return runs, training


def noise_by_split(dataset_dir, split_path, machine: str | None) -> dict[str, dict]:
    """The noise floor over all of the dataset's schedules and per split of ``split_path``."""
    tables = schema.read_dataset(dataset_dir, metrics_mod.NOISE_TABLES)
    noise = {"all": metrics_mod.noise_floor(tables, machine_id=machine)}
    if split_path is not None and Path(split_path).exists():
        split = schema.read_table(split_path, "split")
        for name in sorted(set(split["split"].to_list())):
            pids = split.filter(pl.col("split") == name)["program_id"].to_list()
            noise[name] = metrics_mod.noise_floor(tables, programs=pids, machine_id=machine)
    return noise


def fresh_scores(models_dir: Path, names: list[str], dataset_dir, sub: str, n_seeds: int | None = None) -> dict[str, Any]:
    """Each model's scores on a dataset it did not train on, and that dataset's noise."""
    from featurize.summary import noise, sampler_spread

    tables = schema.read_dataset(dataset_dir, (*metrics_mod.NOISE_TABLES, "programs"))
    models = {}
    for name in names:
        runs = seed_runs(models_dir / name, sub, n_seeds)
        if runs:
            models[name] = metrics_mod.average_over_seeds(runs)
    return {
        "dataset": str(dataset_dir),
        "dataset_hash": dataset_hash(dataset_dir),
        "programs": tables["programs"].height,
        "noise": noise(tables),
        "spread": sampler_spread(tables["schedules"], tables["measurements"]),
        "models": models,
    }
