"""The layout of TVM MetaSchedule's ``PerStoreFeature`` vector: names and meanings.

Data only (no TVM import), like :mod:`featurize.halide.features` for Halide:
:mod:`featurize.schema` builds the ``psf_*`` columns of the TVM tables from it.
"""

from __future__ import annotations

# --------------------------------------------------------------------------------------
# PerStoreFeature layout (src/s_tir/meta_schedule/feature_extractor/per_store_feature.cc,
# default arguments: buffers_per_store=5, arith_intensity_curve_num_samples=10)
# --------------------------------------------------------------------------------------

BUFFERS_PER_STORE = 5
ARITH_INTENSITY_SAMPLES = 10
CACHE_LINE_BYTES = 64
#: The extractor's arguments, stored in each TVM table's metadata.
LAYOUT_PARAMS = {
    "extractor": "PerStoreFeature",
    "buffers_per_store": BUFFERS_PER_STORE,
    "arith_intensity_curve_num_samples": ARITH_INTENSITY_SAMPLES,
    "cache_line_bytes": CACHE_LINE_BYTES,
}
STORE_PREFIX = "psf_"

_ARITH = [
    ("float_mad", "float multiply-add ops"),
    ("float_addsub", "float add and subtract ops"),
    ("float_mul", "float multiply ops"),
    ("float_divmod", "float divide and modulo ops"),
    ("float_cmp", "float comparisons (and min/max)"),
    ("float_mathfunc", "pure float math calls (exp, tanh, ...)"),
    ("float_otherfunc", "other float calls"),
    ("int_mad", "integer multiply-add ops"),
    ("int_addsub", "integer add and subtract ops"),
    ("int_mul", "integer multiply ops"),
    ("int_divmod", "integer divide and modulo ops"),
    ("int_cmp", "integer comparisons (and min/max)"),
    ("int_mathfunc", "pure integer math calls"),
    ("int_otherfunc", "other integer calls"),
    ("bool_op", "boolean and/or/not ops"),
    ("select_op", "select ops"),
]
_POS = [
    ("none", "no loop has the annotation"),
    ("inner_spatial", "the annotated loop is the innermost spatial loop"),
    ("middle_spatial", "the annotated loop is a middle spatial loop"),
    ("outer_spatial", "the annotated loop is the outermost spatial loop"),
    ("inner_reduce", "the annotated loop is the innermost reduction loop"),
    ("middle_reduce", "the annotated loop is a middle reduction loop"),
    ("outer_reduce", "the annotated loop is the outermost reduction loop"),
    ("mixed", "mixed or unknown position"),
]
_BUFFER = [
    ("acc_read", "flag: the buffer is only read"),
    ("acc_write", "flag: the buffer is only written"),
    ("acc_readwrite", "flag: the buffer is read and written"),
    ("bytes", "bytes touched"),
    ("unique_bytes", "unique bytes touched"),
    ("lines", "cache lines touched"),
    ("unique_lines", "unique cache lines touched"),
    ("reuse_loop_multiple_read", "flag: reuse because a loop reads it on every iteration"),
    ("reuse_serial_multiple_read_write", "flag: reuse because it is accessed serially"),
    ("reuse_none", "flag: no reuse"),
    ("reuse_dis_iter", "reuse distance in loop iterations"),
    ("reuse_dis_bytes", "reuse distance in bytes"),
    ("reuse_ct", "reuse count"),
    ("bytes_d_reuse_ct", "bytes / reuse count"),
    ("unique_bytes_d_reuse_ct", "unique bytes / reuse count"),
    ("lines_d_reuse_ct", "lines / reuse count"),
    ("unique_lines_d_reuse_ct", "unique lines / reuse count"),
    ("stride", "stride of the access"),
]


def _store_feature_layout() -> list[tuple[str, str]]:
    out = list(_ARITH)
    for kind, what in (("vec", "vectorized"), ("unroll", "unrolled"), ("parallel", "parallel")):
        out += [
            (f"{kind}_num", f"number of {what} loops"),
            (f"{kind}_prod", f"product of the extents of {what} loops"),
            (f"{kind}_len", f"extent of the innermost {what} loop"),
        ]
        out += [(f"{kind}_pos_{p}", f"flag ({what}): {d}") for p, d in _POS]
    out += [("is_gpu", "flag: GPU target")]
    for t in ("blockidx_x", "blockidx_y", "blockidx_z", "threadidx_x", "threadidx_y", "threadidx_z", "vthread"):
        out.append((f"{t}_len", f"extent of {t} (GPU only)"))
    for b in range(BUFFERS_PER_STORE):
        rank = "largest" if b == 0 else f"{b + 1}-th largest"
        out += [
            (f"b{b}_{n}", f"{d}; of the {rank} buffer this store touches (by lines, then bytes)") for n, d in _BUFFER
        ]
    out += [
        (
            f"arith_intensity_{i}",
            f"arithmetic intensity (flops / unique bytes) at {(i + 1) * 10}% of the loop nest's flops",
        )
        for i in range(ARITH_INTENSITY_SAMPLES)
    ]
    out += [
        ("alloc_size", "bytes of the stored buffer's allocation"),
        ("alloc_prod", "allocation elements times the product of the loops around the allocation"),
        ("alloc_outer_prod", "product of the loops around the allocation"),
        ("alloc_inner_prod", "product of the loops around the store / those around the allocation"),
        ("outer_prod", "product of the extents of the loops around the store"),
        ("num_loops", "number of loops around the store"),
        ("auto_unroll_max_step", "pragma auto_unroll_max_step of the innermost annotated loop"),
    ]
    return out


_LAYOUT = _store_feature_layout()
STORE_FEATURE_NAMES: tuple[str, ...] = tuple(n for n, _ in _LAYOUT)
NUM_STORE_FEATURES = len(STORE_FEATURE_NAMES)
assert NUM_STORE_FEATURES == 164, NUM_STORE_FEATURES
STORE_COLUMNS: tuple[str, ...] = tuple(STORE_PREFIX + n for n in STORE_FEATURE_NAMES)
_SCALE_NOTE = " (TVM exports counts and sizes as log2(1 + x); flags are 0/1)"
STORE_FEATURE_DOCS: dict[str, str] = {
    STORE_PREFIX + n: d + ("" if d.startswith("flag") else _SCALE_NOTE) for n, d in _LAYOUT
}
