"""A trained model inside MetaSchedule's search: ``perfgraph tvm-tune``.

MetaSchedule tunes a TVM program by evolutionary search: each round it mutates the best
schedules so far, ranks thousands of them with a cost model, and builds and times only the
top ones (a "trial" is one schedule built and timed). TVM's default cost model is its
``XGBModel``, trained online on the trials so far. Here a model trained by ``perfgraph
tvm-train`` (a GNN, or TVM's XGBModel trained offline on a TVM dataset) ranks instead,
through :class:`TrainedCostModel`, a ``PyCostModel``: each candidate's ``PerStoreFeature`` rows
are mapped to the workload's blocks as in the dataset (:mod:`models.tvm.inputs`) and the
model's predicted run time becomes the score (higher is faster). The trained model is not
updated during the search: what it knows is what it learned from the dataset, which is the
question a tuning curve asks of it. ``random`` (MetaSchedule's ``RandomModel``) is the floor.

Each trial's latency is MetaSchedule's own measurement (``LocalRunner``: one warm-up, then
``repeat`` means of ``number`` runs of at least ``min_repeat_ms``), read by a measure callback
in the order the trials ran; the curve is the best latency after each trial.

    perfgraph tvm-tune bert_qkv_dense --model results/models/tvm_default/gatv2 --trials 64
    perfgraph tvm-tune random:7 --model xgb --trials 32 --seed 1
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from featurize import schema
from featurize.schema import UserError

log = logging.getLogger(__name__)

#: Cost models named rather than given as a directory: TVM's default, and random scores.
BUILTIN_MODELS = ("xgb", "random")
#: MetaSchedule's runner settings for the trials (its CPU defaults, at least 40 ms a repeat so a
#: microsecond kernel is averaged over many runs on this noisy machine).
RUNNER = {"number": 3, "repeat": 1, "min_repeat_ms": 40, "timeout_s": 30.0}


def resolve_program(program: str, params: dict | None = None) -> dict:
    """The program entry of ``program``: a TVM zoo layer's name (``bert_qkv_dense``),
    ``random:SEED`` (the random generator's program of that seed, with ``params``), or the path
    of an entry JSON that ``perfgraph tvm-generate`` wrote."""
    from pipelines.tvm.programs import program_entry
    from pipelines.tvm.zoo import ZOO

    if program in ZOO:
        return program_entry(f"tzoo_{program}", zoo=program)
    if program.startswith("random:"):
        try:
            seed = int(program.removeprefix("random:"))
        except ValueError:
            raise UserError(f"{program!r}: random:SEED takes an integer seed") from None
        return program_entry(f"t{seed:05d}", seed=seed, params=params)
    path = Path(program)
    if path.suffix == ".json" and path.is_file():
        try:
            entry = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not a JSON program entry ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(entry, dict) or "spec" not in entry or "program_id" not in entry:
            raise UserError(f"{path}: not a program entry of perfgraph tvm-generate (no 'spec' or 'program_id')")
        return entry
    raise UserError(
        f"{program!r}: not a TVM zoo layer ({', '.join(sorted(ZOO))}), random:SEED or an entry .json file"
    )


def _make_trained_cost_model():
    """The ``PyCostModel`` subclass (defined on first use: TVM is imported lazily)."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.cost_model import PyCostModel

    from featurize.tvm.graph import extract_store_features, store_buffers
    from models.tvm.inputs import TVMProgram, schedule_stores

    @derived_object
    class TrainedCostModel(PyCostModel):
        """Scores candidates by a trained model's predicted run time: ``1e-3 / seconds``
        (throughput per millisecond; one fixed scale, so scores of different rounds compare)."""

        def __init__(self, predict_seconds, program_id: str, graph: tuple, node_buffers: list[str]) -> None:
            super().__init__()
            self.predict_seconds = predict_seconds
            self.program_id = program_id
            self.node_raw, self.edge_index, self.edge_attr = graph
            self.node_buffers = list(node_buffers)

        def load(self, path: str) -> None:  # the model is its directory; nothing to load mid-search
            pass

        def save(self, path: str) -> None:
            pass

        def update(self, context, candidates, results) -> None:
            pass  # frozen: it ranks by what it learned from the dataset

        def predict(self, context, candidates) -> np.ndarray:
            if not candidates:
                return np.zeros(0, dtype=np.float64)
            feats = extract_store_features(context, candidates)
            stores = [schedule_stores(f, store_buffers(c.sch.mod), self.node_buffers) for f, c in zip(feats, candidates)]
            n = len(candidates)
            prog = TVMProgram(self.program_id, "test", [str(i) for i in range(n)], np.full(n, np.nan), feats, stores,
                              self.node_raw, self.edge_index, self.edge_attr)  # fmt: skip
            secs = np.asarray(self.predict_seconds([prog])[0], dtype=np.float64)
            ok = np.isfinite(secs) & (secs > 0)
            return np.where(ok, 1e-3 / np.where(ok, secs, 1.0), 0.0)

    return TrainedCostModel


def _make_trial_log():
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

    @derived_object
    class TrialLog(PyMeasureCallback):
        """Every trial's latency (mean of MetaSchedule's repeats; ``None`` if it failed to build
        or run) and its trace, in the order the trials ran."""

        def __init__(self) -> None:
            super().__init__()
            self.trials: list[dict] = []

        def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results) -> None:
            for cand, b, r in zip(measure_candidates, builder_results, runner_results):
                secs = None
                if b.error_msg is None and r.error_msg is None and r.run_secs:
                    secs = float(np.mean([float(getattr(x, "value", x)) for x in r.run_secs]))
                error = b.error_msg or r.error_msg
                self.trials.append({
                    "latency_s": secs,
                    "error": None if error is None else str(error).strip().splitlines()[-1][:300],
                    "trace": "\n".join(str(s) for s in cand.sch.trace.as_python()),
                })  # fmt: skip

    return TrialLog


