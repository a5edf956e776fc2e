"""Model names -> classes, default configurations, and checkpoint loading.

A checkpoint (``<model_dir>/checkpoint.pt``) is a ``torch.save`` of plain
containers and tensors only -- state dicts, the feature statistics, the config, and
for the XGBoost models the booster serialized as a ``uint8`` tensor -- so it loads
with ``torch.load(..., weights_only=True)``, which refuses arbitrary pickles.
"""

from __future__ import annotations

import copy
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xgboost as xgb

from featurize.schema import UserError
from models.halide.adams2019 import Adams2019
from models.constants import GNN_MODELS, MODEL_NAMES, TORCH_MODELS, TVM_XGB_PARAMS, XGB_MODELS
from models.data import ProgramData
from models.halide.inputs import FeatureStats
from models.machine import MACHINE_DIM
from models.gatv2 import GATv2
from models.gcn import GCN
from models.gine import GINE
from models.halide.pooled_xgb import PooledXGB
from models.halide.packsum_xgb import TVMXGB

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = 1

#: GNN training: Adam; a step holds up to ``batch_size`` schedules from each of
#: ``programs_per_step`` programs ("auto": about 32 steps per epoch).
_GNN_TRAIN = {
    "lr": 1e-3,
    "weight_decay": 0.0,
    "epochs": 100,
    "patience": 20,
    "batch_size": 64,
    "programs_per_step": "auto",
    "grad_clip": 5.0,
}

#: Every model but Adams2019 reads the vector counts of the applied schedule where the
#: labels' machine runs masked vector tails as one vector, Halide's elsewhere
#: (featurize/halide/vector_counts.py); training stores what "auto" resolved to. Adams2019
#: keeps Halide's, which its weights are used with inside Halide's own search. A checkpoint
#: without the key read Halide's.
_VECTOR_COUNTS = {"vector_counts": "auto"}

#: The GNNs read the machine's features (models/machine.py) when their training data holds
#: labels of several machines ("auto": then, and only then): one model of every machine in its
#: data, told which machine a prediction is for. Training stores what "auto" resolved to.
_MACHINE_FEATURES = {"machine_features": "auto"}

#: Default configuration of each model: constructor arguments plus training settings.
DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
    "gcn": {"hidden_channels": 64, "num_layers": 3, "dropout": 0.0, "loss": "mse", "rank_weight": 0.0,
            "rank_loss": "pairwise", **_GNN_TRAIN,
            **_VECTOR_COUNTS, **_MACHINE_FEATURES},
    "gine": {"hidden_channels": 64, "num_layers": 3, "dropout": 0.0, "loss": "l1", "rank_weight": 0.5,
             "rank_loss": "pairwise", **_GNN_TRAIN,
             **_VECTOR_COUNTS, **_MACHINE_FEATURES},
    "gatv2": {
        "hidden_channels": 64,
        "num_layers": 3,
        "heads": 4,
        "dropout": 0.0,
        "loss": "l1",
        "rank_weight": 0.5,
        "rank_loss": "pairwise",
        **_GNN_TRAIN,
        **_VECTOR_COUNTS,
        **_MACHINE_FEATURES,
    },
    # Halide: Adam (eps 1e-5), one program's schedules per batch (up to 1024), no clipping.
    # init: "random" (trained on our data only) or "halide" (Halide's shipped weights, then retrained).
    "adams2019": {
        "init": "random",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "epochs": 200,
        "patience": 30,
        "batch_size": 1024,
        "programs_per_step": 1,
        "grad_clip": 0.0,
        "vector_counts": "halide",
    },
    # hessian "pack": see models/halide/packsum_xgb.py (TVM's own hessian diverges on many-stage programs).
    "tvm_xgb": {**TVM_XGB_PARAMS, "early_stopping_rounds": 50, "max_rounds": 10000, "seed": 43, "hessian": "pack",
                **_VECTOR_COUNTS},
    "pooled_xgb": {
        "max_depth": 6,
        "eta": 0.05,
        "subsample": 0.8,
        "colsample_bytree": 0.5,
        "early_stopping_rounds": 50,
        "max_rounds": 2000,
        **_VECTOR_COUNTS,
    },
}

#: Config keys that are training settings, not constructor arguments.
TRAIN_KEYS = ("lr", "weight_decay", "epochs", "patience", "batch_size", "programs_per_step", "grad_clip",
              "vector_counts", "machine_features")

_CLASSES = {"gcn": GCN, "gine": GINE, "gatv2": GATv2, "adams2019": Adams2019, "tvm_xgb": TVMXGB, "pooled_xgb": PooledXGB}


def default_config(name: str, **overrides: Any) -> dict[str, Any]:
    if name not in MODEL_NAMES:
        raise UserError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    cfg = copy.deepcopy(DEFAULT_CONFIGS[name])
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise UserError(f"unknown config keys for {name}: {sorted(unknown)}")
    cfg.update(overrides)
    return cfg


