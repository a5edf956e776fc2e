"""The workflow end to end on a tiny config: dataset tables, reruns, a single stage."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from featurize import schema

ROOT = Path(__file__).resolve().parents[2]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
         "--cores", "2", *args, "--resources", "bench_slot=1", "--configfile", str(workdir / "config/config.yaml")],
        capture_output=True, text=True, env=env, cwd=workdir,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("wf")
    (work / "config").mkdir()
    shutil.copy(ROOT / ".test/config_tiny.yaml", work / "config/config.yaml")
    run = snakemake(work, "featurize")
    assert run.returncode == 0, run.stderr[-3000:]
    return work


def test_dataset_has_every_table(tiny_run) -> None:
    data = schema.read_dataset(tiny_run / "results/tiny")
    assert set(data) == set(schema.TABLE_NAMES)
    assert set(data["programs"]["origin"]) == {"random", "zoo"}
    assert data["programs"].height == 3
    # Every schedule has one main-pass measurement; some have a noise-floor re-time.
    m = data["measurements"]
    assert m.filter(pl.col("timing_pass") == 1).height == data["schedules"].height
    assert m.filter(pl.col("timing_pass") == 2).height >= 1
    assert data["machines"].height == 1
    # Node-schedule features exist exactly for the featurized schedules, for every stage.
    n_nodes = dict(data["programs"].select("program_id", "n_nodes").iter_rows())
    feat = data["schedules"].filter(pl.col("has_featurization"))
    assert data["node_schedule_features"].height == sum(n_nodes[p] for p in feat["program_id"])


def test_rerun_does_nothing_and_one_stage_reruns_alone(tiny_run) -> None:
    again = snakemake(tiny_run, "featurize", "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr
    forced = snakemake(tiny_run, "featurize", "--forcerun", "featurize", "--dry-run")
    assert job_counts(forced.stdout + forced.stderr) == {"featurize": 1, "total": 1}


def job_counts(log: str) -> dict[str, int]:
    """The "Job stats" table of a Snakemake log."""
    counts = {}
    for line in log.split("Job stats:", 1)[-1].splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts
