"""Sizes, defaults and the runs' layout shared by the models, their trainer and their tests.

The Adams2019 sizes mirror ``src/autoschedulers/adams2019/NetworkSize.h`` in
halide/Halide, which the cost model and its trainer share; keep them here, in one
place, for the same reason.
"""

from __future__ import annotations

import os
from pathlib import Path

from featurize import schema

# --- Adams2019 network sizes (NetworkSize.h) -------------------------------------------
#: Channels of the pipeline-feature embedding (the "head1" conv).
HEAD1_CHANNELS = 8
#: The 280 pipeline features the model reads, as a 40 x 7 grid: 40 rows
#: (24 op kinds + 4 x 4 access kinds) by 7 scalar types.
HEAD1_W = 40
HEAD1_H = 7
#: Channels of the schedule-feature embedding (the "head2" conv) and its input width.
HEAD2_CHANNELS = 24
HEAD2_W = 39
#: Number of non-negative coefficients that weight the hand-designed cost terms.
CONV1_CHANNELS = 32
#: Leading pipeline features the Adams2019 model skips: ``types_in_use[7]``, a mask of
#: which scalar types a stage uses (DefaultCostModel::set_pipeline_features).
PIPELINE_SKIP = 7

# --- Feature layout ----------------------------------------------------------------------
NUM_PIPELINE_FEATURES = len(schema.PIPELINE_COLUMNS)  # 287
NUM_SCHEDULE_FEATURES = len(schema.SCHEDULE_COLUMNS)  # 39
#: Numeric edge columns; each goes through log1p into ``edge_attr`` after the kind one-hot.
EDGE_NUMERIC_COLUMNS = (
    "n_loads",
    "n_jacobians",
    "producer_dims",
    "consumer_loop_dims",
    "max_stride",
    "footprint_halo",
)
EDGE_KINDS = schema.EDGE_KINDS
#: Width of ``edge_attr``: one-hot kind, then the log1p numeric columns.
EDGE_DIM = len(EDGE_KINDS) + len(EDGE_NUMERIC_COLUMNS)

assert NUM_PIPELINE_FEATURES == PIPELINE_SKIP + HEAD1_W * HEAD1_H
assert NUM_SCHEDULE_FEATURES == HEAD2_W

# --- Model registry ----------------------------------------------------------------------
GNN_MODELS = ("gcn", "gine", "gatv2")
TORCH_MODELS = GNN_MODELS + ("adams2019",)
XGB_MODELS = ("tvm_xgb", "pooled_xgb")
MODEL_NAMES = TORCH_MODELS + XGB_MODELS
#: Baselines whose error the headline ratios divide by the best GNN's.
BASELINES = ("adams2019", "tvm_xgb")

# --- TVM XGBModel defaults (python/tvm/s_tir/meta_schedule/cost_model/xgb_model.py) ----
TVM_XGB_PARAMS = {
    "max_depth": 10,
    "gamma": 0.001,
    "min_child_weight": 0,
    "eta": 0.2,
}
TVM_EARLY_STOPPING_ROUNDS = 50
TVM_MAX_ROUNDS = 10000

#: Held-out sets that models are evaluated on.
EVAL_SPLITS = ("test", "zoo")
#: Where the "best GNN" of the headline ratios is chosen (never on a held-out split).
SELECTION_SPLIT = "val"
SPLITS = ("train", "val", "test", "zoo")


#: ``--runs`` of ``perfgraph train`` and ``tvm-train`` (:func:`planned_runs`).
RUNS_HELP = ("runs to train one after another, seeds SEED, SEED+1, ...: the first in OUT, run k in OUT/seeds/k "
             "(one process: the imports once)")


def run_dir(model_dir: str | os.PathLike, k: int) -> Path:
    """Where run ``k`` of a model lives: its first run in ``model_dir``, run k in ``seeds/<k>``."""
    return Path(model_dir) if k == 0 else Path(model_dir) / "seeds" / str(k)


def planned_runs(model_dir: str | os.PathLike, seed: int, runs: int) -> list[tuple[Path, int]]:
    """(directory, seed) of each of a model's ``runs`` runs: run k in :func:`run_dir` at ``seed + k``."""
    return [(run_dir(model_dir, k), seed + k) for k in range(runs)]
