from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import kendalltau

from featurize import schema
from models.halide.inputs import load_dataset
from models.halide.pooled_xgb import PooledXGB, pooled_features
from models.halide.packsum_xgb import PackSum, TVMXGB, stage_rows
from models.scores import positive


@pytest.fixture(scope="module")
def ds(fake_dataset, fake_split):
    return load_dataset(fake_dataset, schema.read_table(fake_split, "split"))


def test_packsum_objective_and_metric_by_hand(ds) -> None:
    pack = PackSum(ds.split("train")[:1])
    prog = ds.split("train")[0]
    n = prog.num_nodes
    assert pack.ids.tolist() == np.repeat(np.arange(prog.num_schedules), n).tolist()
    t = prog.runtime.numpy()
    np.testing.assert_allclose(pack.y, t.min() / t)
    assert pack.y.max() == 1.0
    np.testing.assert_allclose(pack.dmatrix.get_weight(), pack.y[pack.ids], rtol=1e-6)

    # tiny hand case: rows of schedules [0, 0, 1], targets [1, 0.5]
    pack.ids = np.array([0, 0, 1])
    pack.num_samples = 2
    import xgboost as xgb

    pack.dmatrix = xgb.DMatrix(np.zeros((3, 1)), label=np.array([1.0, 1.0, 0.5]))
    grad, hess = pack.obj_square_error(np.array([0.2, 0.3, 0.5]))
    np.testing.assert_allclose(grad, [-0.5, -0.5, 0.0])
    np.testing.assert_allclose(hess, [1.0, 1.0, 0.5])
    _, hess = pack.obj_square_error(np.array([0.2, 0.3, 0.5]), hessian="pack")
    np.testing.assert_allclose(hess, [2.0, 2.0, 0.5])  # times the rows of the row's schedule
    name, value = pack.rmse(np.array([0.2, 0.3, 0.5]))
    assert name == "p-rmse" and value == pytest.approx(math.sqrt(0.5 / 3))


def test_stage_rows_layout(ds) -> None:
    prog = ds.programs[0]
    rows = stage_rows(prog)
    assert rows.shape == (prog.num_schedules * prog.num_nodes, 39 + 287)
    np.testing.assert_array_equal(rows[prog.num_nodes + 1, :39], prog.sf_raw[1, 1].numpy())
    np.testing.assert_array_equal(rows[prog.num_nodes + 1, 39:], prog.pf_raw[1].numpy())


def test_positive_is_monotone_and_positive() -> None:
    s = np.array([-5.0, -0.1, 0.0, 0.01, 0.02, 0.5])
    p = positive(s, 0.02)
    assert np.all(p > 0) and np.all(np.diff(p) > 0)
    assert p[-1] == 0.5 and p[-2] == pytest.approx(0.02)


def test_tvm_xgb_fit_predict(ds) -> None:
    model = TVMXGB(nthread=1)
    assert str(model) == "TVMXGB(max_depth=10, gamma=0.001, min_child_weight=0, eta=0.2, hessian='pack')"
    model.fit(ds.split("train"), ds.split("val"))
    assert model.best_iteration >= 0
    assert len(model.history) <= model.best_iteration + 1 + 50
    train = ds.split("train")
    scores = model.predict_scores(train)
    # in-sample, the scores should order schedules like min_cost / cost
    taus = [kendalltau(s, p.runtime.numpy().min() / p.runtime.numpy()).statistic for s, p in zip(scores, train)]
    assert np.mean(taus) > 0.5
    secs = model.predict_seconds(ds.split("test"))
    assert len(secs) == 1 and np.all(secs[0] > 0)
    # calibration is a monotone decreasing map of the score
    sc = model.predict_scores(ds.split("test"))[0]
    assert kendalltau(sc, secs[0]).statistic == pytest.approx(-1.0)


def test_pooled_xgb_fit_predict(ds) -> None:
    prog = ds.programs[0]
    assert pooled_features(prog).shape[0] == prog.num_schedules
    model = PooledXGB(max_rounds=50)
    model.fit(ds.split("train"), ds.split("val"))
    out = model.predict_seconds(ds.split("test", "zoo"))
    assert [len(o) for o in out] == [6, 6]
    assert all(np.all(o > 0) for o in out)
