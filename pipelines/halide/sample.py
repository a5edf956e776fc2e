"""Sample candidate schedules for one program and compile each to a shared library.

This is the parallel half of the dataset build (timing, in :mod:`pipelines.bench`,
is the serial half). Per program it:

1. runs Adams2019 once with ``HL_DEBUG_AUTOSCHEDULE=2`` and keeps its DAG dump,
   the source of the program graph and of the featurization's stage order;
2. draws schedules: each sampler of the mix (:mod:`pipelines.halide.samplers`) over its
   seeds until it has its number of *distinct* schedules, then the reference
   points (Adams2019's beam search, Mullapudi2016, Li2018);
3. compiles every distinct schedule ahead of time to an object file and links it
   into a shared library that the timing harness loads.

Every draw runs in a forked child, so a Halide abort, a hang or a segfault in an
autoscheduler or in LLVM becomes a candidate row with a status, never a lost job.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from featurize import schema
from featurize.halide.graph import parse_dag_dump, without_uniquifiers
from pipelines.halide.autoschedule import autoschedule, host_target, normalize_schedule, schedule_hash
from pipelines.halide.programs import has_manual_schedule, load_program, read_entry
from pipelines.halide.samplers import MANUAL, RECORD_ONLY, Draw, MixSampler, plan_draws

FN_NAME = "pg_pipeline"


# -- child-process work ----------------------------------------------------------


def _child_schedule(conn, entry: dict, autoscheduler: str, params: dict) -> None:
    """In a forked child: build, autoschedule, report, and compile if asked."""
    # Halide prints its lowering warnings ("Not folding Func ...") on stdout; they are
    # diagnostics, so they go to stderr with the rest, and stdout stays the command's output.
    sys.stdout.flush()
    os.dup2(2, 1)
    try:
        t0 = time.perf_counter()
        if autoscheduler == MANUAL:
            program = load_program(entry, manual=True)
            text, feat = manual_schedule_text(entry, program), b""
        else:
            program = load_program(entry)
            text, feat = autoschedule(program.pipeline, autoscheduler, params)
        conn.send(("scheduled", text, feat, time.perf_counter() - t0))
        lib_path = conn.recv()
        if lib_path is None:
            return
        t0 = time.perf_counter()
        runtime = Path(lib_path).parent / RUNTIME_OBJECT
        compile_pipeline(program.pipeline, lib_path, runtime=runtime if runtime.exists() else None)
        conn.send(("compiled", time.perf_counter() - t0))
    except BaseException as exc:  # report anything, then die quietly
        conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=3)))
    finally:
        conn.close()


RUNTIME_OBJECT = "halide_runtime.o"

LOOP_NEST_LINES = ("for", "produce", "consume", "allocate")


def manual_schedule_text(entry: dict, program) -> str:
    """A generator's manual schedule as a candidate's ``schedule_text``: Halide prints no
    schedule it did not make, so the text names the generator and lists the loop nest its
    schedule lowers to (a comment, as C++: the schedule itself stays in ``generate()``)."""
    import halide as hl

    with tempfile.NamedTemporaryFile("r", suffix=".stmt") as stmt:
        program.pipeline.compile_to_lowered_stmt(stmt.name, program.pipeline.infer_arguments(), hl.StmtOutputFormat.Text,
                                                 host_target())  # fmt: skip
        loops = [line.rstrip() for line in stmt.read().splitlines() if line.lstrip().startswith(LOOP_NEST_LINES)]
    where = f"{entry['source']}:{entry.get('generator') or ''}".rstrip(":")
    params = json.dumps(entry.get("generator_params") or {}, sort_keys=True)
    head = [f"// the manual schedule of {where} (generate() with no autoscheduler), GeneratorParams {params}",
            "// its loop nest, as Halide lowers it:"]
    return "\n".join(head + [f"// {line}" for line in loops]) + "\n"


def compile_runtime(path: str | os.PathLike, target=None) -> None:
    """Compile Halide's runtime once, to be linked into every schedule's library.

    Compiling each schedule without its own copy of the runtime makes it 3-6x
    faster (0.5 s instead of 1.5 s for a ResNet block here).
    """
    import halide as hl

    path = Path(path)
    schema.atomic_write_bytes(path, lambda tmp: hl.compile_standalone_runtime(tmp, target or host_target()))


def compile_pipeline(pipeline, lib_path: str | os.PathLike, target=None, runtime: str | os.PathLike | None = None) -> None:
    """AOT-compile a scheduled pipeline to ``lib_path`` (a shared library).

    With ``runtime`` (an object from :func:`compile_runtime` for the same target)
    the pipeline is compiled without a runtime of its own and linked against it.
    """
    import halide as hl

    lib_path = Path(lib_path)
    lib_path.parent.mkdir(parents=True, exist_ok=True)
    target = target or host_target()
    if runtime is not None:
        target = target.with_feature(hl.TargetFeature.NoRuntime)
    with tempfile.TemporaryDirectory(dir=lib_path.parent) as tmp:
        obj = os.path.join(tmp, "pipeline.o")
        pipeline.compile_to({hl.OutputFileType.object: obj}, pipeline.infer_arguments(), FN_NAME, target)
        tmp_lib = os.path.join(tmp, lib_path.name)
        objects = [obj] + ([str(runtime)] if runtime is not None else [])
        subprocess.run(
            ["cc", "-shared", "-o", tmp_lib, *objects, "-lpthread", "-ldl", "-lm"],
            check=True,
            capture_output=True,
            text=True,
        )
        os.replace(tmp_lib, lib_path)


def _child_dump(entry: dict, parallelism: int, log_path: str) -> None:
    """In a forked child: run Adams2019 with its DAG dump on, stderr into ``log_path``."""
    os.environ["HL_DEBUG_AUTOSCHEDULE"] = "2"
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.dup2(fd, 1)
    try:
        program = load_program(entry)
        autoschedule(program.pipeline, "Adams2019", {"parallelism": parallelism, "beam_size": 1})
    except BaseException as exc:
        # To the log's descriptor itself: sys.stderr may be a Python object (pytest's capture).
        os.write(fd, traceback.format_exc().encode())
        if isinstance(exc, schema.UserError):
            os.write(fd, f"{USER_ERROR_MARK}{exc}\n".encode())
        os._exit(1)
    os._exit(0)


_CTX = mp.get_context("fork")
#: Marks a user error's message in a child's log (the parent raises it as the user's error).
USER_ERROR_MARK = "perfgraph user error: "


def _child_exit_code(fn, args: tuple, timeout_s: float, what: str) -> int:
    """Run ``fn(*args)`` in a forked child (LLVM aborts and hangs stay there); its exit code.
    A child still running after ``timeout_s`` is killed: ``what did not finish``."""
    p = _CTX.Process(target=fn, args=args)
    p.start()
    p.join(timeout_s)
    if p.is_alive():
        p.kill()
        p.join()
        raise RuntimeError(f"{what} did not finish in {timeout_s} s")
    return p.exitcode


def in_child(fn, *args, timeout_s: float) -> None:
    """Run ``fn(*args)`` in a forked child; an error if it fails or does not finish."""
    code = _child_exit_code(fn, args, timeout_s, fn.__name__)
    if code != 0:
        raise RuntimeError(f"{fn.__name__} failed (exit code {code})")


def dag_dump(entry: dict, parallelism: int, timeout_s: float) -> str:
    """The autoscheduler's DAG dump for a program (text)."""
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        what = f"{entry['program_id']}: Adams2019"
        code = _child_exit_code(_child_dump, (entry, parallelism, log.name), timeout_s, what)
        text = log.read()
        if code != 0 and USER_ERROR_MARK in text:  # the program's own problem: its one line
            raise schema.UserError(text.rsplit(USER_ERROR_MARK, 1)[1].strip())
        if code != 0 and entry.get("origin") == "user":
            said = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith(" ")]
            raise schema.UserError(f"{entry['source']}: Halide's Adams2019 cannot schedule it: "
                                   f"{said[-1] if said else f'exit code {code}'}")  # fmt: skip
        if code != 0:
            raise RuntimeError(f"{what} failed (exit {code}):\n{text[-2000:]}")
        return text


