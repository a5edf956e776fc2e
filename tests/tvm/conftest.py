"""Fixtures of the TVM tests: one tiny program sampled, timed and featurized once per session.

Skipped as a whole when TVM (``apache-tvm``) is not installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("tvm", reason="apache-tvm is not installed")

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


def _entry(path: Path, program_id: str, spec: dict, origin: str = "random") -> Path:
    entry = {"program_id": program_id, "origin": origin, "source": "tests", "seed": 0 if origin == "random" else None,
             "params": {}, "spec": spec}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entry))
    return path


@pytest.fixture(scope="session")
def tvm_work(tmp_path_factory) -> dict:
    """Two programs through sample -> bench -> featurize: ``{"work": [dirs], "data": dataset dir}``."""
    from featurize.tvm.graph import featurize_dataset
    from pipelines.protocol import Protocol
    from pipelines.tvm.bench import bench_program
    from pipelines.tvm.sample import sample_program

    os.environ.setdefault("TVM_NUM_THREADS", "1")
    base = tmp_path_factory.mktemp("tvm")
    dirs = []
    for pid, spec, origin in (("t00000", DENSE_SPEC, "random"), ("tzoo_softmax", SOFTMAX_SPEC, "zoo")):
        wd = base / "work" / pid
        entry = _entry(wd / "entry.json", pid, spec, origin)
        sample_program(entry, wd, TINY_SAMPLING, cores=1, threads=1)
        bench_program(wd, wd / "measurements.parquet", wd / "timing_samples.parquet", wd / "machine.json",
                      Protocol.from_config({**TINY_TIMING, "threads": 1}), calibration_dir=base / "calibration")  # fmt: skip
        dirs.append(wd)
    counts = featurize_dataset(dirs, None, base / "data")
    return {"work": dirs, "data": base / "data", "counts": counts}
