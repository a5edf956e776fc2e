"""Sample MetaSchedule schedules of one TVM program, compile them, and featurize them.

Per program (one process, so TVM is imported once):

1. Build the workload (:mod:`pipelines.tvm.ops`) and read its graph
   (:func:`featurize.tvm.graph.workload_graph`); extract ``PerStoreFeature`` of the
   unscheduled workload (the schedule-independent node features).
2. **Random sampling**: MetaSchedule's design space (``PostOrderApply`` with the
   target's default schedule rules and postprocessors) sampled by ``ReplayTrace``,
   until ``replay_trace`` distinct schedules (or ``max_attempts`` batches).
3. **Evolutionary search**: ``rounds`` rounds of MetaSchedule's ``EvolutionarySearch``
   guided by TVM's ``XGBModel``, as MetaSchedule tunes: the model is updated with quick
   timings of every candidate so far (forked children, a few runs each: guidance
   only, never a label), the measured ones are committed to a ``MemoryDatabase`` so
   the search starts from the best and skips them, until ``evolutionary`` distinct
   schedules.
4. Every distinct schedule (``schedule_id`` = 16 hex digits of the structural hash of
   the scheduled IRModule) is compiled with ``tvm.compile`` for
   ``llvm -num-cores=<cores>`` and exported as a shared library; a failure is a row
   with ``compile_status = compile_error``. Its ``PerStoreFeature`` rows are kept with
   the buffer and workload node of each row.
5. The unscheduled workload is compiled and run once on the seeded inputs:
   ``reference.npy`` is what every schedule must compute.

Outputs in ``out_dir``: ``candidates.parquet`` (table ``tvm_candidates``),
``program.json`` (entry, graph, argument shapes, workload features), libraries
under ``lib/`` and ``reference.npy``.

Importing TVM's tensor intrinsics (``tvm.s_tir.tensor_intrin``) costs 12-35 s, almost
all of it CUDA, ROCm and Hexagon intrinsics that an ``llvm`` target never uses;
:func:`light_intrinsics` registers only the x86 (and, on ARM, the ARM) ones, which is
what MetaSchedule's CPU rules can ask for.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import platform
import sys
import time
import types
from pathlib import Path

import numpy as np
import polars as pl

from featurize import schema
from featurize.schema import UserError
from featurize.tvm import graph as tg
from pipelines.tvm import ops as tp

log = logging.getLogger(__name__)

#: Sampling defaults; the config's ``tvm.sampling`` overrides them.
DEFAULT_SAMPLING = {
    "replay_trace": 12,  # distinct schedules from random sampling of the design space
    "evolutionary": 4,  # distinct schedules from evolutionary search
    "max_attempts": 4,  # batches of ReplayTrace draws (each as large as replay_trace)
    "rounds": 1,  # evolutionary search rounds (each proposes evolutionary / rounds schedules)
    "population_size": 64,
    "genetic_num_iters": 2,
    "seed": 1,  # MetaSchedule's rand_state (per program: seed + a hash of the program id)
    "full_intrinsics": False,  # import every tensor intrinsic (CUDA, ROCm, ...), 12-35 s
}

#: Quick timings that guide the evolutionary search (never labels).
QUICK_TIMING = {"window_s": 0.0, "min_runs": 2, "min_sample_s": 0.0005, "warmup_runs": 1}


def light_intrinsics(full: bool = False) -> None:
    """Register the tensor intrinsics a CPU target can use, without the 12-35 s import of all."""
    if full or "tvm.s_tir.tensor_intrin" in sys.modules:
        import tvm.s_tir.tensor_intrin  # noqa: F401

        return
    import tvm.s_tir  # noqa: F401

    spec = importlib.util.find_spec("tvm.s_tir.tensor_intrin")
    pkg = types.ModuleType("tvm.s_tir.tensor_intrin")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__file__ = spec.origin
    pkg.__doc__ = "perfgraph: CPU tensor intrinsics only (see pipelines.tvm.sample.light_intrinsics)"
    sys.modules["tvm.s_tir.tensor_intrin"] = pkg
    import tvm.s_tir.tensor_intrin.x86  # noqa: F401

    if platform.machine().lower() in ("aarch64", "arm64"):
        import tvm.s_tir.tensor_intrin.arm_cpu  # noqa: F401


def make_target(cores: int):
    import tvm

    return tvm.target.Target({"kind": "llvm", "num-cores": int(cores)})


def schedule_id(mod) -> str:
    """16 hex digits of the structural hash of a scheduled IRModule."""
    import tvm_ffi

    return f"{tvm_ffi.structural_hash(mod) & 0xFFFFFFFFFFFFFFFF:016x}"


def _to_py(obj):
    """An FFI JSON-style object (arrays, maps, strings, numbers) as plain Python."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    name = type(obj).__name__
    if name in ("Map", "Dict") or isinstance(obj, dict):
        return {str(k): _to_py(v) for k, v in obj.items()}
    if name in ("Array", "List") or isinstance(obj, (list, tuple)):
        return [_to_py(v) for v in obj]
    if hasattr(obj, "value"):
        return obj.value
    return str(obj)


