"""TVM's pack-sum XGBoost cost model, on Halide's features: per-stage rows, outputs summed
per schedule. (Its name in the registry, the config and the results is ``tvm_xgb``: TVM's
model on our Halide data. TVM's own ``XGBModel`` on the TVM dataset is :mod:`models.tvm.xgbmodel`.)

Written from the public TVM source
(``python/tvm/s_tir/meta_schedule/cost_model/xgb_model.py``, class ``PackSum`` and
``XGBModel``). TVM extracts one feature row per buffer store; we use one row per
stage (node) of the schedule, holding that stage's raw schedule features and
pipeline features (trees do not need normalization). As in TVM:

* the booster scores each row; a schedule's score is the **sum** of its rows' scores;
* the target is ``min_cost / cost`` within a program (1 for the program's fastest
  schedule, lower = slower; higher is faster);
* the custom objective is the squared error of the summed score, with gradient and
  hessian of every row multiplied by its schedule's target (TVM also sets the target
  as the row weight): ``g = (sum - y) * y``, ``h = y``;
* the metric is ``p-rmse``: RMSE of the summed score against the target, over rows;
* hyperparameters: ``max_depth=10, gamma=0.001, min_child_weight=0, eta=0.2``, up to
  10000 rounds, early stopping after 50 rounds without ``p-rmse`` improvement.

Two deliberate differences:

* TVM early-stops on the *training* set's ``p-rmse`` (it has no held-out set during
  tuning); we early-stop on the validation programs' ``p-rmse``, as every other
  model here stops on validation (training ``p-rmse`` if there are no validation
  programs).
* ``hessian="pack"`` (default): each row's hessian is ``y * k``, where ``k`` is the
  number of rows of its schedule, instead of TVM's ``y``. XGBoost's leaf value is a
  Newton step that assumes each row's prediction moves alone, but the rows of one
  schedule that land in the same leaf all move its sum: with ``k`` such rows the
  step is ``k`` times too long, and boosting diverges once ``eta * k > 2``. TVM's
  candidates have a few buffer stores each; our schedules have one row per stage,
  up to 20+, and with TVM's hessian the training ``p-rmse`` grows without bound
  from the first rounds on the default dataset. ``y * k`` bounds the step (the exact
  leaf hessian is ``sum y * k_leaf^2 <= sum y * k_leaf * k``). ``hessian="tvm"``
  gives TVM's objective unchanged.

**From score to run time**: one global constant fitted on the training programs
(:mod:`models.scores`); the rank metrics use the score alone.
"""

from __future__ import annotations

import numpy as np
import xgboost as xgb

from models.constants import TVM_EARLY_STOPPING_ROUNDS, TVM_MAX_ROUNDS, TVM_XGB_PARAMS
from models.data import ProgramData
from models.scores import MIN_FLOOR, fit_log_scale, score_floor, to_seconds

def stage_rows(prog: ProgramData) -> np.ndarray:
    """``[S * n, 39 + 287]``: per (schedule, stage) the raw schedule then pipeline features."""
    s, n = prog.num_schedules, prog.num_nodes
    sf = prog.sf_raw.reshape(s * n, -1).numpy()
    pf = np.broadcast_to(prog.pf_raw.numpy(), (s, n, prog.pf_raw.shape[1])).reshape(s * n, -1)
    return np.concatenate([sf, pf], axis=1).astype(np.float32)


class PackSum:
    r"""A batch of schedules in pack-sum form: stage rows and the schedule each belongs to.

    Args:
        programs (list[ProgramData]): Programs whose schedules are packed.
        with_labels (bool, optional): Attach targets ``min_cost / cost`` per program
            (and as row weights, as TVM does). (default: :obj:`True`)
    """

    def __init__(self, programs: list[ProgramData], with_labels: bool = True) -> None:
        rows, ids, ys = [], [], []
        offset = 0
        for prog in programs:
            rows.append(stage_rows(prog))
            ids.append(np.repeat(np.arange(prog.num_schedules) + offset, prog.num_nodes))
            if with_labels:
                t = prog.runtime.numpy()
                ys.append(t.min() / t)
            offset += prog.num_schedules
        self.num_samples = offset
        self.ids = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
        x = np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32)
        if with_labels:
            self.y = np.concatenate(ys)
            row_y = self.y[self.ids]
            self.dmatrix = xgb.DMatrix(x, label=row_y, weight=row_y)
        else:
            self.y = None
            self.dmatrix = xgb.DMatrix(x)

    def predict_with_score(self, pred: np.ndarray) -> np.ndarray:
        """Sum row scores into one score per schedule."""
        return np.bincount(self.ids, weights=pred, minlength=self.num_samples)

    def obj_square_error(self, pred: np.ndarray, hessian: str = "tvm") -> tuple[np.ndarray, np.ndarray]:
        """Gradient and hessian of the pack-sum squared error, weighted by the target.

        ``hessian="tvm"``: ``y`` per row, as TVM; ``"pack"``: ``y`` times the number of
        rows of the row's schedule (see the module docstring)."""
        summed = self.predict_with_score(pred)[self.ids]
        y = self.dmatrix.get_label()
        hess = y.copy()
        if hessian == "pack":
            hess = hess * np.bincount(self.ids, minlength=self.num_samples)[self.ids]
        elif hessian != "tvm":
            raise ValueError(f"hessian must be 'tvm' or 'pack', got {hessian!r}")
        return (summed - y) * y, hess

    def rmse(self, pred: np.ndarray) -> tuple[str, float]:
        """``p-rmse``: RMSE of the summed score, over rows (as TVM computes it)."""
        summed = self.predict_with_score(pred)[self.ids]
        y = self.dmatrix.get_label()
        return "p-rmse", float(np.sqrt(np.mean(np.square(summed - y))))


