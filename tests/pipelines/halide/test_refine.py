"""Refine: a probe timing picks a program's fastest Adams2019 candidate, and Adams2019 is drawn
again with the cost model that found it; the new schedules are distinct, featurized, recorded,
reproducible, and timed with the others."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from featurize import schema
from featurize.build import read_candidates
from featurize.schema import write_json
from pipelines.halide import bench
from pipelines.halide.programs import random_entry
from pipelines.halide.refine import SAMPLER, neighbour_draws, refine_program
from pipelines.halide.sample import compile_program, draw_candidates
from tests.conftest import SMALL_SAMPLING

MIX = {"adams2019_random_weights": {"count": 2, "beam_size": 1, "random_dropout": 100, "weights": "random", "max_attempts": 8},
       "adams2019_dropout": {"count": 1, "beam_size": 1, "random_dropout": 1, "weights": "shipped", "max_attempts": 8}}  # fmt: skip
REFINE = {"count": 2, "random_dropout": 10, "max_attempts": 10, "perturb_sd": 0.03, "dense_share": 1.0, "probe_rounds": 1}


@pytest.fixture(scope="module")
def refined(tmp_path_factory):
    """A small random program compiled, then refined (always: dense_share 1)."""
    from pipelines.protocol import Protocol
    from tests.conftest import FAST_TIMING

    d = tmp_path_factory.mktemp("refine")
    write_json(random_entry("r00003", 3, {"max_stages": 5, "widths": [32], "channels": [4, 8], "max_macs": 3_000_000}),
               d / "entry.json")  # fmt: skip
    cfg = {**SMALL_SAMPLING, "samplers": MIX, "refine": REFINE}
    work = d / "work"
    compile_program(d / "entry.json", work, cfg, 1)
    protocol = Protocol.from_config(FAST_TIMING)
    new = refine_program(d / "entry.json", work / "candidates.parquet", work / "refined.parquet", work / "probe.parquet",
                         cfg, protocol, d / "calibration")  # fmt: skip
    return {"dir": d, "work": work, "cfg": cfg, "new": new, "protocol": protocol}


def test_refine_draws_new_featurized_schedules_near_the_probed_best(refined) -> None:
    work, new = refined["work"], refined["new"]
    first = schema.read_table(work / "candidates.parquet", "candidates")
    probe = schema.read_table(work / "probe.parquet", "measurements")
    assert probe.height == first.filter(pl.col("autoscheduler") == "Adams2019").height
    best = probe.filter(pl.col("status") == "ok").sort("runtime_s")["schedule_id"][0]
    assert new.height == REFINE["count"] and (new["sampler"] == SAMPLER).all()
    assert new["has_featurization"].all() and (new["compile_status"] == "ok").all()
    assert new["schedule_id"].n_unique() == new.height and not set(new["schedule_id"]) & set(first["schedule_id"])
    found_by = json.loads(first.filter(pl.col("schedule_id") == best)["sampler_params"][0])
    for params in map(json.loads, new["sampler_params"]):
        assert params["refines"] == best and params["random_dropout"] == REFINE["random_dropout"]
        assert params.get("weights_seed") == found_by.get("weights_seed")  # the same cost model
    assert read_candidates(work).height == first.height + new.height


def test_same_best_same_neighbours(refined) -> None:
    """Given the same fastest schedule, the draws are the same schedules (the probe's noise may
    pick another fastest, which is why the choice is recorded in ``refines``), drawn one at a
    time here and as many at once as the machine has cores in the refine stage: the same rows."""
    work, cfg = refined["work"], refined["cfg"]
    best_id = json.loads(refined["new"]["sampler_params"][0])["refines"]
    best = schema.read_table(work / "candidates.parquet", "candidates").filter(pl.col("schedule_id") == best_id).row(0, named=True)
    entry = json.loads((refined["dir"] / "entry.json").read_text())
    known = {r["schedule_id"]: r for r in schema.read_table(work / "candidates.parquet", "candidates").iter_rows(named=True)}
    again = draw_candidates(entry, [neighbour_draws(best, cfg["refine"], cfg["timeout_s"])], [], lambda sid: None,
                            refined["dir"], known=known, jobs=1)  # fmt: skip
    assert sorted(set(again) - set(known)) == sorted(refined["new"]["schedule_id"])
    new = refined["new"]
    assert {sid: again[sid]["sampler_params"] for sid in new["schedule_id"]} == dict(zip(new["schedule_id"], new["sampler_params"]))


def test_the_bench_stage_times_both_tables_together(refined, tmp_path) -> None:
    work = refined["work"]
    bench.bench_program([work / "candidates.parquet", work / "refined.parquet"], tmp_path / "m.parquet",
                        tmp_path / "s.parquet", tmp_path / "machine.json", refined["protocol"], refined["dir"] / "calibration")  # fmt: skip
    meas = schema.read_table(tmp_path / "m.parquet", "measurements")
    assert set(meas["schedule_id"]) == set(read_candidates(work)["schedule_id"])


def test_off_or_dense_enough_draws_nothing(refined, tmp_path) -> None:
    work, cfg = refined["work"], refined["cfg"]
    for refine in ({**REFINE, "count": 0}, {**REFINE, "dense_share": 0.0}):
        out = refine_program(refined["dir"] / "entry.json", work / "candidates.parquet", tmp_path / "r.parquet",
                             tmp_path / "p.parquet", {**cfg, "refine": refine}, refined["protocol"], refined["dir"] / "calibration")  # fmt: skip
        assert out.height == 0 and schema.read_table(tmp_path / "r.parquet", "candidates").height == 0


def test_when_dropout_runs_dry_nearby_cost_models_are_searched(tmp_path) -> None:
    """After the dropout draws come searches with the best's weights plus seeded noise; each
    records its noise, and the same seed writes the same weights."""
    import numpy as np

    from pipelines.halide.samplers import random_weights, shipped_weights, weights_from_bytes

    best = {"schedule_id": "abc", "sampler_params": json.dumps(
        {"parallelism": 1, "beam_size": 1, "random_dropout": 50, "random_dropout_seed": 7, "weights": "random", "weights_seed": 7})}  # fmt: skip
    draws = neighbour_draws(best, {**REFINE, "max_attempts": 3}, 30).draws
    assert [d.perturb for d in draws] == [None] * 3 + [(0.03, 1), (0.03, 2), (0.03, 3)]
    assert draws[3].params == {"parallelism": 1, "beam_size": 1, "random_dropout": 100, "weights": "random",
                               "weights_seed": 7, "perturb_sd": 0.03, "perturb_seed": 1, "refines": "abc"}  # fmt: skip
    def weights_of(draw, where):
        return weights_from_bytes(Path(draw.autoscheduler_params(where)["weights_path"]).read_bytes())

    first, again, other = weights_of(draws[3], tmp_path / "a"), weights_of(draws[3], tmp_path / "b"), weights_of(draws[4], tmp_path)
    base = random_weights(7)
    for name, w in base.items():
        np.testing.assert_array_equal(first[name], again[name])
        assert 0 < float(np.abs(first[name] - w).max()) < 0.3 and not np.array_equal(first[name], other[name])
    assert "perturb_sd" not in draws[3].autoscheduler_params(tmp_path)  # recorded, not Halide's
    # Halide's beam-4 pick: its neighbours are beam-4 searches, the perturbed ones of the shipped weights.
    shipped = {**best, "sampler_params": json.dumps({"parallelism": 1, "beam_size": 4, "random_dropout": 100})}
    draws = neighbour_draws(shipped, {**REFINE, "max_attempts": 2}, 30).draws
    assert [d.params["beam_size"] for d in draws] == [4] * 4 and [d.perturb for d in draws] == [None, None, (0.03, 1), (0.03, 2)]
    assert draws[0].params == {"parallelism": 1, "beam_size": 4, "random_dropout": 10, "random_dropout_seed": 1, "refines": "abc"}
    assert "weights_path" not in draws[0].autoscheduler_params(tmp_path)  # the plugin's own weights
    near_shipped = weights_of(draws[2], tmp_path)
    for name, w in shipped_weights().items():
        assert 0 < float(np.abs(near_shipped[name] - w).max()) < 0.3


def test_draws_at_once_keep_the_rows_of_one_at_a_time(monkeypatch, tmp_path) -> None:
    """Two draws of one batch that find the same schedule: whichever claims it first compiles
    it, the earlier draw owns the row (as one at a time), the later counts as its duplicate; a
    claimer that died leaves the earlier draw a crash row, not a lost one."""
    import time as time_mod

    from pipelines.halide import sample
    from pipelines.halide.samplers import Draw, MixSampler

    def scripted(entry, draw, lib_path_for, seen, weights_dir):
        time_mod.sleep(draw.params["delay"])  # the later draw asks first
        text = draw.params["text"]
        if sample.schedule_hash(text) in seen:
            return sample.Outcome("duplicate", text=text)
        if draw.params.get("dies"):
            return sample.Outcome("crash", error="child died")
        return sample.Outcome("ok", text, b"features", 0.1)

    monkeypatch.setattr(sample, "run_draw", scripted)
    entry = {"program_id": "p"}
    for dies, status in ((False, "ok"), (True, "crash")):
        draws = (Draw("s", "Adams2019", {"text": "f.compute_root();", "delay": 0.3, "seed": 1}, 10),
                 Draw("s", "Adams2019", {"text": "f.compute_root();", "delay": 0.0, "seed": 2, "dies": dies}, 10),
                 Draw("s", "Adams2019", {"text": "g.compute_root();", "delay": 0.0, "seed": 3}, 10))
        rows = sample.draw_candidates(entry, [MixSampler("s", 2, draws)], [], lambda sid: tmp_path / sid, tmp_path, jobs=2)
        first = rows[sample.schedule_hash("f.compute_root();")]
        assert json.loads(first["sampler_params"])["seed"] == 1 and first["compile_status"] == status
        # the claimer's crash left no schedule, so no row of its own; the third draw is the second schedule
        assert first["n_duplicates"] == (0 if dies else 1) and len(rows) == 2
        assert json.loads(rows[sample.schedule_hash("g.compute_root();")]["sampler_params"])["seed"] == 3