@dataclass
class Outcome:
    status: str  # ok | not_compiled | compile_error | crash | timeout | duplicate | schedule_error
    text: str = ""
    featurization: bytes = b""
    sample_time_s: float = float("nan")
    compile_time_s: float = float("nan")
    error: str = ""


def run_draw(entry: dict, draw: Draw, lib_path_for, seen: dict, weights_dir: str | os.PathLike) -> Outcome:
    """Run one draw in a child; compile its schedule unless ``seen`` already has it.

    ``lib_path_for(schedule_id)`` names the library to write (``None``: schedule only,
    status ``not_compiled``); ``seen`` maps schedule ids to their outcome;
    ``weights_dir`` holds random weights files.
    """
    parent, child = _CTX.Pipe()
    params = draw.autoscheduler_params(weights_dir)
    p = _CTX.Process(target=_child_schedule, args=(child, entry, draw.autoscheduler, params))
    p.start()
    child.close()
    text = ""  # the schedule, once the child has sent it: a crash compiling it is that schedule's row
    try:
        if not parent.poll(draw.timeout_s):
            return Outcome("timeout", error=f"autoscheduler gave no schedule in {draw.timeout_s} s")
        msg = parent.recv()
        if msg[0] == "error":
            return Outcome("schedule_error", error=msg[1])
        _, text, feat, sample_time = msg
        sid = schedule_hash(text)
        if sid in seen:
            parent.send(None)
            return Outcome("duplicate", text=text)
        lib_path = lib_path_for(sid)
        parent.send(None if lib_path is None else str(lib_path))
        if lib_path is None:
            return Outcome("not_compiled", text, feat, sample_time)
        out = Outcome("ok", text, feat, sample_time)
        if not parent.poll(draw.timeout_s + 120):
            out.status, out.error = "timeout", "compilation did not finish in time"
        else:
            msg = parent.recv()
            if msg[0] == "error":
                out.status, out.error = "compile_error", msg[1]
            else:
                out.compile_time_s = msg[1]
        return out
    except EOFError:
        p.join(5)
        return Outcome("crash", text, error=f"child died with exit code {p.exitcode}")
    finally:
        if p.is_alive():
            p.kill()
        p.join()
        parent.close()


