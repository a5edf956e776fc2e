"""The sampler mix: random and retrained cost-model weights Halide can read, and each
sampler's draws distinct, featurized, recorded and reproducible."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from featurize.schema import write_json
from pipelines.halide.sample import compile_program
from pipelines.halide.programs import random_entry
from pipelines.halide.samplers import WEIGHT_SHAPES, checked_weights_file, plan_draws, random_weights, weights_bytes

MIX = {
    "adams2019_random_weights_d50": {"count": 2, "beam_size": 1, "random_dropout": 50, "weights": "random", "max_attempts": 8},
    "adams2019_random_weights": {"count": 2, "beam_size": 1, "random_dropout": 100, "weights": "random", "max_attempts": 8},
    "adams2019_dropout": {"count": 2, "beam_size": 1, "random_dropout": 1, "weights": "shipped", "max_attempts": 15},
}


def test_random_weights_round_trip_through_halides_format() -> None:
    from models.halide.adams2019 import halide_baseline_weights, parse_weights

    w = random_weights(3)
    parsed = parse_weights(weights_bytes(w))
    shipped = halide_baseline_weights()
    for name, shape in WEIGHT_SHAPES.items():
        assert tuple(shipped[name].shape) == shape
        np.testing.assert_array_equal(parsed[name].numpy(), w[name])
    assert all(-0.5 <= float(v.min()) and float(v.max()) < 0.5 for v in w.values())
    assert not np.array_equal(random_weights(4)["conv1_filter"], w["conv1_filter"])


def test_plan_records_seeds_and_weights(small_sampling) -> None:
    small_sampling["samplers"] = MIX
    mix, refs = plan_draws(small_sampling, 1)
    assert [s.name for s in mix] == list(MIX) and refs == []
    rw = mix[0].draws[2]
    assert rw.params == {"parallelism": 1, "beam_size": 1, "random_dropout": 50, "random_dropout_seed": 3,
                         "weights": "random", "weights_seed": 3}  # fmt: skip
    assert rw.weights_seed == 3
    # No dropout, no dropout seed: the weights alone decide the schedule.
    assert "random_dropout_seed" not in mix[1].draws[0].params
    assert mix[2].draws[0].weights_seed is None and len(mix[2].draws) == 15


def test_exported_weights_are_the_models_and_halides_format(tmp_path) -> None:
    from models.halide.adams2019 import Adams2019, export_halide_weights, parse_weights

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = Adams2019(init="random")
    path = export_halide_weights(model, tmp_path / "w.weights")
    parsed = parse_weights(path.read_bytes())
    for name in WEIGHT_SHAPES:
        np.testing.assert_array_equal(parsed[name].numpy(), getattr(model, name).detach().numpy())
    resolved, sha = checked_weights_file("s", str(path))
    assert resolved == str(path.resolve()) and len(sha) == 16


def test_a_bad_weights_file_is_one_error_naming_it(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.weights: sampler s: no such weights file"):
        checked_weights_file("s", str(tmp_path / "nowhere.weights"))
    (tmp_path / "bad.weights").write_bytes(b"not weights")
    with pytest.raises(ValueError, match="bad.weights: sampler s: not a Halide Adams2019 weights file"):
        checked_weights_file("s", str(tmp_path / "bad.weights"))


#: A retrained model guides this sampler: Adams2019 from Halide's shipped weights, exported.
RETRAINED = {"count": 2, "beam_size": 1, "random_dropout": 1, "max_attempts": 15}


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """A small random program sampled twice with the same mix."""
    from models.halide.adams2019 import Adams2019, export_halide_weights
    from tests.conftest import SMALL_SAMPLING

    weights = export_halide_weights(Adams2019(init="halide"), tmp_path_factory.mktemp("w") / "retrained.weights")
    MIX_RETRAINED["adams2019_retrained"] = {**RETRAINED, "weights": str(weights)}
    cfg = {**SMALL_SAMPLING, "samplers": MIX_RETRAINED}
    params = {"max_stages": 5, "widths": [32], "channels": [4, 8], "max_macs": 3_000_000}
    runs = []
    for k in range(2):
        d = tmp_path_factory.mktemp(f"run{k}")
        write_json(random_entry("r00003", 3, params), d / "entry.json")
        runs.append(compile_program(d / "entry.json", d / "work", cfg, 1))
    return runs


#: MIX and the retrained sampler (its weights file is written by the fixture).
MIX_RETRAINED: dict = dict(MIX)


def test_each_sampler_gives_distinct_featurized_schedules(sampled) -> None:
    cands = sampled[0]
    assert cands["schedule_id"].n_unique() == cands.height
    assert cands["has_featurization"].all()
    assert (cands["compile_status"] == "ok").all()
    counts = dict(cands.group_by("sampler").len().iter_rows())
    assert counts == {name: 2 for name in MIX_RETRAINED}
    for row in cands.iter_rows(named=True):
        params = json.loads(row["sampler_params"])
        spec = MIX_RETRAINED[row["sampler"]]
        assert params["random_dropout"] == spec["random_dropout"]
        assert ("weights_seed" in params) == (spec["weights"] == "random")
        assert "weights_path" not in params  # machine-specific; the seed or the file's hash is recorded
        if spec["weights"] not in ("random", "shipped"):
            assert params["weights"] == spec["weights"] and len(params["weights_sha256"]) == 16


def test_same_seed_same_schedules(sampled) -> None:
    a, b = (s.select("sampler", "sampler_params", "schedule_id").sort("schedule_id") for s in sampled)
    assert a.equals(b)
    assert pl.Series(sampled[0]["schedule_id"]).n_unique() == 8


def test_a_mullapudi2016_sampler_draws_its_levers_and_the_loop_nest_reader_featurizes_it(tmp_path) -> None:
    """Mullapudi2016 with its cache size and balance drawn per seed: distinct schedules, each
    recording its levers, featurized by the loop-nest reader beside Adams2019's own sample."""
    from pipelines.halide.programs import zoo_entry
    from pipelines.halide.samplers import mullapudi2016_levers
    from tests.conftest import SMALL_SAMPLING

    levers = [mullapudi2016_levers(seed) for seed in (1, 2, 3)]
    assert levers[0] == mullapudi2016_levers(1) and len({json.dumps(v) for v in levers}) == 3
    assert all(2**18 <= v["last_level_cache_size"] <= 2**26 and 5 <= v["balance"] <= 200 for v in levers)
    mix = {"adams2019_dropout": {"count": 1, "beam_size": 1, "random_dropout": 1, "weights": "shipped", "max_attempts": 5},
           "mullapudi2016_levers": {"count": 3, "autoscheduler": "Mullapudi2016", "beam_size": 1, "random_dropout": 1,
                                    "weights": "shipped", "max_attempts": 8}}  # fmt: skip
    write_json(zoo_entry("separable_blur"), tmp_path / "entry.json")
    cands = compile_program(tmp_path / "entry.json", tmp_path / "work", {**SMALL_SAMPLING, "samplers": mix}, 1)
    mp = cands.filter(pl.col("sampler") == "mullapudi2016_levers")
    assert mp.height == 3 and (mp["autoscheduler"] == "Mullapudi2016").all() and (mp["featurizer"] == "loopnest").all()
    assert {json.loads(p)["balance"] for p in mp["sampler_params"]} <= {v["balance"] for v in levers}
