"""Load a compiled Halide pipeline and time it, the way Halide's RunGen does.

The library exports ``pg_pipeline_argv(void **args)`` and
``pg_pipeline_metadata()``. The metadata names every argument with its kind,
type, dimensions and estimates, so buffers of the estimated sizes can be made
for any program without knowing its signature. Inputs are filled with seeded
uniform noise; outputs are checksummed so runs of different schedules of one
program can be compared.

Timing protocol: run for ``warmup_s`` first (the first ~0.3 s of runs are
slower), pick a number of runs per sample so that a sample lasts at least
``min_sample_s``, then take samples until the 95% confidence half-width of the
mean is below ``target_rel_precision`` (after ``min_samples`` and ``min_time_s``),
or until ``max_samples`` / ``max_time_s``.
"""

from __future__ import annotations

import ctypes
import math
import time
from ctypes import POINTER, c_char_p, c_int, c_int32, c_int64, c_uint8, c_uint16, c_uint32, c_uint64, c_void_p

import numpy as np

FN_NAME = "pg_pipeline"


class HalideDimension(ctypes.Structure):
    _fields_ = [("min", c_int32), ("extent", c_int32), ("stride", c_int32), ("flags", c_uint32)]


class HalideType(ctypes.Structure):
    _fields_ = [("code", c_uint8), ("bits", c_uint8), ("lanes", c_uint16)]


class HalideBuffer(ctypes.Structure):
    _fields_ = [
        ("device", c_uint64),
        ("device_interface", c_void_p),
        ("host", c_void_p),
        ("flags", c_uint64),
        ("type", HalideType),
        ("dimensions", c_int32),
        ("dim", POINTER(HalideDimension)),
        ("padding", c_void_p),
    ]


class FilterArgument(ctypes.Structure):
    _fields_ = [
        ("name", c_char_p),
        ("kind", c_int32),  # 0 input scalar, 1 input buffer, 2 output buffer
        ("dimensions", c_int32),
        ("type", HalideType),
        ("scalar_def", c_void_p),
        ("scalar_min", c_void_p),
        ("scalar_max", c_void_p),
        ("scalar_estimate", c_void_p),
        ("buffer_estimates", POINTER(POINTER(c_int64))),
    ]


class FilterMetadata(ctypes.Structure):
    _fields_ = [
        ("version", c_int32),
        ("num_arguments", c_int32),
        ("arguments", POINTER(FilterArgument)),
        ("target", c_char_p),
        ("name", c_char_p),
    ]


_DTYPES = {(0, 8): np.int8, (0, 16): np.int16, (0, 32): np.int32, (0, 64): np.int64,
           (1, 1): np.bool_, (1, 8): np.uint8, (1, 16): np.uint16, (1, 32): np.uint32, (1, 64): np.uint64,
           (2, 16): np.float16, (2, 32): np.float32, (2, 64): np.float64}  # fmt: skip


class HarnessError(RuntimeError):
    """The library cannot be set up for timing (missing estimates, unknown types)."""


class PipelineRunError(RuntimeError):
    """The pipeline returned a non-zero error code (a Halide runtime error)."""


_ERROR_HANDLER = ctypes.CFUNCTYPE(None, c_void_p, c_char_p)