def candidate_row(entry: dict, draw: Draw, out: Outcome) -> dict:
    """The ``candidates`` row of a drawn (and possibly compiled) schedule."""
    sid = schedule_hash(out.text)
    return {
        "program_id": entry["program_id"],
        "schedule_id": sid,
        "sampler": draw.sampler,
        "sampler_params": json.dumps(draw.params, sort_keys=True),
        "autoscheduler": draw.autoscheduler,
        "has_featurization": len(out.featurization) > 0,
        "featurizer": "adams2019" if out.featurization else "",
        "schedule_text": out.text,
        "sample_time_s": out.sample_time_s,
        "n_duplicates": 0,
        "compile_status": out.status,
        "compile_error": out.error,
        "compile_time_s": out.compile_time_s,
        "library": "" if out.status == "not_compiled" else f"lib/{sid}.so",
        "featurization": out.featurization,
    }


class _Claims:
    """The schedules drawn so far, as :func:`run_draw` asks: a draw that finds its schedule new
    claims it, so that of draws running at once only one compiles it."""

    def __init__(self, rows: dict) -> None:
        self.rows, self.in_flight, self.lock = rows, set(), threading.Lock()

    def __contains__(self, schedule_id: str) -> bool:
        with self.lock:
            if schedule_id in self.rows or schedule_id in self.in_flight:
                return True
            self.in_flight.add(schedule_id)
            return False


