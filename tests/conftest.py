from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Tests run on small machines beside other work: keep every library to one thread.
os.environ.setdefault("HL_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

#: A sampling config small enough for tests: two dropout schedules, no beam search.
DROPOUT = {"count": 2, "beam_size": 1, "random_dropout": 1, "weights": "shipped", "max_attempts": 10}
SMALL_SAMPLING = {
    "timeout_s": 60,
    "samplers": {"adams2019_dropout": DROPOUT},
    "beam_search": {"enabled": False, "beam_size": 32, "timeout_s": 10},
    "reference_autoschedulers": [],
}

#: A timing protocol that takes a fraction of a second per schedule.
FAST_TIMING = {"rounds": 3, "window_s": 0.005, "calibration_s": 0.003, "max_extra_rounds": 1, "timeout_s": 30}


@pytest.fixture
def small_sampling() -> dict:
    import copy

    return copy.deepcopy(SMALL_SAMPLING)


@pytest.fixture
def fast_timing() -> dict:
    return dict(FAST_TIMING)


@pytest.fixture
def fast_protocol():
    from pipelines.protocol import Protocol

    return Protocol.from_config(FAST_TIMING)


def snakemake(workdir: Path, *args: str, **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    """Run the workflow in ``workdir`` (which holds config/config.yaml) with this Python's tools."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", *args, "--resources", "bench_slot=1",
           "--configfile", str(workdir / "config/config.yaml")]  # fmt: skip
    if popen:
        return subprocess.Popen(cmd, env=env, cwd=workdir, **popen)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)


def new_workdir(base: Path, config: Path = ROOT / ".test/config_tiny.yaml") -> Path:
    (base / "config").mkdir(parents=True)
    shutil.copy(config, base / "config/config.yaml")
    return base


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One uninterrupted run of the tiny config: dataset, every model, the report."""
    work = new_workdir(tmp_path_factory.mktemp("tiny"))
    run = snakemake(work)
    assert run.returncode == 0, run.stderr[-3000:]
    return work


# --- TVM: one tiny program sampled, timed and featurized once per session ---------------------

#: Small enough to sample, compile and time in a few seconds.
TINY_SAMPLING = {
    "replay_trace": 4,
    "evolutionary": 2,
    "max_attempts": 3,
    "rounds": 1,
    "population_size": 16,
    "genetic_num_iters": 1,
}
TINY_TIMING = {"rounds": 2, "window_s": 0.003, "calibration_s": 0.002, "max_extra_rounds": 1, "timeout_s": 30}
#: A dense layer with bias and relu: three blocks, two pointwise edges.
DENSE_SPEC = {"kind": "dense", "params": {"n": 16, "m": 32, "k": 64, "bias": True, "act": "relu"}}
SOFTMAX_SPEC = {"kind": "softmax", "params": {"m": 8, "n": 32}}


def _tvm_entry(path: Path, program_id: str, spec: dict, origin: str = "random") -> Path:
    entry = {"program_id": program_id, "origin": origin, "source": "tests", "seed": 0 if origin == "random" else None,
             "params": {}, "spec": spec}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entry))
    return path


@pytest.fixture(scope="session")
def tvm_work(tmp_path_factory) -> dict:
    """Two TVM programs through sample -> bench -> featurize: ``{"work": [dirs], "data": dataset dir}``
    (the TVM tests of featurize and models share it; skipped when apache-tvm is not installed)."""
    pytest.importorskip("tvm", reason="apache-tvm is not installed")
    from featurize.tvm.graph import featurize_dataset
    from pipelines.protocol import Protocol
    from pipelines.tvm.bench import bench_program
    from pipelines.tvm.sample import sample_program

    os.environ.setdefault("TVM_NUM_THREADS", "1")
    base = tmp_path_factory.mktemp("tvm")
    dirs = []
    for pid, spec, origin in (("t00000", DENSE_SPEC, "random"), ("tzoo_softmax", SOFTMAX_SPEC, "zoo")):
        wd = base / "work" / pid
        entry = _tvm_entry(wd / "entry.json", pid, spec, origin)
        sample_program(entry, wd, TINY_SAMPLING, cores=1, threads=1)
        bench_program(wd, wd / "measurements.parquet", wd / "timing_samples.parquet", wd / "machine.json",
                      Protocol.from_config({**TINY_TIMING, "threads": 1}), calibration_dir=base / "calibration")  # fmt: skip
        dirs.append(wd)
    counts = featurize_dataset(dirs, None, base / "data")
    return {"work": dirs, "data": base / "data", "counts": counts}
