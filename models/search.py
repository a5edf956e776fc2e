"""Hyperparameter search with the same budget for every model, chosen on validation.

A comparison is only as fair as its weakest side's tuning, so every model, GNN or
baseline, gets the same number of trials (``models.search.trials``): trial 0 is the
model's default configuration (:data:`models.registry.DEFAULT_CONFIGS`), the others
are drawn without replacement from its space in :data:`SEARCH_SPACES` by a seeded
generator. Each trial trains once (seed ``models.seed``) on the training programs
with the default epoch budget, and the trial with the best validation score wins.

The validation score is the same for every model: the calibrated MAPE of
:func:`models.metrics.compute_metrics` (per program, predictions rescaled by one
measured schedule), so a scale-free model (TVM's XGBoost) is not judged on a scale it
cannot know, and the others are judged on what a search that has timed one
candidate would see. Raw MAPE stays the headline metric.

The spaces are small on purpose: the settings each model's authors vary or
that decide its capacity and its optimiser, a few values each.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

from featurize import schema
from featurize.schema import UserError
from models.registry import default_config

#: Values tried per model; every key is one of the model's config keys.
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "gcn": {"hidden_channels": [32, 64, 128], "num_layers": [2, 3, 4], "lr": [3e-4, 1e-3, 3e-3],
            "loss": ["mse", "l1"], "rank_weight": [0.0, 0.5]},
    "gine": {"hidden_channels": [32, 64, 128], "num_layers": [2, 3, 4], "lr": [3e-4, 1e-3, 3e-3],
             "loss": ["mse", "l1"], "rank_weight": [0.0, 0.5]},
    "gatv2": {"hidden_channels": [32, 64, 128], "num_layers": [2, 3, 4], "lr": [3e-4, 1e-3, 3e-3],
              "heads": [2, 4], "rank_weight": [0.0, 0.5]},
    # The network's shape is fixed by Halide; its training scripts (apps/autoscheduler/utils.sh) pass
    # train_cost_model a learning rate of 1e-4, so that is in the space beside ours.
    "adams2019": {"lr": [1e-4, 3e-4, 1e-3, 3e-3], "weight_decay": [0.0, 1e-5, 1e-4], "init": ["random", "halide"]},
    "tvm_xgb": {"max_depth": [6, 8, 10, 12], "eta": [0.05, 0.1, 0.2, 0.3], "min_child_weight": [0, 1, 5],
                "gamma": [0.0, 0.001, 0.01]},
    "pooled_xgb": {"max_depth": [4, 6, 8, 10], "eta": [0.02, 0.05, 0.1], "subsample": [0.6, 0.8, 1.0],
                   "colsample_bytree": [0.3, 0.5, 0.8]},
}  # fmt: skip

#: The validation metric every model is chosen on (lower is better).
SELECTION_METRIC = "mape_calibrated"


def trial_configs(model: str, trials: int, seed: int = 0) -> list[dict[str, Any]]:
    """``trials`` override dicts: ``{}`` (the default config) first, then distinct draws."""
    space = SEARCH_SPACES[model]
    keys = sorted(space)
    default = default_config(model)
    grid = [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]
    grid = [g for g in grid if any(g[k] != default[k] for k in keys)]
    random.Random(f"{model}:{seed}").shuffle(grid)
    return [{}] + grid[: max(0, trials - 1)]


def search(
    model: str,
    dataset_dir: str | os.PathLike,
    split_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    trials: int,
    seed: int = 0,
    epochs: int | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Train ``trials`` configurations of ``model`` and write the choice to ``out`` (JSON).

    Returns:
        dict: ``{"model", "metric", "trials": [{config, val, train_wall_s}], "chosen"}``;
        ``chosen`` is the override dict of the best trial (``{}``: the defaults won).
    """
    from models.train import train

    results = []
    for overrides in trial_configs(model, trials, seed):
        with tempfile.TemporaryDirectory(prefix=f"search_{model}_") as tmp:
            meta = train(model, dataset_dir, split_path, tmp, epochs=epochs, threads=threads, seed=seed,
                         device="cpu", config=overrides, resume=False, progress=False)  # fmt: skip
        val = (meta.get("metrics") or {}).get("val") or {}
        results.append({"config": overrides, "val": val, "train_wall_s": meta.get("train_wall_s")})
    scored = [r for r in results if r["val"].get(SELECTION_METRIC) is not None]
    if not scored:
        raise UserError(f"{model}: no trial has a validation {SELECTION_METRIC} (is the val split empty?)")
    best = min(scored, key=lambda r: r["val"][SELECTION_METRIC])
    summary = {
        "model": model,
        "metric": SELECTION_METRIC,
        "trials": results,
        "chosen": best["config"],
        "dataset": str(dataset_dir),
        "split": str(split_path),
        "seed": seed,
    }
    schema.write_json(summary, out)
    return summary


def chosen_configs(paths: list[str | os.PathLike]) -> dict[str, dict[str, Any]]:
    """``{model: chosen overrides}`` from search result files (for the config's models.hparams)."""
    out = {}
    for p in paths:
        data = json.loads(Path(p).read_text())
        out[data["model"]] = data["chosen"]
    return out