def draw_candidates(
    entry: dict, mix: list[MixSampler], refs: list[Draw], lib_path_for, out_dir: Path, known: dict | None = None,
    jobs: int = 1,
) -> dict[str, dict]:
    """Run the reference draws, then each mix sampler's until it has its distinct schedules.

    Returns the candidate rows by schedule id (``known``'s rows first: schedules the program
    already has, which count as duplicates when drawn again); a schedule drawn again counts
    as a duplicate of the first draw's row, and a draw that gave no schedule is reported on stderr.
    ``jobs``: a sampler's draws run that many at a time (each in its own child), recorded in
    draw order, so the rows are those of one at a time; a batch's draws past the sampler's
    count are dropped."""
    rows: dict[str, dict] = {sid: dict(row) for sid, row in (known or {}).items()}
    jobs = max(1, jobs)

    def record(draw: Draw, out: Outcome) -> None:
        if out.status == "duplicate":
            rows[schedule_hash(out.text)]["n_duplicates"] += 1
            return
        if out.status in ("schedule_error", "timeout", "crash") and not out.text:
            print(f"{entry['program_id']}: {draw.sampler} {draw.params}: {out.status}: {out.error}", file=sys.stderr)
            return
        rows[schedule_hash(out.text)] = candidate_row(entry, draw, out)

    with tempfile.TemporaryDirectory(dir=out_dir) as weights_dir:
        # The reference picks first, so each owns its row (Halide's default pick is found by its
        # sampler name) and a sampler that draws the same schedule counts it as a duplicate.
        for draw in refs:
            record(draw, run_draw(entry, draw, lib_path_for, rows, weights_dir))
        for sampler in mix:
            n_distinct = 0
            draws = list(sampler.draws)
            with ThreadPoolExecutor(jobs) as pool:  # threads wait on the children
                for start in range(0, len(draws), jobs):
                    if n_distinct >= sampler.wanted:
                        break
                    batch = draws[start:start + jobs]
                    claims = _Claims(rows)
                    outs = list(pool.map(lambda d: run_draw(entry, d, lib_path_for, claims, weights_dir), batch))
                    for draw, out in zip(batch, outs):
                        if n_distinct >= sampler.wanted:
                            break
                        sid = schedule_hash(out.text) if out.text else None
                        if out.status == "duplicate" and sid not in rows:
                            # A later draw of the batch claimed it first: the earlier draw owns the row,
                            # with that draw's outcome (a crash there left no schedule text: a crash here).
                            out = next((o for o in outs if o.status != "duplicate" and o.text and schedule_hash(o.text) == sid),
                                       Outcome("crash", out.text, error="the draw compiling it beside this one died"))  # fmt: skip
                        elif out.status != "duplicate" and sid in rows:
                            out = Outcome("duplicate", text=out.text)
                        before = len(rows)
                        record(draw, out)
                        n_distinct += len(rows) - before
            if n_distinct < sampler.wanted:
                print(
                    f"{entry['program_id']}: {sampler.name}: only {n_distinct} distinct schedules "
                    f"in {len(sampler.draws)} draws (wanted {sampler.wanted})",
                    file=sys.stderr,
                )
    return rows


_FRESH_VAR = re.compile(r"\bv\d+\b")


def _canonical_names(schedule: str) -> str:
    """A schedule's text without what depends on the process that made it: the names Halide
    gives Funcs a process built before ("f$1", declared as ``Func f_1``; :func:`normalize_schedule`
    names declared Funcs by index), and the numbers of the fresh Vars (``v15``) an autoscheduler
    creates from a process-wide counter, renumbered by first use."""
    fresh: dict[str, str] = {}
    text = without_uniquifiers(normalize_schedule(schedule))
    return _FRESH_VAR.sub(lambda m: fresh.setdefault(m.group(0), f"v{len(fresh)}"), text)


def featurize_other_schedules(entry: dict, rows: dict[str, dict], dag, timeout_s: float,
                              output_shapes: list[list[int]] | None = None) -> None:  # fmt: skip
    """Featurize the candidates no Adams2019 search featurized (Mullapudi2016's, Li2018's, a
    generator's manual schedule) with the loop-nest reader (:mod:`featurize.halide.loopnest`):
    its 39 schedule features of the schedule as lowered, beside the pipeline features and the 4
    schedule-independent ones of the program's Adams2019 featurization (the same for every
    schedule). Rows are updated in place (``featurizer`` "loopnest"); a schedule the reader
    cannot lower, or whose reschedule is not the candidate's, stays unfeaturized, said on stderr.
    ``output_shapes``: the outputs' estimates, for a program whose Python side cannot say them."""
    from featurize.halide import loopnest
    from featurize.halide.features import FEATURES_PER_STAGE, NUM_SCHEDULE_FEATURES, SCHEDULE_FEATURE_NAMES

    adams = next((r["featurization"] for r in rows.values() if r["featurizer"] == "adams2019"), None)
    if adams is None:
        return
    records = np.frombuffer(adams, dtype="<f4").reshape(-1, FEATURES_PER_STAGE)
    invariant = [dict(zip(SCHEDULE_FEATURE_NAMES, r[:NUM_SCHEDULE_FEATURES].tolist())) for r in records]
    for sid, row in rows.items():
        if row["has_featurization"] or row["compile_status"] not in ("ok", "not_compiled"):
            continue
        params = {k: v for k, v in json.loads(row["sampler_params"]).items() if k not in RECORD_ONLY}
        where = f"{entry['program_id']}: {row['sampler']} schedule {sid}"
        try:
            lowered = loopnest.lower_in_child(entry, row["autoscheduler"], params, timeout_s, output_shapes)
            features = loopnest.features_from_lowering(lowered, dag, invariant)
        except (RuntimeError, subprocess.TimeoutExpired, loopnest.StmtParseError) as exc:
            print(f"{where}: not featurized: {exc}", file=sys.stderr)
            continue
        again, drawn = (_canonical_names(t).splitlines() for t in (lowered["schedule"], row["schedule_text"]))
        if row["autoscheduler"] != MANUAL and again != drawn:
            first = next((f"{a!r} vs {b!r}" for a, b in zip(again, drawn) if a != b), "lengths differ")
            print(f"{where}: not featurized: scheduling it again gave another schedule ({first})", file=sys.stderr)
            continue
        values = np.array([[f[n] for n in SCHEDULE_FEATURE_NAMES] for f in features], dtype="<f4")
        if values.shape[0] != records.shape[0] or not np.isfinite(values).all():
            print(f"{where}: not featurized: {int((~np.isfinite(values)).sum())} features not read", file=sys.stderr)
            continue
        ours = records.copy()
        ours[:, :NUM_SCHEDULE_FEATURES] = values
        row.update(has_featurization=True, featurizer="loopnest", featurization=ours.tobytes())