def trace_texts(sch) -> tuple[str, str]:
    """``(python, json)`` text of a schedule's trace."""
    trace = sch.trace
    return "\n".join(str(s) for s in trace.as_python()), json.dumps(_to_py(trace.as_json()))


def program_args(workload: tp.Workload) -> list[dict]:
    n = len(workload.tensors)
    return [
        {"name": t.op.name, "shape": [int(s) for s in t.shape], "dtype": str(t.dtype), "output": i == n - 1}
        for i, t in enumerate(workload.tensors)
    ]


def compile_to(mod, target, lib_path: Path) -> tuple[str, str, float]:
    """Compile and export one scheduled module: ``(status, error, seconds)``."""
    import tvm
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    t0 = time.perf_counter()
    try:
        mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
        ex = tvm.compile(mod, target=target)
        lib_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = lib_path.with_name(f".{lib_path.name}.tmp.so")
        ex.export_library(str(tmp))
        os.replace(tmp, lib_path)
    except Exception as exc:  # TVMError and friends
        msg = str(exc).strip().splitlines()
        return "compile_error", f"{type(exc).__name__}: {msg[-1] if msg else ''}"[:2000], time.perf_counter() - t0
    return "ok", "", time.perf_counter() - t0


class ProgramSampler:
    """The per-program state: distinct schedules, their rows and their features."""

    def __init__(self, entry: dict, out_dir: Path, cfg: dict, cores: int, threads: int) -> None:
        from tvm.s_tir import meta_schedule as ms

        self.ms = ms
        self.entry, self.out_dir, self.cfg, self.cores, self.threads = entry, out_dir, cfg, cores, threads
        self.pid = entry["program_id"]
        self.workload = tp.build_workload(entry["spec"], self.pid)
        self.mod = tp.workload_module(self.workload)
        self.target = make_target(cores)
        self.graph = tg.workload_graph(self.mod, self.workload.op_kinds, self.pid)
        self.node_buffers = [r["func"] for r in self.graph["nodes"]]
        self.args = program_args(self.workload)
        self.rows: dict[str, dict] = {}
        self.order: list[str] = []
        self.cands: dict[str, object] = {}  # schedule_id -> MeasureCandidate
        base = int.from_bytes(self.pid.encode()[:8].ljust(8, b"\0"), "little") % 1_000_003
        self.rand_state = 1 + (int(cfg["seed"]) * 1_000_003 + base) % (2**31 - 2)

    def context(self, strategy):
        return self.ms.TuneContext(
            mod=self.mod,
            target=self.target,
            space_generator=self.ms.space_generator.PostOrderApply(),
            search_strategy=strategy,
            task_name=self.pid,
            rand_state=self.rand_state,
            num_threads=self.threads,
        )

    # -- candidates ---------------------------------------------------------------------
    def add(self, ctx, cands, sampler: str, params: dict, t_sample: float) -> list:
        """Keep the new distinct candidates (compiled and featurized); return them."""
        new = []
        for cand in cands:
            sid = schedule_id(cand.sch.mod)
            if sid in self.rows:
                self.rows[sid]["n_duplicates"] += 1
                continue
            text, trace_json = trace_texts(cand.sch)
            lib = Path("lib") / f"{sid}.so"
            status, error, ctime = compile_to(cand.sch.mod, self.target, self.out_dir / lib)
            self.rows[sid] = {
                "program_id": self.pid,
                "schedule_id": sid,
                "sampler": sampler,
                "sampler_params": json.dumps({**params, "rand_state": self.rand_state}, sort_keys=True),
                "autoscheduler": "meta_schedule",
                "has_featurization": False,
                "featurizer": "",
                "schedule_text": text,
                "n_duplicates": 0,
                "trace_json": trace_json,
                "sample_time_s": t_sample / max(1, len(cands)),
                "compile_status": status,
                "compile_error": error,
                "compile_time_s": ctime,
                "library": str(lib) if status == "ok" else "",
                "store_buffers": "[]",
                "store_nodes": "[]",
                "store_features": b"",
            }
            self.order.append(sid)
            self.cands[sid] = cand
            new.append((sid, cand))
        if new:
            feats = tg.extract_store_features(ctx, [c for _, c in new])
            for (sid, cand), f in zip(new, feats):
                bufs = tg.store_buffers(cand.sch.mod)
                if len(bufs) != f.shape[0]:
                    log.warning(
                        "%s %s: %d feature rows but %d stored buffers; rows left unmapped",
                        self.pid,
                        sid,
                        f.shape[0],
                        len(bufs),
                    )
                    bufs = [f"?{i}" for i in range(f.shape[0])]
                self.rows[sid].update(
                    has_featurization=True,
                    featurizer="tvm_per_store",
                    store_buffers=json.dumps(bufs),
                    store_nodes=json.dumps(tg.map_buffers_to_nodes(bufs, self.node_buffers)),
                    store_features=f.astype(np.float32).tobytes(),
                )
        return [c for _, c in new]

    def count(self, sampler: str) -> int:
        return sum(1 for r in self.rows.values() if r["sampler"] == sampler)

    # -- stages ---------------------------------------------------------------------------
    def workload_features(self) -> dict[str, list[float]]:
        from tvm import s_tir
        from tvm.s_tir.meta_schedule.arg_info import ArgInfo

        ctx = self.context(self.ms.search_strategy.ReplayTrace())
        cand = self.ms.MeasureCandidate(s_tir.Schedule(self.mod), ArgInfo.from_prim_func(self.mod["main"]))
        feats = tg.extract_store_features(ctx, [cand])[0]
        bufs = tg.store_buffers(self.mod)
        out = {}
        if len(bufs) == feats.shape[0]:
            for node, row in zip(tg.map_buffers_to_nodes(bufs, self.node_buffers), feats):
                if node is not None:
                    out[str(node)] = [float(v) for v in row]
        return out

    def replay(self) -> None:
        want = int(self.cfg["replay_trace"])
        if want <= 0:
            return
        ctx = self.context(self.ms.search_strategy.ReplayTrace())
        spaces = ctx.generate_design_space()
        batches = max(1, int(self.cfg["max_attempts"]))
        ctx.pre_tuning(max_trials=want * batches, num_trials_per_iter=want, design_spaces=spaces)
        for attempt in range(batches):
            t0 = time.perf_counter()
            cands = ctx.generate_measure_candidates()
            if not cands:
                break
            t = time.perf_counter() - t0
            room = want - self.count("replay_trace")
            distinct, keep = set(), []
            for c in cands:  # only as many new schedules as still wanted
                sid = schedule_id(c.sch.mod)
                if sid in self.rows or sid in distinct or len(distinct) < room:
                    keep.append(c)
                    distinct.add(sid)
            self.add(ctx, keep, "replay_trace", {"batch": attempt, "design_spaces": len(spaces)}, t)
            ctx.notify_runner_results(cands, [self.ms.runner.RunnerResult(None, "not measured") for _ in cands])
            if self.count("replay_trace") >= want:
                break

    def quick_times(self, sids: list[str]) -> list[list[float] | None]:
        from pipelines.tvm.bench import time_once

        ref = self.out_dir / "reference.npy"
        out = []
        for sid in sids:
            row = self.rows[sid]
            if row["compile_status"] != "ok":
                out.append(None)
                continue
            r = time_once(
                self.out_dir / row["library"], self.args, QUICK_TIMING, 60.0, self.cores, ref if ref.exists() else None
            )
            out.append([r["window_min_s"]] if r["status"] == "ok" else None)
        return out

    def evolutionary(self) -> None:
        want = int(self.cfg["evolutionary"])
        if want <= 0:
            return
        ms = self.ms
        from tvm.s_tir.meta_schedule.arg_info import ArgInfo
        from tvm.s_tir.meta_schedule.cost_model import XGBModel
        from tvm.s_tir.meta_schedule.cost_model.xgb_model import XGBConfig

        rounds = max(1, int(self.cfg["rounds"]))
        pop = int(self.cfg["population_size"])
        strategy = ms.search_strategy.EvolutionarySearch(
            population_size=pop,
            init_min_unmeasured=max(1, min(50, pop // 4)),
            genetic_num_iters=int(self.cfg["genetic_num_iters"]),
        )
        ctx = self.context(strategy)
        model = XGBModel(
            extractor=ms.feature_extractor.PerStoreFeature(),
            config=XGBConfig(nthread=self.threads),
            num_warmup_samples=0,
            adaptive_training=False,
            verbose_eval=10**9,
        )
        db = ms.database.MemoryDatabase()
        workload = db.commit_workload(self.mod)
        args_info = ArgInfo.from_prim_func(self.mod["main"])

        def learn(sids: list[str]) -> None:
            if not sids:
                return
            secs = self.quick_times(sids)
            results = [ms.runner.RunnerResult(s, None if s else "failed") for s in secs]
            model.update(ctx, [self.cands[s] for s in sids], results)
            for sid, s in zip(sids, secs):
                if s:
                    db.commit_tuning_record(
                        ms.database.TuningRecord(self.cands[sid].sch.trace, workload, s, self.target, args_info)
                    )

        learn(list(self.order))
        per_round = max(1, -(-want // rounds))
        ctx.pre_tuning(
            max_trials=want * (rounds + 2), num_trials_per_iter=per_round,
            design_spaces=ctx.generate_design_space(), database=db, cost_model=model,
        )  # fmt: skip
        for r in range(rounds + 2):  # two spare rounds in case a round proposes only known schedules
            if self.count("evolutionary") >= want:
                break
            t0 = time.perf_counter()
            cands = ctx.generate_measure_candidates()
            if not cands:
                break
            t = time.perf_counter() - t0
            cands = list(cands)[: want - self.count("evolutionary")]
            new = self.add(ctx, cands, "evolutionary", {"round": r, "population_size": pop}, t)
            new_ids = [schedule_id(c.sch.mod) for c in new]
            learn(new_ids)
            ctx.notify_runner_results(cands, [ms.runner.RunnerResult([1.0], None) for _ in cands])

    def reference(self) -> None:
        """Compile and run the unscheduled workload once: the output every schedule must match."""
        from pipelines.tvm.bench import LoadedTVMProgram

        lib = self.out_dir / "lib" / "reference.so"
        status, error, _ = compile_to(self.mod, self.target, lib)
        if status != "ok":
            log.warning("%s: reference does not compile (%s); results will not be checked", self.pid, error)
            return
        prog = LoadedTVMProgram(lib, self.args)
        prog.run()
        np.save(self.out_dir / "reference.npy", prog.output())


def sample_program(
    entry_path: str | os.PathLike, out_dir: str | os.PathLike, cfg: dict | None, cores: int, threads: int = 1
) -> pl.DataFrame:
    """Sample, compile and featurize the schedules of one program (see the module docstring).

    ``cores`` is what the schedules target (``llvm -num-cores``) and the quick timings
    run on; ``threads`` what MetaSchedule's feature extraction and XGBoost use here."""
    cfg = {**DEFAULT_SAMPLING, **(cfg or {})}
    unknown = set(cfg) - set(DEFAULT_SAMPLING)
    if unknown:
        raise UserError(f"unknown TVM sampling keys {sorted(unknown)}")
    os.environ.setdefault("TVM_NUM_THREADS", str(cores))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entry = json.loads(Path(entry_path).read_text())
    light_intrinsics(cfg["full_intrinsics"])
    t0 = time.perf_counter()
    s = ProgramSampler(entry, out_dir, cfg, cores, threads)
    wf = s.workload_features()
    s.reference()
    s.replay()
    s.evolutionary()
    frame = pl.from_arrow(schema.from_rows("tvm_candidates", [s.rows[sid] for sid in s.order]))
    schema.write_table("tvm_candidates", frame, out_dir / "candidates.parquet")
    schema.write_json(
        {
            **{k: entry[k] for k in ("program_id", "origin", "source", "seed", "params", "spec")},
            "description": s.workload.description,
            "macs": s.workload.macs,
            "n_inputs": s.workload.n_inputs,
            "output_shape": s.workload.output_shape,
            "args": s.args,
            "target": {"kind": "llvm", "num-cores": cores},
            "graph": s.graph,
            "workload_features": wf,
            "sampling": cfg,
        },
        out_dir / "program.json",
    )
    ok = frame.filter(pl.col("compile_status") == "ok").height
    print(
        f"{s.pid}: {frame.height} distinct schedules ({s.count('replay_trace')} replay_trace, "
        f"{s.count('evolutionary')} evolutionary), {ok} compiled, {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return frame
