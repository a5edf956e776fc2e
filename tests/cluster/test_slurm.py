"""The workflow through a real SLURM gives the same dataset as a local run.

Runs the tiny config (``.test/config_tiny.yaml``) up to the dataset tables through
``workflow/profiles/slurm`` (snakemake-executor-plugin-slurm), then checks, against
SLURM's own accounting (``sacct``) and a local run of the same config:

* every job of the run completed, one SLURM job per program's generate+compile group,
  per program's timing (and refine, when the config draws refine samples), and one each for
  retime and featurize;
* timing jobs asked for the whole node (``--exclusive``) and nothing of the run ran
  beside them; compile jobs took one core each and shared the node;
* the dataset has the same programs, graphs, schedules and features, and the same
  measured (program, schedule, pass) rows with the same statuses.

It needs the SLURM daemons, so it is skipped unless ``PERFGRAPH_SLURM=1``::

    .ci/slurm/install.sh && .ci/slurm/start.sh
    PERFGRAPH_SLURM=1 .venv/bin/python -m pytest tests/cluster -q
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from featurize.schema import read_dataset
from tests.conftest import ROOT, new_workdir

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("PERFGRAPH_SLURM") != "1",
        reason="needs running SLURM daemons: .ci/slurm/start.sh, then PERFGRAPH_SLURM=1",
    ),
    pytest.mark.write_disk,
]

PROFILE = ROOT / "workflow/profiles/slurm"
#: What .ci/slurm/start.sh sets up; another cluster can name its own.
ACCOUNT = os.environ.get("PERFGRAPH_SLURM_ACCOUNT", "perfgraph")
PARTITION = os.environ.get("PERFGRAPH_SLURM_PARTITION", "debug")
DATASET = "results/tiny"
#: The tables that must not depend on where the workflow ran.
SAME_TABLES = {
    "programs": ["program_id"],
    "nodes": ["program_id", "node_id"],
    "edges": ["program_id", "src", "dst"],
    "schedules": ["program_id", "schedule_id"],
    "node_schedule_features": ["program_id", "schedule_id", "node_id"],
}


@dataclass
class SlurmJob:
    job_id: str
    state: str
    comment: str  # the executor's rule_<rule>[_wildcards_<...>] or rule_<group>_<rules>
    start: dt.datetime
    end: dt.datetime
    node: str
    cpus: int
    mem_mb: int
    submit_line: str

    def overlaps(self, other: SlurmJob) -> bool:
        return self.start < other.end and other.start < self.end


def _env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def _check_cluster() -> None:
    """Fail (not skip) with the fix when PERFGRAPH_SLURM=1 but SLURM is not usable."""
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.fail("snakemake-executor-plugin-slurm is not installed: run .ci/slurm/install.sh")
    for tool in ("sbatch", "sacct", "sinfo"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: run .ci/slurm/install.sh")
    state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    if state.returncode != 0 or "idle" not in state.stdout.split():
        pytest.fail(f"no idle SLURM node ({(state.stdout + state.stderr).strip()!r}): run .ci/slurm/start.sh")


def _node_size() -> tuple[int, int]:
    """CPUs and memory (MB) of the node the jobs run on."""
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%c %m"], capture_output=True, text=True, check=True)
    cpus, mem = out.stdout.split()[:2]
    return int(cpus), int(mem.rstrip("+"))


def _mb(req_mem: str) -> int:
    """sacct's ReqMem ("2000M", "4G", "2000Mn") in MB."""
    value, unit = re.fullmatch(r"([\d.]+)([KMGT]?)\w*", req_mem).groups()
    return int(float(value) * {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024**2}[unit])