def _compile_unscheduled(entry: dict, lib_path: str) -> None:
    compile_pipeline(load_program(entry).pipeline, lib_path)


def _output_shapes(entry: dict, program, rows: dict[str, dict], out_dir: Path, timeout_s: float) -> list[list[int]]:
    """The program's output shapes. A user's outputs' estimates are only in a compiled pipeline's
    metadata: a compiled candidate's, else the program compiled unscheduled, then removed."""
    if program.output_shapes:
        return [list(s) for s in program.output_shapes]
    from pipelines.harness import output_extents

    lib = next((out_dir / r["library"] for r in rows.values() if r["compile_status"] == "ok"), None)
    if lib is not None:
        return output_extents(str(lib))
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        in_child(_compile_unscheduled, entry, str(Path(tmp) / "estimates.so"), timeout_s=timeout_s)
        return output_extents(str(Path(tmp) / "estimates.so"))


def compile_program(
    entry_path: str | os.PathLike, out_dir: str | os.PathLike, cfg: dict, parallelism: int, compile_libraries: bool = True
) -> pl.DataFrame:
    """Sample and compile one program's candidates; write ``dag.log`` and ``candidates.parquet``.

    Returns the candidates table. A program whose DAG cannot be analysed raises
    (nothing can be featurized without it); every per-schedule failure is a row.
    With ``compile_libraries=False`` the schedules are drawn and featurized but not
    compiled (``compile_status`` ``not_compiled``): what scoring with a model needs.
    """
    entry = read_entry(entry_path)
    mix, refs = plan_draws(cfg, parallelism)  # a missing weights file stops it before any work
    # A generator's own schedule, where the program is one that has it.
    refs = [d for d in refs if d.autoscheduler != MANUAL or has_manual_schedule(entry)]
    out_dir = Path(out_dir)
    lib_dir = out_dir / "lib"
    lib_dir.mkdir(parents=True, exist_ok=True)
    dump = dag_dump(entry, parallelism, cfg["timeout_s"])
    schema.atomic_write_bytes(out_dir / "dag.log", lambda tmp: Path(tmp).write_text(dump))
    program = load_program(entry)
    schema.write_json(
        {
            **entry,
            "op_kinds": program.op_kinds,
            "output_shapes": [list(s) for s in program.output_shapes],
            "macs": program.macs,
        },
        out_dir / "program.json",
    )

    if compile_libraries:
        in_child(compile_runtime, lib_dir / RUNTIME_OBJECT, timeout_s=cfg["timeout_s"])

    def lib_path_for(sid: str) -> Path | None:
        return lib_dir / f"{sid}.so" if compile_libraries else None

    rows = draw_candidates(entry, mix, refs, lib_path_for, out_dir)
    if any(not r["has_featurization"] for r in rows.values()):
        shapes = _output_shapes(entry, program, rows, out_dir, cfg["timeout_s"])
        featurize_other_schedules(entry, rows, parse_dag_dump(dump), cfg["timeout_s"], shapes)
    table = schema.from_rows("candidates", list(rows.values()))
    schema.write_table("candidates", table, out_dir / "candidates.parquet")
    return pl.from_arrow(table)
