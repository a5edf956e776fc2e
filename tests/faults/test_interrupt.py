"""kill -9 in the middle of timing, then a rerun: nothing lost, nothing half-written."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from featurize import schema
from tests.conftest import new_workdir, snakemake


def content_hash(frame: pl.DataFrame, keys: list[str]) -> str:
    """Order-independent hash of a table's content."""
    return hashlib.sha256(frame.sort(keys).write_csv().encode()).hexdigest()


def test_kill_during_timing_then_rerun(tmp_path, tiny_run) -> None:
    work = new_workdir(tmp_path / "killed")
    proc = snakemake(work, "featurize", start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progs = work / "results/_work/tiny"
    deadline = time.monotonic() + 300
    # Wait until timing has started and at least one program is fully timed (its bench job
    # writes machine.json last), give Snakemake a moment to record that, then kill.
    while not list(progs.glob("*/machine.json")):
        assert proc.poll() is None, "the run ended before timing started"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(2)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the workflow and every job it started
    proc.wait()
    assert not (work / "results/tiny/measurements.parquet").exists()

    # Nothing that looks finished is half-written.
    for path in work.glob("results/**/*.parquet"):
        pq.read_metadata(path)

    unlock = snakemake(work, "--unlock")
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    # The jobs cut off by the kill are rerun; every bench job that had finished is kept.
    plan = snakemake(work, "featurize", "--rerun-incomplete", "--dry-run")
    rerun_progs = set(re.findall(r"rule bench:(?:(?!\nrule ).)*?wildcards: prog=(\w+)", plan.stdout, re.S))
    finished = {p.parent.name for p in progs.glob("*/machine.json")} - rerun_progs
    assert finished, "no bench job had finished before the kill"
    done_before = {progs / p / "measurements.parquet": (progs / p / "measurements.parquet").stat().st_mtime_ns
                   for p in finished}  # fmt: skip
    rerun = snakemake(work, "featurize", "--rerun-incomplete")
    assert rerun.returncode == 0, rerun.stderr[-3000:]

    # Finished timings were reused, not redone.
    for path, mtime in done_before.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was timed again"

    resumed = schema.read_dataset(work / "results/tiny")
    clean = schema.read_dataset(tiny_run / "results/tiny")
    # Same programs and schedules as an uninterrupted run (this is also the determinism check),
    for table, keys in (("programs", ["program_id"]), ("schedules", ["program_id", "schedule_id"])):
        assert content_hash(resumed[table], keys) == content_hash(clean[table], keys), table
    # and one main-pass measurement row for each schedule.
    first = resumed["measurements"].filter(pl.col("timing_pass") == 1)
    assert sorted(first["schedule_id"]) == sorted(resumed["schedules"]["schedule_id"])


def test_programs_and_schedules_do_not_depend_on_the_run(tiny_run, tmp_path) -> None:
    # Regenerate one program's entry by hand: byte-identical to the workflow's.
    entry = tiny_run / "results/_work/tiny/programs/r00000.json"
    out = tmp_path / "r00000.json"
    from pipelines.halide.cli import main
    import json
    import yaml

    params = yaml.safe_load((tiny_run / "config/config.yaml").read_text())["programs"]["random"]["params"]
    main(["generate", "--program-id", "r00000", "--seed", "0", "--params", json.dumps(params), "--out", str(out)])
    assert Path(out).read_bytes() == entry.read_bytes()
