"""The calibration kernel: a fixed Halide pipeline whose run time tracks the machine's speed.

Timed for a short window before every candidate window (:mod:`pipelines.protocol`), it is
the machine-speed monitor: its series over a timing job shows the slow phases of a shared
machine, and windows timed in one are flagged and re-measured. It mixes what schedules
spend their time on (a stencil, a reduction, vector arithmetic, both cores through
Halide's thread pool, a working set of a few hundred KB), and it is built once per machine
(per Halide target) with a fixed, hand-written schedule, so its time only changes when the
machine does.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: Bump when the kernel or its schedule changes (its times are then not comparable).
KERNEL_VERSION = 1
WIDTH, HEIGHT, TAPS = 512, 256, 16


def build_kernel():
    """The calibration pipeline, scheduled (a ``halide.Pipeline``)."""
    import halide as hl

    x, y, yo, yi = hl.Var("x"), hl.Var("y"), hl.Var("yo"), hl.Var("yi")
    inp = hl.ImageParam(hl.Float(32), 2, "calib_in")
    r = hl.RDom([(0, TAPS)], "r")
    blur = hl.Func("calib_blur")
    blur[x, y] = (inp[x, y] + 2 * inp[x + 1, y] + inp[x + 2, y]) * 0.25
    out = hl.Func("calib_out")
    out[x, y] = 0.0
    out[x, y] += blur[x, y + r] * (1.0 + 0.01 * hl.f32(r))
    inp.set_estimates([(0, WIDTH + 2), (0, HEIGHT + TAPS)])
    out.set_estimates([(0, WIDTH), (0, HEIGHT)])
    out.split(y, yo, yi, 16).parallel(yo).vectorize(x, 8)
    out.update().split(y, yo, yi, 16).parallel(yo).vectorize(x, 8)
    blur.compute_at(out, yo).vectorize(x, 8)
    return hl.Pipeline(out)


def kernel_path(cache_dir: str | os.PathLike) -> Path:
    """Where this machine's calibration library lives: one per Halide target and kernel version."""
    from pipelines.halide.autoschedule import host_target

    key = f"{host_target()}:{KERNEL_VERSION}"
    return Path(cache_dir) / f"calibration-{hashlib.sha256(key.encode()).hexdigest()[:12]}.so"


def ensure_kernel(cache_dir: str | os.PathLike) -> Path:
    """The calibration library for this machine, compiled on first use (in a child process,
    so that compiling never leaves LLVM state in the timing process)."""
    from pipelines.halide.sample import in_child

    path = kernel_path(cache_dir)
    if not path.exists():
        in_child(_compile, str(path), timeout_s=300)
    return path


def _compile(path: str) -> None:
    from pipelines.halide.sample import compile_pipeline

    compile_pipeline(build_kernel(), path)


def shutdown_thread_pool(lib) -> None:
    """Stop the calibration library's worker threads, so that they cannot spin beside the
    candidate timed next (each library carries its own Halide runtime and thread pool)."""
    fn = getattr(lib, "halide_shutdown_thread_pool", None)
    if fn is not None:
        fn.restype = None
        fn()
