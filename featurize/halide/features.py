"""Feature layout of Halide's Adams2019 autoscheduler (Halide v21).

Source of truth: ``src/autoschedulers/adams2019/Featurization.h`` in
halide/Halide (``struct PipelineFeatures`` and ``struct ScheduleFeatures``,
both at ``version() == 3``).  The per-stage record written by
``State::save_featurization`` (``src/autoschedulers/adams2019/State.cpp``;
``AutoSchedule.cpp`` in older trees) -- and returned to Python as
``AutoSchedulerResults.featurization`` -- is::

    float32[39]   ScheduleFeatures, cast from double, in declaration order
    float32[287]  PipelineFeatures, cast from int, in memory order

i.e. 326 little-endian float32 values (1304 bytes) per stage, with no header
or separator.  Records are emitted by iterating ``dag.nodes`` in order
(outputs first, producers later -- the order the DAG dump prints), skipping
nodes with ``is_input`` set, and for each node visiting its stages in
*reverse* (last update definition first, pure definition last).

PipelineFeatures is a flat struct of ``int``: ``types_in_use[7]`` then the
2-D arrays ``op_histogram[24][7]``, ``pointwise_accesses[4][7]``,
``transpose_accesses[4][7]``, ``broadcast_accesses[4][7]`` and
``slice_accesses[4][7]``; 2-D arrays are row-major, so the scalar-type index
varies fastest.  7 + 168 + 4 * 28 = 287.

Checked against the Halide 21.0.0 wheel from PyPI: a two-stage blur gives a
2608-byte featurization (2 x 326 floats), and the decoded values match the
``HL_DEBUG_AUTOSCHEDULE=2`` dump.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Sequence, Tuple

__all__ = [
    "OP_TYPES",
    "SCALAR_TYPES",
    "ACCESS_TYPES",
    "SCHEDULE_FEATURE_NAMES",
    "PIPELINE_FEATURE_NAMES",
    "SCHEDULE_FEATURE_DOCS",
    "PIPELINE_FEATURE_DOCS",
    "NUM_SCHEDULE_FEATURES",
    "NUM_PIPELINE_FEATURES",
    "FEATURES_PER_STAGE",
    "STAGE_FEATURE_NAMES",
    "FEATURIZATION_VERSION",
    "decode_featurization",
]

#: ``PipelineFeatures::version()`` and ``ScheduleFeatures::version()``.
FEATURIZATION_VERSION = 3

#: ``enum class PipelineFeatures::OpType``, declaration order (NumOpTypes == 24).
OP_TYPES: Tuple[str, ...] = (
    "Const", "Cast", "Variable", "Param",
    "Add", "Sub", "Mod", "Mul", "Div", "Min", "Max",
    "EQ", "NE", "LT", "LE",
    "And", "Or", "Not", "Select",
    "ImageCall", "FuncCall", "SelfCall", "ExternCall", "Let",
)

#: ``enum class PipelineFeatures::ScalarType`` (NumScalarTypes == 7).
#: UInt8..UInt64 also count the signed integer type of the same width.
SCALAR_TYPES: Tuple[str, ...] = (
    "Bool", "UInt8", "UInt16", "UInt32", "UInt64", "Float", "Double",
)

#: ``enum class PipelineFeatures::AccessType`` (NumAccessTypes == 4).
ACCESS_TYPES: Tuple[str, ...] = ("LoadFunc", "LoadSelf", "LoadImage", "Store")

#: ``ScheduleFeatures`` members (all ``double``), in declaration order.
SCHEDULE_FEATURE_NAMES: Tuple[str, ...] = (
    "num_realizations",
    "num_productions",
    "points_computed_per_realization",
    "points_computed_per_production",
    "points_computed_total",
    "points_computed_minimum",
    "innermost_loop_extent",
    "innermost_pure_loop_extent",
    "unrolled_loop_extent",
    "inner_parallelism",
    "outer_parallelism",
    "bytes_at_realization",
    "bytes_at_production",
    "bytes_at_root",
    "innermost_bytes_at_realization",
    "innermost_bytes_at_production",
    "innermost_bytes_at_root",
    "inlined_calls",
    "unique_bytes_read_per_realization",
    "unique_lines_read_per_realization",
    "allocation_bytes_read_per_realization",
    "working_set",
    "vector_size",
    "native_vector_size",
    "num_vectors",
    "num_scalars",
    "scalar_loads_per_vector",
    "vector_loads_per_vector",
    "scalar_loads_per_scalar",
    "bytes_at_task",
    "innermost_bytes_at_task",
    "unique_bytes_read_per_vector",
    "unique_lines_read_per_vector",
    "unique_bytes_read_per_task",
    "unique_lines_read_per_task",
    "working_set_at_task",
    "working_set_at_production",
    "working_set_at_realization",
    "working_set_at_root",
)

# One-line descriptions in our own words, based on the comments in Featurization.h.
SCHEDULE_FEATURE_DOCS: Dict[str, str] = {
    "num_realizations": "How many times the stage's storage is allocated (product of loop extents outside the store_at site).",
    "num_productions": "How many times a tile of the stage is computed (product of loop extents outside the compute_at site); >= num_realizations.",
    "points_computed_per_realization": "Innermost-loop iterations executed per allocation.",
    "points_computed_per_production": "Innermost-statement executions per computed tile.",
    "points_computed_total": "Total innermost trip count over the whole program (~ realizations x points per realization).",
    "points_computed_minimum": "Minimum number of points that must be computed for a correct result; schedule-independent reference.",
    "innermost_loop_extent": "Trip count of the innermost loop nest.",
    "innermost_pure_loop_extent": "Trip count of only the pure (non-reduction) loops of the innermost loop nest.",
    "unrolled_loop_extent": "Product of unroll factors if the stage is unrolled.",
    "inner_parallelism": "Number of parallel jobs launched to produce the stage (1 unless compute_root).",
    "outer_parallelism": "Number of times the Func may be realized in parallel (product of enclosing parallel loops; 1 if compute_root).",
    "bytes_at_realization": "Bytes of the region computed at the store_at site, ignoring storage folding.",
    "bytes_at_production": "Bytes of the region computed per tile at the compute_at site, including storage folding.",
    "bytes_at_root": "Bytes the stage would use if computed at root; schedule-independent reference.",
    "innermost_bytes_at_realization": "Like bytes_at_realization but measuring only the innermost dimension (spatial locality).",
    "innermost_bytes_at_production": "Like bytes_at_production but measuring only the innermost dimension.",
    "innermost_bytes_at_root": "Like bytes_at_root but measuring only the innermost dimension.",
    "inlined_calls": "For inlined Funcs, the total number of calls made to it.",
    "unique_bytes_read_per_realization": "Distinct bytes loaded from all inputs during one iteration of the loop holding the allocation.",
    "unique_lines_read_per_realization": "Distinct contiguous memory segments loaded during one iteration of the loop holding the allocation.",
    "allocation_bytes_read_per_realization": "Summed sizes of the allocations read at this site (locality hint).",
    "working_set": "Summed sizes of temporary allocations live while computing one tile.",
    "vector_size": "SIMD width (lanes) used to compute the stage.",
    "native_vector_size": "Native SIMD width for the narrowest type used; schedule-independent reference.",
    "num_vectors": "Number of SIMD vectors computed.",
    "num_scalars": "Number of scalar points computed (e.g. loop tails).",
    "scalar_loads_per_vector": "Scalar loads per vector computed (gathers count as scalar loads), amortized over unrolling.",
    "vector_loads_per_vector": "Vector loads per vector computed, amortized over unrolling.",
    "scalar_loads_per_scalar": "Scalar loads per scalar computed.",
    "bytes_at_task": "Memory footprint written per parallel task.",
    "innermost_bytes_at_task": "Innermost-dimension footprint written per parallel task.",
    "unique_bytes_read_per_vector": "Distinct bytes accessed to compute one vector.",
    "unique_lines_read_per_vector": "Distinct contiguous segments accessed to compute one vector.",
    "unique_bytes_read_per_task": "Distinct bytes loaded per parallel task from data produced outside that task.",
    "unique_lines_read_per_task": "Distinct contiguous segments loaded per parallel task from data produced outside it.",
    "working_set_at_task": "Summed sizes of live allocations at the parallel-task level.",
    "working_set_at_production": "Summed sizes of live allocations at the compute_at (production) site.",
    "working_set_at_realization": "Summed sizes of live allocations at the store_at (realization) site.",
    "working_set_at_root": "Summed sizes of live allocations at root level.",
}

#: Base (un-expanded) PipelineFeatures members: name -> (row enum or None, column enum).
_PIPELINE_FIELDS: Tuple[Tuple[str, Tuple[str, ...] | None], ...] = (
    ("types_in_use", None),
    ("op_histogram", OP_TYPES),
    ("pointwise_accesses", ACCESS_TYPES),
    ("transpose_accesses", ACCESS_TYPES),
    ("broadcast_accesses", ACCESS_TYPES),
    ("slice_accesses", ACCESS_TYPES),
)

PIPELINE_FEATURE_DOCS: Dict[str, str] = {
    "types_in_use": "Flag per scalar type: 1 if the stage uses that type (the header says it only helps debug dumps skip unused types, but it is still written in the featurization and fed to the cost model).",
    "op_histogram": "Count of IR nodes of each op kind, split by result scalar type (GT/GE count as LT/LE; all extern/intrinsic calls count as ExternCall).",
    "pointwise_accesses": "Accesses whose index Jacobian w.r.t. the stage loop vars is a square identity, e.g. f(x-2, y+8).",
    "transpose_accesses": "Accesses whose Jacobian is a square permutation matrix, e.g. f(y+1, z-3, x).",
    "broadcast_accesses": "Accesses where each index row sums to 1 and each loop column sums to 0 or 1, e.g. f(y, x) from a 3-D stage.",
    "slice_accesses": "Accesses where each index row sums to 0 or 1 and each loop column sums to 1, e.g. f(z, y, x, 4).",
}


def _expand_pipeline_names() -> Tuple[str, ...]:
    names: List[str] = []
    for field, rows in _PIPELINE_FIELDS:
        if rows is None:
            names.extend(f"{field}.{t}" for t in SCALAR_TYPES)
        else:
            for r in rows:  # row-major: scalar type varies fastest
                names.extend(f"{field}.{r}.{t}" for t in SCALAR_TYPES)
    return tuple(names)


#: PipelineFeatures expanded in memory order, e.g. "op_histogram.Add.Float".
PIPELINE_FEATURE_NAMES: Tuple[str, ...] = _expand_pipeline_names()

NUM_SCHEDULE_FEATURES = len(SCHEDULE_FEATURE_NAMES)
NUM_PIPELINE_FEATURES = len(PIPELINE_FEATURE_NAMES)
FEATURES_PER_STAGE = NUM_SCHEDULE_FEATURES + NUM_PIPELINE_FEATURES

#: Names for one save_featurization record (schedule features first).
STAGE_FEATURE_NAMES: Tuple[str, ...] = SCHEDULE_FEATURE_NAMES + PIPELINE_FEATURE_NAMES

assert NUM_SCHEDULE_FEATURES == 39
assert NUM_PIPELINE_FEATURES == 287
assert FEATURES_PER_STAGE == 326
assert len(set(STAGE_FEATURE_NAMES)) == FEATURES_PER_STAGE
assert set(SCHEDULE_FEATURE_DOCS) == set(SCHEDULE_FEATURE_NAMES)
assert set(PIPELINE_FEATURE_DOCS) == {f for f, _ in _PIPELINE_FIELDS}


def decode_featurization(blob: bytes | bytearray | Sequence[int]) -> List[Tuple[float, ...]]:
    """Split a save_featurization blob into per-stage tuples of 326 floats.

    Accepts raw bytes or the list of ints that the Python binding returns for
    ``AutoSchedulerResults.featurization``.  Records follow ``dag.nodes`` order
    (non-input nodes only), with each node's stages in reverse.  The stage names
    are not stored in the blob; use the DAG dump to map records to stages.
    """
    data = bytes(blob)
    rec = FEATURES_PER_STAGE * 4
    if len(data) % rec:
        raise ValueError(f"featurization length {len(data)} is not a multiple of {rec}")
    fmt = f"<{FEATURES_PER_STAGE}f"
    return [struct.unpack_from(fmt, data, off) for off in range(0, len(data), rec)]
