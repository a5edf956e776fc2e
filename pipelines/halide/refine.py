"""Refine: more samples near a program's fastest schedule, the exploit step of an autotune loop.

The sampler mix (:mod:`pipelines.halide.samplers`) spreads a program's samples over
1-100x+; on some programs its fastest sample is a lone lucky draw (typically Adams2019
guided by one seed's random weights) with nothing else within 1.5x, so a model sees
almost nothing of the region it most needs to rank. Refining samples that region on
purpose, as an autotune loop does once it has timings:

1. a short *probe* timing of the program's Adams2019 candidates (``probe_rounds``
   interleaved rounds of the config's protocol; the probe only picks a schedule, its
   numbers are kept in ``probe.parquet`` but are not labels);
2. if at least ``refine.dense_share`` of them lie within 1.5x of the fastest (1.36x in the
   probe's figures: a margin for its noise), the program is dense near its best already
   and nothing is drawn (the budget goes where that region is thin); otherwise the
   fastest names a cost model: the random weights of its seed, its weights file, or
   Halide's shipped weights;
3. Adams2019 is drawn again with that same cost model and ``random_dropout`` at
   ``refine.random_dropout`` (seeds 1, 2, ...) until ``refine.count`` schedules new to
   the program are found: the greedy path of the model that found the best schedule,
   perturbed. Measured here on the three programs whose best was such a lone draw (the
   best's random weights, 3 interleaved rounds, min): at ``random_dropout`` 10, 8 of 9
   distinct neighbours lay within 1.5x of the best, where the mix had 1-2 of 12; at 3,
   2 of 6; at 50 every draw gave the best schedule again. Some cost models reach only a
   few schedules at any dropout (3 distinct in 50+ draws on separable blur), so when the
   dropout draws run dry:
4. greedy searches with *nearby cost models*: the same weights plus Gaussian noise
   (``refine.perturb_sd``, 0.03 by default). Measured the same way: with sd 0.03, 3 of 3
   distinct schedules within 1.13x of the best on Harris corners, 0 of 3 on separable blur
   (1.7-1.9x); with sd 0.1, 1 of 3 (1.00x) and 1 of 4 (1.26x).

The new candidates (sampler ``refine``; their parameters name the cost model, the seed
and ``refines``, the schedule they started from) go to ``refined.parquet`` beside
``candidates.parquet``; the bench stage then times both together by the full protocol,
so every label comes from the same interleaved rounds.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import polars as pl

from featurize import schema
from featurize.schema import UserError
from pipelines.bench import machine_info, prepare_timing, time_program
from pipelines.calibration import ensure_kernel
from pipelines.halide.bench import halide_loader
from pipelines.halide.programs import read_entry
from pipelines.halide.sample import draw_candidates
from pipelines.halide.samplers import BUILTIN_WEIGHTS, Draw, MixSampler, checked_weights_file
from pipelines.protocol import Protocol

SAMPLER = "refine"
#: "Near the best": within this factor of the fastest schedule's run time.
NEAR = 1.5
#: The probe is short (2 rounds), so its figures are noisier than the labels: a candidate counts
#: as near in the probe only within NEAR / PROBE_MARGIN. Measured here: a schedule at 1.497x in
#: the probe was 1.80x in the labels, and its program (2 of 12 near) went unrefined.
PROBE_MARGIN = 1.1


def probe_fastest(cands: pl.DataFrame, work_dir: Path, protocol: Protocol, calibration_dir, probe_path) -> tuple[dict | None, float]:
    """(the fastest compiled Adams2019 candidate of ``cands`` (a program's candidates table,
    libraries under ``work_dir``) by a probe timing with ``protocol``, the share of them within
    ``NEAR / PROBE_MARGIN`` of it); ``(None, 0)`` when none ran. The probe's measurements go to
    ``probe_path``."""
    adams = cands.filter((pl.col("autoscheduler") == "Adams2019") & (pl.col("compile_status") == "ok"))
    if adams.height == 0:
        return None, 0.0
    calib = ensure_kernel(calibration_dir)
    cores = os.sched_getaffinity(0)
    try:
        machine = machine_info(prepare_timing(protocol))
        meas, _ = time_program(adams, lambda c: halide_loader(work_dir / c["library"]), protocol, calib, machine)
    finally:
        os.sched_setaffinity(0, cores)  # the draws after the probe compile on every core
    schema.write_table("measurements", meas, probe_path)
    ok = meas.filter(pl.col("status") == "ok").sort("runtime_s")
    if ok.height == 0:
        return None, 0.0
    near = float((ok["runtime_s"] <= NEAR / PROBE_MARGIN * ok["runtime_s"][0]).sum()) / adams.height
    return adams.filter(pl.col("schedule_id") == ok["schedule_id"][0]).row(0, named=True), near


def neighbour_draws(best: dict, cfg: dict, timeout_s: float) -> MixSampler:
    """Adams2019 searches like the one that found ``best`` (a candidate row: the same cost
    model and beam size) with ``random_dropout`` ``cfg["random_dropout"]``, seeds 1 to
    ``cfg["max_attempts"]``; then, where ``cfg["perturb_sd"]`` > 0, the same searches without
    dropout with that model's weights plus Gaussian noise of that standard deviation (random
    weights of a seed, a weights file, or Halide's shipped weights as its plugin holds them),
    seeds 1 to ``cfg["max_attempts"]``."""
    found_by = json.loads(best["sampler_params"])
    weights = found_by.get("weights", "shipped")
    weights_seed, weights_file, model = None, None, {}
    if weights == "random":
        weights_seed = found_by["weights_seed"]
        model = {"weights": "random", "weights_seed": weights_seed}
    elif weights not in BUILTIN_WEIGHTS:
        weights_file, sha = checked_weights_file(SAMPLER, weights)
        model = {"weights": weights, "weights_sha256": sha}
    # A beam search's pick (Halide's default) has its neighbours in beam searches, not greedy
    # ones: measured here, greedy dropout draws around a beam-4 pick landed 1.4-5.6x from it.
    search = {"parallelism": found_by["parallelism"], "beam_size": found_by.get("beam_size", 1)}
    draws = []
    for seed in range(1, cfg["max_attempts"] + 1):
        params = {**search, "random_dropout": cfg["random_dropout"], "random_dropout_seed": seed, **model,
                  "refines": best["schedule_id"]}  # fmt: skip
        draws.append(Draw(SAMPLER, "Adams2019", params, timeout_s, weights_seed, weights_file))
    if cfg["perturb_sd"] > 0:
        # Then cost models near that one: its weights plus noise, each searched without dropout.
        sd = cfg["perturb_sd"]
        for seed in range(1, cfg["max_attempts"] + 1):
            params = {**search, "random_dropout": 100, **(model or {"weights": "shipped"}),
                      "perturb_sd": sd, "perturb_seed": seed, "refines": best["schedule_id"]}  # fmt: skip
            draws.append(Draw(SAMPLER, "Adams2019", params, timeout_s, weights_seed, weights_file, (sd, seed)))
    return MixSampler(SAMPLER, cfg["count"], tuple(draws))


def refine_program(
    entry_path, candidates_path, out_path, probe_path, sampling: dict, protocol: Protocol, calibration_dir
) -> pl.DataFrame:
    """Draw and compile ``sampling["refine"]["count"]`` new schedules near the program's fastest
    (see the module docstring), unless the probe finds the program dense near its best already
    (a share ``refine.dense_share`` of its Adams2019 candidates within :data:`NEAR`); write them
    to ``out_path`` (table ``candidates``; empty when refining is off, not needed or nothing
    ran) and return them."""
    entry = read_entry(entry_path)
    cands = schema.read_table(candidates_path, "candidates")
    work_dir = Path(candidates_path).parent
    cfg = sampling.get("refine", {})
    missing = sorted({"count", "random_dropout", "max_attempts", "perturb_sd", "dense_share", "probe_rounds"} - set(cfg))
    if missing or "timeout_s" not in sampling:
        raise UserError(f"sampling: refine needs {missing or ['timeout_s']} (the workflow's validated config has them)")
    new: dict[str, dict] = {}
    schema.write_table("measurements", schema.from_rows("measurements", []), probe_path)  # replaced if probed
    if cfg["count"] > 0:
        probe = dataclasses.replace(protocol, rounds=cfg["probe_rounds"], max_extra_rounds=0)
        best, near = probe_fastest(cands, work_dir, probe, calibration_dir, probe_path)
        if best is not None and near < cfg["dense_share"]:
            known = {r["schedule_id"]: r for r in cands.iter_rows(named=True)}
            rows = draw_candidates(entry, [neighbour_draws(best, cfg, sampling["timeout_s"])], [],
                                   lambda sid: work_dir / "lib" / f"{sid}.so", Path(out_path).parent, known=known,
                                   jobs=len(os.sched_getaffinity(0)))  # the probe is over: every core it holds  # fmt: skip
            new = {sid: row for sid, row in rows.items() if sid not in known}
    table = schema.from_rows("candidates", list(new.values()))
    schema.write_table("candidates", table, out_path)
    return pl.from_arrow(table)
