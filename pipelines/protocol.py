"""The timing protocol for a noisy shared machine: rounds, calibration, robust labels, noise.

On a shared virtual machine the speed of the cores changes over tens of seconds with the
load of other tenants. One long timing window per schedule captures whatever phase it lands
in (two passes over the same schedules differed by 15-40% MAPE here), so a label is built
from many short windows spread over the whole job instead:

* **Rounds.** A program's candidates are timed ``rounds`` times, each round in a seeded
  shuffled order (:func:`round_orders`), one short window per candidate and round. A slow
  phase then hits different candidates in different rounds instead of one candidate in all.
* **Calibration.** Every window starts with a short run of a fixed calibration kernel
  (:mod:`pipelines.calibration`), in the same child process, right before the candidate.
  Its time is the machine's speed at that moment; its series over the job is the
  machine-speed monitor.
* **Slow windows.** A window whose calibration time is more than ``slow_factor`` times the
  job's fast calibration time (its 10th percentile) ran while the machine was slow: it is
  flagged (:func:`flag_slow`), left out of the label, and the candidate is re-measured in
  extra rounds (:func:`needs_more`) up to ``max_extra_rounds``; so is a candidate whose two
  fastest windows still disagree by more than ``agree_rel``.
* **Label.** Per window the statistic is the fastest sample (noise on a CPU only ever adds
  time); the label of a schedule is an aggregate over its good windows
  (:func:`label`): ``min`` (default), ``median``, or ``calibrated`` (the median of
  window / calibration ratios, times the job's fast calibration time).

Two noise figures come from the same data (:func:`split_half_pairs`, :func:`drift_pairs`):
the label from the odd rounds against the label from the even rounds (how well the
protocol agrees with itself within a job), and a later re-time against the label (how
much the label moves over time: what a user re-measuring a schedule later would see).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass, fields

import numpy as np

from featurize.schema import UserError

AGGREGATES = ("min", "median", "calibrated")


@dataclass(frozen=True)
class Protocol:
    """The settings of the timing protocol (the config's ``timing`` section).

    Args:
        threads (int): Threads a schedule runs on while timed (Halide's or TVM's pool);
            0 means every core the process may use. (default: :obj:`0`)
        pin (bool): Pin the timing process to the last ``threads`` cores it may use, so the
            timed code always runs on the same cores. (default: :obj:`True`)
        rounds (int): Windows per candidate, one per shuffled round. (default: :obj:`5`)
        window_s (float): Length of one window of candidate runs. (default: :obj:`0.04`)
        min_runs (int): Fewest timed runs in a window, however long each run is. (default: :obj:`3`)
        min_sample_s (float): Very short runs are repeated until one sample lasts this
            long (the clock's resolution and call overhead matter below ~10 us). (default: :obj:`0.0005`)
        warmup_runs (int): Untimed runs before each window (first-touch page faults, caches,
            the thread pool's start). (default: :obj:`2`)
        calibration_s (float): Length of the calibration window before each candidate window.
            (default: :obj:`0.015`)
        slow_factor (float): A window whose calibration time exceeds this multiple of the
            job's fast calibration time is flagged slow. (default: :obj:`1.25`)
        max_extra_rounds (int): Extra windows a candidate may get to replace slow ones, or
            until its fastest windows agree. (default: :obj:`5`)
        agree_rel (float): A candidate is re-measured in extra rounds while its two fastest
            good windows differ by more than this fraction: the machine's fast phase was
            then seen once at most, and the fastest window may be a slow one. (default: :obj:`0.02`)
        aggregate (str): How good windows become the label: ``min``, ``median`` or
            ``calibrated``. (default: :obj:`"min"`)
        seed (int): Seed of the shuffled round orders. (default: :obj:`0`)
        timeout_s (float): One window with no result after this long is a timeout row.
            (default: :obj:`60`)
    """

    threads: int = 0
    pin: bool = True
    rounds: int = 5
    window_s: float = 0.04
    min_runs: int = 3
    min_sample_s: float = 0.0005
    warmup_runs: int = 2
    calibration_s: float = 0.015
    slow_factor: float = 1.25
    max_extra_rounds: int = 5
    agree_rel: float = 0.02
    aggregate: str = "min"
    seed: int = 0
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATES:
            raise UserError(f"timing.aggregate must be one of {AGGREGATES}, not {self.aggregate!r}")
        if self.rounds < 1:
            raise UserError("timing.rounds must be at least 1")

    @classmethod
    def from_config(cls, cfg: dict) -> "Protocol":
        known = {f.name for f in fields(cls)}
        unknown = set(cfg) - known
        if unknown:
            raise UserError(f"unknown timing settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**cfg)

    def window_settings(self) -> dict:
        """The keyword arguments of :func:`pipelines.harness.time_window`."""
        return {"window_s": self.window_s, "min_runs": self.min_runs, "min_sample_s": self.min_sample_s,
                "warmup_runs": self.warmup_runs}  # fmt: skip

    def as_dict(self) -> dict:
        return asdict(self)


def round_orders(schedule_ids: list[str], rounds: int, seed: int, salt: str = "") -> list[list[str]]:
    """One shuffled order of ``schedule_ids`` per round; the same inputs give the same orders."""
    base = sorted(schedule_ids)
    h = int(hashlib.sha256(f"{seed}:{salt}".encode()).hexdigest()[:12], 16)
    rng = random.Random(h)
    orders = []
    for _ in range(rounds):
        order = list(base)
        rng.shuffle(order)
        orders.append(order)
    return orders


def fast_calibration(calibration_s: np.ndarray) -> float:
    """The job's fast calibration time: the 10th percentile of its calibration windows.

    Not the minimum, so one lucky window does not flag the rest of the job as slow."""
    c = np.asarray(calibration_s, float)
    c = c[np.isfinite(c) & (c > 0)]
    return float(np.quantile(c, 0.1)) if len(c) else float("nan")


def flag_slow(calibration_s: np.ndarray, slow_factor: float) -> np.ndarray:
    """True for windows whose calibration ran more than ``slow_factor`` x the fast time."""
    c = np.asarray(calibration_s, float)
    fast = fast_calibration(c)
    if not np.isfinite(fast):
        return np.zeros(len(c), dtype=bool)
    return ~(c <= slow_factor * fast)  # NaN calibration counts as slow


def disagree(window_s: np.ndarray, agree_rel: float) -> bool:
    """True when the two fastest windows differ by more than ``agree_rel`` (or there are fewer
    than two): one more window may still find the machine's fast phase."""
    w = np.sort(np.asarray(window_s, float))
    return len(w) < 2 or w[1] > (1.0 + agree_rel) * w[0]


def needs_more(good_windows: dict[str, np.ndarray], rounds: int, agree_rel: float) -> list[str]:
    """Schedules with fewer good windows than ``rounds``, or whose two fastest windows
    disagree (:func:`disagree`), in a stable order."""
    return sorted(s for s, w in good_windows.items() if len(w) < rounds or disagree(w, agree_rel))


def label(window_s: np.ndarray, calibration_s: np.ndarray, how: str, fast_cal: float) -> float:
    """The label of one schedule from its good windows (seconds per run)."""
    w = np.asarray(window_s, float)
    if len(w) == 0:
        return float("nan")
    if how == "min":
        return float(w.min())
    if how == "median":
        return float(np.median(w))
    if how == "calibrated":
        c = np.asarray(calibration_s, float)
        return float(np.median(w / c) * fast_cal)
    raise ValueError(f"unknown aggregate {how!r}; known: {AGGREGATES}")
