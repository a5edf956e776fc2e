"""Load a compiled Halide pipeline and time it, the way Halide's RunGen does.

The library exports ``pg_pipeline_argv(void **args)`` and
``pg_pipeline_metadata()``. The metadata names every argument with its kind,
type, dimensions and estimates, so buffers can be made for any program without
knowing its signature: outputs at their estimates, inputs at the region the
pipeline's own bounds query asks for. Inputs are filled with seeded
uniform noise; outputs are checksummed so runs of different schedules of one
program can be compared.

:func:`time_window` times one short window of runs; the protocol that spreads
windows over rounds and turns them into a label is :mod:`pipelines.protocol`.
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


def _dense_dims(dim_arr, mins, extents) -> None:
    """Fill Halide dimensions for a dense array, dimension 0 innermost."""
    stride = 1
    for d, (lo, ext) in enumerate(zip(mins, extents)):
        dim_arr[d] = HalideDimension(int(lo), int(ext), stride, 0)
        stride *= int(ext)


def output_extents(lib_path: str) -> list[list[int]]:
    """The extents of each output's estimate (the region a user asks for), read from a compiled
    pipeline's metadata: for programs whose Python side cannot say (a user's outputs)."""
    meta_fn = getattr(ctypes.CDLL(lib_path), f"{FN_NAME}_metadata")
    meta_fn.restype = POINTER(FilterMetadata)
    meta = meta_fn().contents
    return [LoadedPipeline._estimates(meta.arguments[i], meta.arguments[i].name.decode())[1]
            for i in range(meta.num_arguments) if meta.arguments[i].kind == 2]  # fmt: skip


class LoadedPipeline:
    """A compiled pipeline with its buffers allocated the way a user would size them.

    Outputs get the shape of their estimates (the region a user asks for). Inputs get the
    shape the compiled pipeline itself asks for: a bounds query (a call with unallocated
    inputs) returns the region each input is read over, which can exceed its estimate when
    a schedule's tiles round up past the edge. ``input_bytes`` records that footprint.
    """

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
        self._keep = []  # arrays and structs the argv points into
        self.outputs: list[np.ndarray] = []
        n = self.meta.num_arguments
        self.argv = (c_void_p * n)()
        inputs: list[tuple[FilterArgument, str, HalideBuffer]] = []
        for i in range(n):
            arg = self.meta.arguments[i]
            name = arg.name.decode()
            if arg.kind == 0:
                value = arg.scalar_estimate or arg.scalar_def
                if not value:
                    raise HarnessError(f"scalar argument {name!r} has neither an estimate nor a default")
                self.argv[i] = value
                continue
            if arg.kind == 1:
                buf = self._query_buffer(arg, name)
                inputs.append((arg, name, buf))
            else:
                buf = self._output_buffer(arg, name)
            self.argv[i] = ctypes.cast(ctypes.pointer(buf), c_void_p)
        if inputs:
            # Bounds query: with unallocated inputs the pipeline only fills in their shapes.
            self.run()
        rng = np.random.default_rng(seed)
        self.input_bytes = sum(self._allocate_input(arg, name, buf, rng) for arg, name, buf in inputs)

    @staticmethod
    def _dtype(arg: FilterArgument, name: str):
        key = (arg.type.code, arg.type.bits)
        if key not in _DTYPES:
            raise HarnessError(f"buffer {name!r} has an unsupported type {key}")
        return _DTYPES[key]

    @staticmethod
    def _estimates(arg: FilterArgument, name: str) -> tuple[list[int], list[int]]:
        est = arg.buffer_estimates
        mins, extents = [], []
        for d in range(arg.dimensions):
            lo, ext = (est[2 * d], est[2 * d + 1]) if est else (None, None)
            if not lo or not ext:
                raise HarnessError(f"buffer {name!r} has no estimate for dimension {d}")
            mins.append(int(lo[0]))
            extents.append(int(ext[0]))
        return mins, extents

    def _query_buffer(self, arg: FilterArgument, name: str) -> HalideBuffer:
        self._dtype(arg, name)
        dims = arg.dimensions
        dim_arr = (HalideDimension * max(dims, 1))()
        buf = HalideBuffer(0, None, None, 0, HalideType(arg.type.code, arg.type.bits, 1), dims, dim_arr, None)
        self._keep += [dim_arr, buf]
        return buf

    def _output_buffer(self, arg: FilterArgument, name: str) -> HalideBuffer:
        mins, extents = self._estimates(arg, name)
        data = np.zeros(tuple(reversed(extents)), dtype=self._dtype(arg, name))  # dimension 0 is innermost
        self.outputs.append(data)
        return self._describe(arg, data, mins, extents)

    def _allocate_input(self, arg: FilterArgument, name: str, buf: HalideBuffer, rng) -> int:
        dims = arg.dimensions
        mins = [int(buf.dim[d].min) for d in range(dims)]
        extents = [int(buf.dim[d].extent) for d in range(dims)]
        data = rng.uniform(-1.0, 1.0, size=tuple(reversed(extents))).astype(self._dtype(arg, name))
        _dense_dims(buf.dim, mins, extents)
        buf.host = data.ctypes.data
        self._keep.append(data)
        return int(data.nbytes)

    def _describe(self, arg: FilterArgument, data: np.ndarray, mins, extents) -> HalideBuffer:
        dims = arg.dimensions
        dim_arr = (HalideDimension * max(dims, 1))()
        _dense_dims(dim_arr, mins, extents)
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


def time_window(
    pipeline,
    window_s: float = 0.04,
    min_runs: int = 3,
    min_sample_s: float = 0.0005,
    warmup_runs: int = 2,
) -> dict:
    """One short timing window of ``pipeline`` (anything with ``run()``): seconds per run.

    ``warmup_runs`` untimed runs first; then samples until the window lasts ``window_s``
    and holds at least ``min_runs`` runs. A sample repeats the run until it lasts
    ``min_sample_s``, so runs far shorter than the clock's overhead are still measured.
    The window's statistic is its fastest sample (``window_min_s``): on a CPU, noise only
    ever adds time. The median is kept beside it.
    """
    clock = time.perf_counter
    per_run = float("inf")
    for _ in range(max(1, warmup_runs)):
        t0 = clock()
        pipeline.run()
        per_run = min(per_run, clock() - t0)
    iters = max(1, math.ceil(min_sample_s / max(per_run, 1e-9)))
    samples: list[float] = []
    t_start = clock()
    while True:
        t0 = clock()
        for _ in range(iters):
            pipeline.run()
        samples.append((clock() - t0) / iters)
        if len(samples) * iters >= min_runs and clock() - t_start >= window_s:
            break
    arr = np.asarray(samples)
    return {
        "window_min_s": float(arr.min()),
        "window_median_s": float(np.median(arr)),
        "n_runs": len(samples) * iters,
    }