def check_model(model: str) -> Path | None:
    """The model directory ``model`` names (``None`` for a built-in), or one clear error."""
    if model in BUILTIN_MODELS:
        return None
    model_dir = Path(model)
    if not (model_dir / "meta.json").is_file():
        raise UserError(f"{model_dir}: not a model directory of perfgraph tvm-train (no meta.json); "
                        f"or name one of {', '.join(BUILTIN_MODELS)}")  # fmt: skip
    return model_dir


def cost_model_for(model: str, seed: int, program_id: str, graph: tuple, node_buffers: list[str], threads: int):
    """``(cost model, description)``: ``xgb`` (TVM's XGBModel, learning online, TVM's default),
    ``random``, or a directory that ``perfgraph tvm-train`` wrote."""
    from tvm.s_tir.meta_schedule.cost_model import RandomModel, XGBModel

    if model == "xgb":
        from tvm.s_tir.meta_schedule.cost_model.xgb_model import XGBConfig

        return XGBModel(config=XGBConfig(nthread=threads)), {"kind": "xgb", "note": "TVM's XGBModel, trained online"}
    if model == "random":
        return RandomModel(seed=seed), {"kind": "random"}
    model_dir = check_model(model)
    from models.tvm.stages import load_trained

    name, meta, predict = load_trained(model_dir, threads)
    desc = {"kind": "trained", "model": name, "dir": str(model_dir), "machine_id": meta.get("machine_id"),
            "dataset": meta.get("dataset"), "n_train_programs": meta.get("n_train_programs")}  # fmt: skip
    return _make_trained_cost_model()(predict, program_id, graph, node_buffers), desc


def best_so_far(latencies: list[float | None]) -> list[float | None]:
    """The best latency after each trial (``None`` until one succeeds)."""
    out, best = [], None
    for v in latencies:
        if v is not None and (best is None or v < best):
            best = v
        out.append(best)
    return out


def tune(
    program: str,
    model: str,
    trials: int,
    *,
    work_dir: str | os.PathLike,
    seed: int = 0,
    cores: int | None = None,
    per_round: int = 16,
    threads: int = 1,
    params: dict | None = None,
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Tune ``program`` for ``trials`` trials with MetaSchedule's evolutionary search guided by
    ``model``; return (and write to ``out``) the tuning curve and the best schedule's trace."""
    if trials < 1:
        raise UserError(f"--trials {trials}: give at least 1")
    cores = int(cores or os.cpu_count() or 1)
    os.environ.setdefault("TVM_NUM_THREADS", str(cores))
    entry = resolve_program(program, params)
    check_model(model)  # before the minutes of work below
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)

    from tvm.s_tir import meta_schedule as ms

    from featurize.tvm.graph import graph_tables
    from models.tvm.inputs import graph_inputs
    from pipelines.tvm.sample import DEFAULT_SAMPLING, ProgramSampler, light_intrinsics

    light_intrinsics()
    prog = ProgramSampler(entry, work_dir, DEFAULT_SAMPLING, cores, threads)
    tables = graph_tables(prog.graph, prog.workload_features())
    graph = graph_inputs(tables["nodes"], tables["tvm_node_features"], tables["edges"])
    cost_model, desc = cost_model_for(model, seed, prog.pid, graph, prog.node_buffers, threads)
    trial_log = _make_trial_log()()
    runner = ms.runner.LocalRunner(
        timeout_sec=RUNNER["timeout_s"],
        evaluator_config=ms.runner.EvaluatorConfig(number=RUNNER["number"], repeat=RUNNER["repeat"],
                                                   min_repeat_ms=RUNNER["min_repeat_ms"],
                                                   enable_cpu_cache_flush=False),  # fmt: skip
    )
    # The builder's workers import TVM's tensor intrinsics before they build: all of them
    # (CUDA, ROCm, ...) take 12-35 s, past the build timeout; the CPU ones are what is used.
    builder = ms.builder.LocalBuilder(max_workers=cores, timeout_sec=RUNNER["timeout_s"], initializer=light_intrinsics)
    t0 = time.perf_counter()
    ms.tune_tir(
        prog.mod, prog.target, str(work_dir / "meta_schedule"), max_trials_global=trials,
        num_trials_per_iter=min(per_round, trials), cost_model=cost_model,
        measure_callbacks=[*ms.measure_callback.MeasureCallback.create("default"), trial_log],
        runner=runner, builder=builder, database="memory",
        seed=seed, num_tuning_cores=cores,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    lat = [t["latency_s"] for t in trial_log.trials]
    curve = best_so_far(lat)
    ok = [i for i, v in enumerate(lat) if v is not None]
    best = min(ok, key=lambda i: lat[i]) if ok else None
    result = {
        "program": program, "program_id": prog.pid, "description": prog.workload.description,
        "model": desc, "trials_asked": trials, "trials_run": len(lat), "trials_failed": len(lat) - len(ok),
        "seed": seed, "cores": cores, "per_round": per_round, "runner": RUNNER, "wall_s": wall,
        "latency_s": lat, "best_so_far_s": curve, "best_s": lat[best] if best is not None else None,
        "best_trial": best, "best_trace": trial_log.trials[best]["trace"] if best is not None else None,
        "errors": sorted({t["error"] for t in trial_log.trials if t["error"]})[:5],
    }  # fmt: skip
    if out is not None:
        schema.write_json(result, out)
    return result
