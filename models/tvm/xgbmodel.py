"""TVM's own cost model: MetaSchedule's ``XGBModel``, trained offline on a TVM dataset.

``tvm.s_tir.meta_schedule.cost_model.XGBModel``, the class MetaSchedule tunes with,
default ``XGBConfig``, trained the way its ``update()`` trains: one feature group per
program, the candidates' per-store feature rows (the ``PerStoreFeature`` output, read
back from ``tvm_store_features``), target ``min_cost / cost`` within the program, then
``XGBModel._train`` (pack-sum objective, ``p-rmse`` early stopping on the training set).
``num_warmup_samples=0, adaptive_training=False``. It predicts a score (higher = faster);
run times for MAPE and log RMSE come from one global calibration constant fitted on
training programs (:mod:`models.scores`); the rank metrics use the score alone.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from featurize import schema
from models.scores import MIN_FLOOR, fit_log_scale, score_floor, to_seconds
from models.tvm.inputs import TVMProgram


def make_xgbmodel(threads: int = 1, seed: int = 43):
    """MetaSchedule's ``XGBModel`` for offline training (default ``XGBConfig`` but threads)."""
    from tvm.s_tir.meta_schedule.cost_model import XGBModel
    from tvm.s_tir.meta_schedule.cost_model.xgb_model import XGBConfig
    from tvm.s_tir.meta_schedule.feature_extractor import PerStoreFeature

    return XGBModel(
        extractor=PerStoreFeature(),
        config=XGBConfig(seed=seed, nthread=threads),
        num_warmup_samples=0,
        adaptive_training=False,
        verbose_eval=10**9,
    )


class XGBModelBaseline:
    r"""TVM's ``XGBModel``, trained offline on stored ``PerStoreFeature`` rows.

    Args:
        threads (int, optional): XGBoost threads. (default: :obj:`1`)
        seed (int, optional): ``XGBConfig.seed``. (default: :obj:`43`, TVM's)
    """

    def __init__(self, threads: int = 1, seed: int = 43) -> None:
        self.threads, self.seed = threads, seed
        self.model = make_xgbmodel(threads, seed)
        self.log_scale = 0.0
        self.score_floor = MIN_FLOOR

    def fit(self, train: list[TVMProgram]) -> "XGBModelBaseline":
        """What ``XGBModel.update`` does with every candidate of every training program."""
        from tvm.s_tir.meta_schedule.cost_model.xgb_model import FeatureGroup

        m = self.model
        for p in train:
            m.data[p.program_id] = FeatureGroup(p.program_id, list(p.store_feats), p.runtime.astype("float32"))
            m.data_size += p.num_schedules
        xs = [f for g in m.data.values() for f in g.features]
        ys = np.concatenate([g.min_cost / g.costs for g in m.data.values()])
        m.last_train_size = m.data_size
        m._train(xs=xs, ys=ys)
        self.score_floor = score_floor(ys)
        scores = np.concatenate(self.predict_scores(train))
        t = np.concatenate([p.runtime for p in train])
        self.log_scale = fit_log_scale(scores, t, self.score_floor)
        return self

    def predict_scores(self, programs: list[TVMProgram]) -> list[np.ndarray]:
        """``XGBModel``'s score of every schedule (higher = faster), per program."""
        out = []
        for p in programs:
            out.append(self.model._predict(xs=list(p.store_feats)) if p.num_schedules else np.zeros(0))
        return out

    def predict_seconds(self, programs: list[TVMProgram]) -> list[np.ndarray]:
        return [to_seconds(s, self.log_scale, self.score_floor) for s in self.predict_scores(programs)]

    def save(self, model_dir: Path) -> None:
        def _write(tmp: str) -> None:
            with tempfile.TemporaryDirectory() as d:
                self.model.save(os.path.join(d, "m.tar"))
                Path(tmp).write_bytes(Path(d, "m.tar").read_bytes())

        schema.atomic_write_bytes(model_dir / "xgbmodel.tar", _write)

    @classmethod
    def load(cls, model_dir: Path, meta: dict, threads: int = 1) -> "XGBModelBaseline":
        obj = cls(threads=threads, seed=meta["config"]["seed"])
        obj.model.load(str(model_dir / "xgbmodel.tar"))
        obj.log_scale, obj.score_floor = meta["calibration"]["log_scale"], meta["calibration"]["score_floor"]
        return obj

    def __repr__(self) -> str:
        c = self.model.config
        return f"XGBModel(max_depth={c.max_depth}, gamma={c.gamma}, min_child_weight={c.min_child_weight}, eta={c.eta})"