def _sacct(run_id: str) -> list[SlurmJob]:
    fields = "JobIDRaw,State,Comment,Start,End,NodeList,AllocCPUS,ReqMem,SubmitLine"
    since = (dt.datetime.now() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    out = subprocess.run(
        ["sacct", "-X", "-P", "-n", "--name", run_id, "-S", since, "-E", "now", f"--format={fields}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    jobs = []
    for line in out.stdout.splitlines():
        job_id, state, comment, start, end, node, cpus, mem, submit = line.split("|", 8)
        jobs.append(SlurmJob(job_id, state, comment, dt.datetime.fromisoformat(start),
                             dt.datetime.fromisoformat(end), node, int(cpus), _mb(mem), submit))  # fmt: skip
    return jobs


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory) -> tuple[Path, list[SlurmJob], float]:
    """The tiny config up to the dataset, through the SLURM profile: (workdir, its SLURM jobs, wall s)."""
    _check_cluster()
    work = new_workdir(tmp_path_factory.mktemp("slurm"))
    cmd = [sys.executable, "-m", "snakemake", "featurize", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(work), "--workflow-profile", str(PROFILE),
           "--configfile", str(work / "config/config.yaml"),
           # The site's settings, as the README shows them (the plugin checks the account with sacctmgr).
           "--default-resources", f"slurm_account={ACCOUNT}", f"slurm_partition={PARTITION}",
           # Poll SLURM every second at first (the default, 40 s, suits long jobs on a busy cluster).
           "--slurm-init-seconds-before-status-checks", "1"]  # fmt: skip
    t0 = time.monotonic()
    run = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=work, timeout=540)
    wall = time.monotonic() - t0
    assert run.returncode == 0, run.stderr[-4000:]
    found = re.search(r"SLURM run ID: (\S+)", run.stderr)
    assert found, "the SLURM executor did not report its run ID:\n" + run.stderr[-2000:]
    return work, _sacct(found.group(1)), wall


def _assert_same(remote: pl.DataFrame, local: pl.DataFrame, table: str) -> None:
    try:
        assert_frame_equal(remote, local)
    except AssertionError as exc:
        raise AssertionError(f"table {table} differs between the SLURM and the local run: {exc}") from None


def _programs(work: Path) -> int:
    return read_dataset(work / DATASET, tables=["programs"])["programs"].height


def _refines(work: Path) -> bool:
    """Whether the run's config draws refine samples (sampling.refine.count > 0)."""
    config = yaml.safe_load((work / "config/config.yaml").read_text())
    return config.get("sampling", {}).get("refine", {}).get("count", 0) > 0


def test_every_slurm_job_completed(slurm_run) -> None:
    work, jobs, wall = slurm_run
    n = _programs(work)
    print(f"SLURM run: {len(jobs)} jobs, {wall:.0f} s wall")
    assert jobs, "sacct knows no job of this run: is accounting (slurmdbd) running?"
    assert {j.state for j in jobs} == {"COMPLETED"}, [(j.job_id, j.comment, j.state) for j in jobs]
    kinds = [re.sub(r"_wildcards_.*", "", j.comment) for j in jobs]
    # refine is a SLURM job of its own only when it draws; with count 0 it runs on the submit host.
    refine = ["rule_refine"] * n if _refines(work) else []
    assert sorted(kinds) == sorted(
        ["rule_prepare_compile_generate"] * n + refine + ["rule_bench"] * n + ["rule_retime", "rule_featurize"]
    )


def test_timing_jobs_hold_the_whole_node(slurm_run) -> None:
    _, jobs, _ = slurm_run
    timing = [j for j in jobs if j.comment.startswith(("rule_bench", "rule_retime", "rule_refine"))]
    assert timing
    for t in timing:
        assert "--exclusive" in t.submit_line.split(), t.submit_line
        beside = [o.comment for o in jobs if o is not t and o.node == t.node and o.overlaps(t)]
        assert not beside, f"{t.comment} (SLURM job {t.job_id}) shared its node with {beside}"


def test_compile_jobs_pack(slurm_run) -> None:
    _, jobs, _ = slurm_run
    compile_jobs = [j for j in jobs if j.comment.startswith("rule_prepare")]
    assert all(j.cpus == 1 and "--exclusive" not in j.submit_line.split() for j in compile_jobs)
    cpus, mem_mb = _node_size()
    if len(compile_jobs) >= 2 and cpus >= 2 and mem_mb >= 2 * max(j.mem_mb for j in compile_jobs):
        assert any(a.overlaps(b) for i, a in enumerate(compile_jobs) for b in compile_jobs[i + 1 :]), (
            "no two compile jobs ran at once on a node with room for two"
        )


def test_slurm_dataset_matches_local(slurm_run, tiny_run) -> None:
    work, _, _ = slurm_run
    remote, local = read_dataset(work / DATASET), read_dataset(tiny_run / DATASET)
    for table, keys in SAME_TABLES.items():
        _assert_same(remote[table].sort(keys), local[table].sort(keys), table)
    # Timings differ from run to run; what was measured, and how it ended, does not.
    cols = ["program_id", "schedule_id", "timing_pass", "status"]
    _assert_same(remote["measurements"].select(cols).sort(cols), local["measurements"].select(cols).sort(cols),
                 "measurements")  # fmt: skip
    machines = set(remote["machines"]["machine_id"])
    assert set(remote["measurements"]["machine_id"]) <= machines
    assert remote["measurements"].filter(pl.col("status") == "ok").height > 0
