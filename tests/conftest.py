from __future__ import annotations

import os

import pytest

# Tests run on small machines beside other work: keep every library to one thread.
os.environ.setdefault("HL_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

#: A sampling config small enough for tests: two random schedules, no beam search.
SMALL_SAMPLING = {
    "timeout_s": 60,
    "random": {"count": 2, "dropout": 1, "max_attempts": 10},
    "beam_search": {"enabled": False, "beam_size": 32, "timeout_s": 10},
    "reference_autoschedulers": [],
}

#: Timing that takes a fraction of a second per schedule.
FAST_TIMING = {
    "warmup_s": 0.01,
    "min_sample_s": 0.0005,
    "min_samples": 3,
    "max_samples": 10,
    "min_time_s": 0.01,
    "max_time_s": 0.1,
    "target_rel_precision": 0.05,
}


@pytest.fixture
def small_sampling() -> dict:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in SMALL_SAMPLING.items()}


@pytest.fixture
def fast_timing() -> dict:
    return dict(FAST_TIMING)
