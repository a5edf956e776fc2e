"""Plain XGBoost on pooled features: a sanity reference, not a published model.

One row per schedule: ``log1p`` of the schedule features summed and maxed over the
program's stages, ``log1p`` of the pipeline features summed over stages, the number
of stages and edges, and the count of each edge kind. An ``XGBRegressor`` with
squared error regresses the log run time (seconds) directly, so its predictions are
run times with no calibration; early stopping on the validation programs.
If a graph model cannot beat this, the graph is not helping.
"""

from __future__ import annotations

import numpy as np
import xgboost as xgb

from models.constants import EDGE_KINDS
from models.data import ProgramData


def pooled_features(prog: ProgramData) -> np.ndarray:
    """``[S, 2 * 39 + 287 + 2 + len(EDGE_KINDS)]`` pooled features of each schedule."""
    s = prog.num_schedules
    sf = np.log1p(np.maximum(prog.sf_raw.numpy().astype(np.float64), 0))
    pf = np.log1p(np.maximum(prog.pf_raw.numpy().astype(np.float64), 0)).sum(axis=0)
    kinds = prog.edge_attr[:, : len(EDGE_KINDS)].numpy().sum(axis=0)
    fixed = np.concatenate([pf, [prog.num_nodes, prog.num_edges], kinds])
    return np.concatenate([sf.sum(axis=1), sf.max(axis=1), np.broadcast_to(fixed, (s, fixed.size))], axis=1).astype(
        np.float32
    )


def _stack(programs: list[ProgramData]) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([pooled_features(p) for p in programs])
    y = np.concatenate([np.log(p.runtime.numpy()) for p in programs])
    return x, y


class PooledXGB:
    r"""XGBoost regression of log run time from pooled stage features.

    Args:
        max_depth (int, optional): (default: :obj:`6`)
        eta (float, optional): Learning rate. (default: :obj:`0.05`)
        subsample (float, optional): (default: :obj:`0.8`)
        colsample_bytree (float, optional): (default: :obj:`0.5`)
        early_stopping_rounds (int, optional): (default: :obj:`50`)
        max_rounds (int, optional): (default: :obj:`2000`)
        seed (int, optional): (default: :obj:`0`)
        nthread (int, optional): XGBoost threads. (default: :obj:`1`)
    """

    def __init__(
        self,
        max_depth: int = 6,
        eta: float = 0.05,
        subsample: float = 0.8,
        colsample_bytree: float = 0.5,
        early_stopping_rounds: int = 50,
        max_rounds: int = 2000,
        seed: int = 0,
        nthread: int = 1,
    ) -> None:
        self.params = {
            "objective": "reg:squarederror",
            "eval_metric": "rmse",
            "max_depth": max_depth,
            "eta": eta,
            "subsample": subsample,
            "colsample_bytree": colsample_bytree,
            "seed": seed,
            "nthread": nthread,
        }
        self.early_stopping_rounds = early_stopping_rounds
        self.max_rounds = max_rounds
        self.booster: xgb.Booster | None = None
        self.history: list[dict] = []

    def reset_parameters(self) -> None:
        self.booster, self.history = None, []

    def fit(self, train: list[ProgramData], val: list[ProgramData]) -> "PooledXGB":
        x, y = _stack(train)
        d_train = xgb.DMatrix(x, label=y)
        evals = [(d_train, "train")]
        if val:
            xv, yv = _stack(val)
            evals.append((xgb.DMatrix(xv, label=yv), "val"))
        result: dict = {}
        self.booster = xgb.train(
            self.params,
            d_train,
            num_boost_round=self.max_rounds,
            evals=evals,
            early_stopping_rounds=self.early_stopping_rounds,
            evals_result=result,
            verbose_eval=False,
        )
        tr = result["train"]["rmse"]
        va = result["val"]["rmse"] if val else tr
        self.history = [{"epoch": i, "train_loss": float(a), "val_loss": float(b)} for i, (a, b) in enumerate(zip(tr, va))]
        return self

    @property
    def best_iteration(self) -> int:
        return int(self.booster.best_iteration) if self.booster is not None else -1

    def predict_seconds(self, programs: list[ProgramData]) -> list[np.ndarray]:
        if self.booster is None:
            raise RuntimeError("model is not trained")
        if not programs:
            return []
        x = np.concatenate([pooled_features(p) for p in programs])
        pred = np.exp(self.booster.predict(xgb.DMatrix(x), iteration_range=(0, self.best_iteration + 1)))
        bounds = np.cumsum([0] + [p.num_schedules for p in programs])
        return [pred[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def __repr__(self) -> str:
        p = self.params
        return f"{self.__class__.__name__}(max_depth={p['max_depth']}, eta={p['eta']})"
