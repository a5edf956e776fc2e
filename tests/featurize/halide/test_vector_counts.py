"""Vector counts of the applied schedule (featurize/halide/vector_counts.py)."""

from __future__ import annotations

import polars as pl

from featurize.build import featurize_program
from featurize.halide.vector_counts import _node_name, applied_vector_counts, has_masked_vectors, stage_vector_widths
from featurize.schema import write_json
from pipelines.halide.sample import compile_program
from tests.featurize.halide.test_graph import KNOWN

# The shape of Adams2019's output (trimmed from a ResNet block's beam-32 pick).
TEXT = """Func relu_1 = pipeline.get_func(3);
Func conv_1 = pipeline.get_func(2);
Func pad_2 = pipeline.get_func(1);
Var x(relu_1.get_schedule().dims()[0].var);
Var xi("xi");
RVar conv_r_x(conv_1.update(0).get_schedule().dims()[0].var);
relu_1
    .split(x, x, xi, 16, TailStrategy::ShiftInwards)
    .vectorize(xi)
    .compute_root()
    .reorder({xi, x, y});
conv_1
    .compute_at(relu_1, x);
conv_1.update(0)
    .split(x, x, xi, 16, TailStrategy::GuardWithIf)
    .unroll(y)
    .vectorize(xi)
    .reorder({xi, x, y, conv_r_x});
pad_2
    .vectorize(x, 8)
    .compute_root();
"""


def test_masked_vectors_by_target() -> None:
    # The targets of the reference dataset's machine (Zen 3) and of a Zen 4 one.
    assert not has_masked_vectors("x86-64-linux-tune_znver3-avx-avx2-f16c-fma-sse41")
    assert has_masked_vectors("x86-64-linux-tune_znver4-avx-avx2-avx512-avx512_cannonlake-avx512_skylake-f16c-fma")
    assert has_masked_vectors("arm-64-linux-sve2") and not has_masked_vectors("arm-64-linux-arm_dot_prod")
    assert not has_masked_vectors(None) and not has_masked_vectors("")


def test_widths_come_from_each_stage_block() -> None:
    assert stage_vector_widths(TEXT) == {"relu_1": 16, "conv_1": 1, "conv_1.update(0)": 16, "pad_2": 8}
    assert stage_vector_widths(None) == {} and stage_vector_widths("") == {}


def _rows(rows):
    cols = ["sf_num_vectors", "sf_num_scalars", "sf_innermost_pure_loop_extent", "sf_points_computed_total"]
    return pl.DataFrame(
        [{"program_id": "p", "schedule_id": sid, "node_id": nid, **dict(zip(cols, vals))} for sid, nid, vals in rows],
        schema={"program_id": pl.String, "schedule_id": pl.String, "node_id": pl.Int32,
                **{c: pl.Float32 for c in cols}},
    )


def test_scalar_stages_of_a_vectorized_block_count_as_masked_vectors() -> None:
    nodes = pl.DataFrame({"program_id": ["p"] * 5, "node_id": [0, 1, 2, 3, 4],
                          "name": ["relu", "conv.update(0)", "conv", "pad", "act"],
                          "func": ["relu", "conv", "conv", "pad", "act"]})  # fmt: skip
    schedules = pl.DataFrame({"program_id": ["p", "p"], "schedule_id": ["s1", "s0"], "schedule_text": [TEXT, None]})
    nsf = _rows([
        ("s1", 4, (0, 640, 8, 640)),  # act: inlined (no block of its own): Halide's counts
        ("s1", 1, (0, 1600, 8, 1600)),  # conv.update(0): 8-wide rows, vectorized by 16 -> 200 masked vectors
        ("s1", 0, (3, 8, 56, 56)),  # relu: already vectorized, tail kept as Halide counted it
        ("s1", 2, (0, 640, 8, 640)),  # conv: its block does not vectorize
        ("s1", 3, (0, 120, 20, 120)),  # pad: 20-wide rows by 8 lanes -> 3 vectors a row
        ("s0", 1, (0, 1600, 8, 1600)),  # no schedule text: unchanged
    ])  # fmt: skip
    out = applied_vector_counts(nsf, nodes, schedules)
    assert out.columns == nsf.columns
    assert out.select("schedule_id", "node_id").equals(nsf.select("schedule_id", "node_id"))  # order kept
    assert out["sf_num_vectors"].to_list() == [0, 200, 3, 0, 18, 0]
    assert out["sf_num_scalars"].to_list() == [640, 0, 8, 640, 0, 1600]
    assert out.drop("sf_num_vectors", "sf_num_scalars").equals(nsf.drop("sf_num_vectors", "sf_num_scalars"))


def test_every_block_of_a_real_schedule_names_a_node(tmp_path, small_sampling) -> None:
    """Halide's own schedule text (uniquified Func names, update stages) maps onto the
    featurized nodes, so no vectorized stage is missed for want of a name."""
    write_json({"program_id": "known", "origin": "random", "spec": KNOWN}, tmp_path / "entry.json")
    small_sampling["samplers"]["adams2019_dropout"]["count"] = 2
    compile_program(tmp_path / "entry.json", tmp_path / "work", small_sampling, 2)
    (tmp_path / "work" / "measurements.parquet").touch()
    tables = featurize_program(tmp_path / "work")
    names = set(tables["nodes"]["name"].to_list())
    funcs = set(tables["nodes"]["func"].to_list())
    featurized = tables["schedules"].filter(pl.col("has_featurization"))
    assert featurized.height
    for text in featurized["schedule_text"]:
        blocks = stage_vector_widths(text)
        assert blocks and max(blocks.values()) > 1
        assert {_node_name(b, funcs) for b in blocks} <= names
    out = applied_vector_counts(tables["node_schedule_features"], tables["nodes"], tables["schedules"])
    assert out.height == tables["node_schedule_features"].height
    assert (out["sf_num_scalars"] <= tables["node_schedule_features"]["sf_num_scalars"]).all()