def build_model(name: str, config: dict[str, Any], num_cores: int = 1, threads: int = 1, seed: int = 0):
    """A fresh model of ``name`` from its config (training keys are ignored)."""
    args = {k: v for k, v in config.items() if k not in TRAIN_KEYS}
    if name == "adams2019":
        return Adams2019(num_cores=num_cores, **args)
    if name in XGB_MODELS:
        args.setdefault("seed", seed)
        return _CLASSES[name](nthread=threads, **args)
    if config.get("machine_features") is True:
        args["machine_dim"] = MACHINE_DIM
    return _CLASSES[name](**args)


# --- XGBoost boosters inside a weights-only checkpoint --------------------------------------
def booster_to_tensor(booster: xgb.Booster) -> torch.Tensor:
    raw = booster.save_raw(raw_format="ubj")
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).clone()


def booster_from_tensor(t: torch.Tensor, nthread: int = 1) -> xgb.Booster:
    booster = xgb.Booster(params={"nthread": nthread})
    booster.load_model(bytearray(t.numpy().tobytes()))
    return booster


def load_checkpoint(model_dir: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load ``checkpoint.pt`` with ``weights_only=True`` (no arbitrary code on load)."""
    path = Path(model_dir) / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint (train the model first)")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: checkpoint format {ckpt.get('format')}, expected {CHECKPOINT_FORMAT}")
    return ckpt


def save_checkpoint(ckpt: dict[str, Any], model_dir: str | os.PathLike) -> None:
    """Atomic ``torch.save`` of a checkpoint dict."""
    from featurize.schema import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(ckpt, buf)
    data = buf.getvalue()

    def _write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_write_bytes(Path(model_dir) / CHECKPOINT, _write)


class TrainedModel:
    """A trained model restored from its directory, with one prediction interface.

    Args:
        model_dir (str): ``results/models/<name>``.
        device (str, optional): Where torch models run. (default: :obj:`"cpu"`)
        threads (int, optional): XGBoost threads. (default: :obj:`1`)
    """

    def __init__(self, model_dir: str | os.PathLike, device: str | torch.device = "cpu", threads: int = 1) -> None:
        ckpt = load_checkpoint(model_dir)
        if not ckpt.get("done"):
            raise UserError(f"{model_dir}: training did not finish (resume it with `perfgraph train`)")
        self.name: str = ckpt["model"]
        self.config: dict[str, Any] = ckpt["config"]
        self.stats = FeatureStats.from_state_dict(ckpt["stats"])
        #: The machine its predictions are for unless told otherwise: the labels' machine (for a
        #: model of several machines, the one with most labels; for an adapted one, the new one).
        self.machine_id: str = ckpt["machine_id"]
        #: The ``machines`` rows of every machine it was trained on (older checkpoints: none).
        self.machine_rows: list[dict] = list(ckpt.get("machines", []))
        self.num_cores: int = ckpt["num_cores"]
        self.fingerprint: dict[str, Any] = ckpt["fingerprint"]
        #: The model's inputs: see models.halide.inputs.VECTOR_COUNTS.
        self.vector_counts: str = self.config.get("vector_counts", "halide")
        self.device = torch.device(device)
        self.model = build_model(self.name, self.config, num_cores=self.num_cores, threads=threads)
        if self.name in TORCH_MODELS:
            self.model.load_state_dict(ckpt["best_state"])
            self.model.to(self.device).eval()
        else:
            self.model.booster = booster_from_tensor(ckpt["booster"], nthread=threads)
            self.model.booster.best_iteration = int(ckpt["best_iteration"])
            if self.name == "tvm_xgb":
                self.model.log_scale = float(ckpt["log_scale"])
                self.model.score_floor = float(ckpt["score_floor"])

    @property
    def is_torch(self) -> bool:
        return self.name in TORCH_MODELS

    @property
    def machine_aware(self) -> bool:
        """Whether it reads the machine's features (trained on several machines, or adapted)."""
        return self.config.get("machine_features") is True

    @torch.no_grad()
    def predict_seconds(self, programs: list[ProgramData], chunk: int = 4096) -> list[np.ndarray]:
        """Predicted run time in seconds of every schedule of every program."""
        if not self.is_torch:
            return self.model.predict_seconds(programs)
        out = []
        for prog in programs:
            prog = prog.to(self.device)
            emb = self.model.embed_program(prog)
            parts = []
            for a in range(0, prog.num_schedules, chunk):
                sub = prog.select(torch.arange(a, min(a + chunk, prog.num_schedules)))
                parts.append(self.model.to_seconds(self.model.forward_program(sub, emb)).cpu().numpy())
            out.append(np.concatenate(parts) if parts else np.zeros(0))
        return out

    def __repr__(self) -> str:
        return f"TrainedModel({self.model!r})"


__all__ = [
    "CHECKPOINT",
    "DEFAULT_CONFIGS",
    "GNN_MODELS",
    "TrainedModel",
    "build_model",
    "default_config",
    "load_checkpoint",
    "save_checkpoint",
]