class TVMXGB:
    r"""TVM MetaSchedule's ``XGBModel`` retrained on our stage rows.

    Args:
        max_depth (int, optional): (default: :obj:`10`)
        gamma (float, optional): (default: :obj:`0.001`)
        min_child_weight (float, optional): (default: :obj:`0`)
        eta (float, optional): (default: :obj:`0.2`)
        early_stopping_rounds (int, optional): (default: :obj:`50`)
        max_rounds (int, optional): (default: :obj:`10000`)
        seed (int, optional): (default: :obj:`43`, TVM's)
        hessian (str, optional): ``"pack"`` or ``"tvm"`` (see the module docstring).
            (default: :obj:`"pack"`)
        nthread (int, optional): XGBoost threads. (default: :obj:`1`)
    """

    def __init__(
        self,
        max_depth: int = TVM_XGB_PARAMS["max_depth"],
        gamma: float = TVM_XGB_PARAMS["gamma"],
        min_child_weight: float = TVM_XGB_PARAMS["min_child_weight"],
        eta: float = TVM_XGB_PARAMS["eta"],
        early_stopping_rounds: int = TVM_EARLY_STOPPING_ROUNDS,
        max_rounds: int = TVM_MAX_ROUNDS,
        seed: int = 43,
        hessian: str = "pack",
        nthread: int = 1,
    ) -> None:
        if hessian not in ("pack", "tvm"):
            raise ValueError(f"hessian must be 'tvm' or 'pack', got {hessian!r}")
        self.hessian = hessian
        self.params = {
            "max_depth": max_depth,
            "gamma": gamma,
            "min_child_weight": min_child_weight,
            "eta": eta,
            "seed": seed,
            "nthread": nthread,
            "disable_default_eval_metric": 1,
        }
        self.early_stopping_rounds = early_stopping_rounds
        self.max_rounds = max_rounds
        self.booster: xgb.Booster | None = None
        self.log_scale = 0.0  # `a` of the score -> run time calibration
        self.score_floor = MIN_FLOOR  # `f` of `pos`
        self.history: list[dict] = []

    def reset_parameters(self) -> None:
        self.booster, self.log_scale, self.score_floor, self.history = None, 0.0, MIN_FLOOR, []

    def fit(self, train: list[ProgramData], val: list[ProgramData]) -> "TVMXGB":
        d_train = PackSum(train)
        d_val = PackSum(val) if val else d_train
        packs = {id(d_train.dmatrix): d_train, id(d_val.dmatrix): d_val}

        def obj(pred: np.ndarray, dmat: xgb.DMatrix):
            return packs[id(dmat)].obj_square_error(pred, self.hessian)

        def metric(pred: np.ndarray, dmat: xgb.DMatrix):
            return packs[id(dmat)].rmse(pred)

        evals = [(d_train.dmatrix, "train")] + ([(d_val.dmatrix, "val")] if val else [])
        result: dict = {}
        self.booster = xgb.train(
            self.params,
            d_train.dmatrix,
            num_boost_round=self.max_rounds,
            evals=evals,
            obj=obj,
            custom_metric=metric,
            early_stopping_rounds=self.early_stopping_rounds,
            evals_result=result,
            verbose_eval=False,
        )
        tr = result["train"]["p-rmse"]
        va = result["val"]["p-rmse"] if val else tr
        self.history = [{"epoch": i, "train_loss": float(a), "val_loss": float(b)} for i, (a, b) in enumerate(zip(tr, va))]
        # Calibration constant, from training programs only.
        self.score_floor = score_floor(d_train.y)
        scores = np.concatenate(self.predict_scores(train))
        t = np.concatenate([p.runtime.numpy() for p in train])
        self.log_scale = fit_log_scale(scores, t, self.score_floor)
        return self

    @property
    def best_iteration(self) -> int:
        return int(self.booster.best_iteration) if self.booster is not None else -1

    def predict_scores(self, programs: list[ProgramData]) -> list[np.ndarray]:
        """Pack-sum scores (higher = faster), one array per program."""
        if self.booster is None:
            raise RuntimeError("model is not trained")
        if not programs:
            return []
        pack = PackSum(programs, with_labels=False)
        rows = self.booster.predict(pack.dmatrix, iteration_range=(0, self.best_iteration + 1))
        summed = pack.predict_with_score(rows)
        bounds = np.cumsum([0] + [p.num_schedules for p in programs])
        return [summed[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def predict_seconds(self, programs: list[ProgramData]) -> list[np.ndarray]:
        """Run times from scores by the global calibration (see the module docstring)."""
        return [to_seconds(s, self.log_scale, self.score_floor) for s in self.predict_scores(programs)]

    def __repr__(self) -> str:
        p = self.params
        return (
            f"{self.__class__.__name__}(max_depth={p['max_depth']}, gamma={p['gamma']}, "
            f"min_child_weight={p['min_child_weight']}, eta={p['eta']}, hessian={self.hessian!r})"
        )