class LoadedPipeline:
    """A compiled pipeline with buffers allocated from its estimates."""

    def __init__(self, lib_path: str, seed: int = 0) -> None:
        self.lib = ctypes.CDLL(lib_path)
        # Halide's default error handler aborts the process; ours keeps the
        # message, so the pipeline returns its error code and the row says why.
        self.errors: list[str] = []
        self._handler = _ERROR_HANDLER(lambda _ctx, msg: self.errors.append(msg.decode(errors="replace").strip()))
        if hasattr(self.lib, "halide_set_error_handler"):
            self.lib.halide_set_error_handler.restype = c_void_p
            self.lib.halide_set_error_handler(self._handler)
        meta_fn = getattr(self.lib, f"{FN_NAME}_metadata")
        meta_fn.restype = POINTER(FilterMetadata)
        self.meta = meta_fn().contents
        self.argv_fn = getattr(self.lib, f"{FN_NAME}_argv")
        self.argv_fn.argtypes = [POINTER(c_void_p)]
        self.argv_fn.restype = c_int
        rng = np.random.default_rng(seed)
        self._keep = []  # arrays and structs the argv points into
        self.outputs: list[np.ndarray] = []
        n = self.meta.num_arguments
        self.argv = (c_void_p * n)()
        for i in range(n):
            arg = self.meta.arguments[i]
            name = arg.name.decode()
            if arg.kind == 0:
                value = arg.scalar_estimate or arg.scalar_def
                if not value:
                    raise HarnessError(f"scalar argument {name!r} has neither an estimate nor a default")
                self.argv[i] = value
                continue
            self.argv[i] = ctypes.cast(ctypes.pointer(self._buffer(arg, name, rng)), c_void_p)

    def _buffer(self, arg: FilterArgument, name: str, rng) -> HalideBuffer:
        dims = arg.dimensions
        est = arg.buffer_estimates
        mins, extents = [], []
        for d in range(dims):
            lo, ext = (est[2 * d], est[2 * d + 1]) if est else (None, None)
            if not lo or not ext:
                raise HarnessError(f"buffer {name!r} has no estimate for dimension {d}")
            mins.append(lo[0])
            extents.append(ext[0])
        key = (arg.type.code, arg.type.bits)
        if key not in _DTYPES:
            raise HarnessError(f"buffer {name!r} has an unsupported type {key}")
        shape = tuple(reversed(extents))  # Halide's dimension 0 is innermost
        if arg.kind == 1:
            data = rng.uniform(-1.0, 1.0, size=shape).astype(_DTYPES[key])
        else:
            data = np.zeros(shape, dtype=_DTYPES[key])
            self.outputs.append(data)
        dim_arr = (HalideDimension * max(dims, 1))()
        stride = 1
        for d in range(dims):
            dim_arr[d] = HalideDimension(int(mins[d]), int(extents[d]), stride, 0)
            stride *= int(extents[d])
        buf = HalideBuffer(0, None, data.ctypes.data, 0, HalideType(arg.type.code, arg.type.bits, 1), dims, dim_arr, None)
        self._keep += [data, dim_arr, buf]
        return buf

    def run(self) -> None:
        rc = self.argv_fn(self.argv)
        if rc != 0:
            detail = self.errors[-1] if self.errors else "no message"
            raise PipelineRunError(f"pipeline returned error code {rc}: {detail}")

    def checksum(self) -> float:
        return float(sum(np.sum(o, dtype=np.float64) for o in self.outputs))


def time_pipeline(
    pipeline: LoadedPipeline,
    warmup_s: float = 0.3,
    min_sample_s: float = 0.002,
    min_samples: int = 10,
    max_samples: int = 200,
    min_time_s: float = 0.2,
    max_time_s: float = 3.0,
    target_rel_precision: float = 0.01,
) -> dict:
    """Time repeated runs; return runtime statistics in seconds per run."""
    clock = time.perf_counter
    t_start = clock()
    warm = []
    while True:
        t0 = clock()
        pipeline.run()
        warm.append(clock() - t0)
        if (clock() - t_start >= warmup_s and len(warm) >= 2) or clock() - t_start >= max_time_s:
            break
    warmup_s = clock() - t_start
    per_run = float(np.median(warm[-5:]))
    iters = max(1, math.ceil(min_sample_s / max(per_run, 1e-9)))
    samples: list[float] = []
    t_start = clock()
    reached = False
    while True:
        t0 = clock()
        for _ in range(iters):
            pipeline.run()
        samples.append((clock() - t0) / iters)
        n, elapsed = len(samples), clock() - t_start
        if n >= min_samples and elapsed >= min_time_s:
            arr = np.asarray(samples)
            half_width = 1.96 * arr.std(ddof=1) / math.sqrt(n)
            if half_width <= target_rel_precision * arr.mean():
                reached = True
                break
        if n >= max_samples or elapsed >= max_time_s:
            break
    arr = np.asarray(samples)
    return {
        "n_samples": len(samples),
        "iters_per_sample": iters,
        "warmup_s": warmup_s,
        "runtime_min_s": float(arr.min()),
        "runtime_median_s": float(np.median(arr)),
        "runtime_mean_s": float(arr.mean()),
        "runtime_std_s": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
        "runtime_p10_s": float(np.quantile(arr, 0.1)),
        "runtime_p90_s": float(np.quantile(arr, 0.9)),
        "precision_reached": reached,
        "output_checksum": pipeline.checksum(),
    }
