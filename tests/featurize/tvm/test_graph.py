"""A TVM program -> graph tables: nodes, edges, per-store features, dataset files."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

pytest.importorskip("tvm", reason="apache-tvm is not installed")

from featurize import schema  # noqa: E402
from featurize.tvm import features as tf  # noqa: E402
from featurize.tvm import graph as tg  # noqa: E402
from pipelines.tvm import generator, zoo  # noqa: E402
from pipelines.tvm import ops as tp  # noqa: E402
from tests.conftest import SOFTMAX_SPEC  # noqa: E402


def _graph(spec: dict, pid: str = "p"):
    w = tp.build_workload(spec, pid)
    mod = tp.workload_module(w)
    return w, mod, tg.workload_graph(mod, w.op_kinds, pid)


def test_softmax_graph_is_known() -> None:
    _, _, g = _graph(SOFTMAX_SPEC)
    assert [n["name"] for n in g["nodes"]] == ["softmax_max", "softmax_exp", "softmax_sum", "softmax_norm"]
    assert [n["is_output"] for n in g["nodes"]] == [False, False, False, True]
    assert [(n["n_loop_dims"], n["n_reduction_dims"]) for n in g["nodes"]] == [(1, 1), (2, 0), (1, 1), (2, 0)]
    edges = {(e["src"], e["dst"]): e["kind"] for e in g["edges"]}
    # max -> exp broadcasts a row value, exp -> sum reduces a row, exp -> norm is pointwise.
    assert edges == {(0, 1): "broadcast", (1, 2): "reduction", (1, 3): "pointwise", (2, 3): "broadcast"}


def test_conv_graph_and_kinds() -> None:
    spec = {
        "kind": "conv2d",
        "params": {"ci": 4, "co": 8, "size": 8, "k": 3, "stride": 2, "pad": 1, "bias": True, "act": "relu"},
    }
    w, _, g = _graph(spec)
    assert [(n["name"], n["op_kind"]) for n in g["nodes"]] == [
        ("pad", "boundary"), ("conv2d", "conv2d"), ("bias", "bias"), ("act", "unary")
    ]  # fmt: skip
    e = {(r["src"], r["dst"]): r for r in g["edges"]}
    assert set(e) == {(0, 1), (1, 2), (2, 3)}
    assert e[(0, 1)]["kind"] == "reduction" and e[(0, 1)]["max_stride"] == 2.0
    assert e[(1, 2)]["kind"] == "pointwise" and e[(2, 3)]["kind"] == "pointwise"
    assert all(r["kind"] in schema.EDGE_KINDS for r in g["edges"])
    assert w.output_shape == [1, 8, 4, 4]
    nf = g["node_features"]
    assert nf[1]["spatial_extent"] == 8 * 4 * 4 and nf[1]["reduction_extent"] == 4 * 9


def test_every_kind_builds_and_random_specs_are_deterministic() -> None:
    for name, spec in zoo.ZOO.items():
        _, _, g = _graph(spec, name)
        assert g["nodes"], name
    assert [generator.random_spec(s) for s in range(20)] == [generator.random_spec(s) for s in range(20)]
    assert {generator.random_spec(s)["kind"] for s in range(60)} == set(generator.KINDS)
    with pytest.raises(tp.TVMSpecError, match="unknown TVM workload kind"):
        tp.build_workload({"kind": "fft", "params": {}})


def test_buffer_to_node_mapping() -> None:
    nodes = ["pad", "conv2d", "conv2d_bias", "act"]
    got = tg.map_buffers_to_nodes(["pad", "conv2d_global", "conv2d_bias_global", "conv2d_rf", "act", "other"], nodes)
    assert got == [0, 1, 2, 1, 3, None]


def test_store_feature_layout() -> None:
    assert len(tf.STORE_COLUMNS) == 164 == tf.NUM_STORE_FEATURES
    assert len(set(tf.STORE_COLUMNS)) == 164
    assert set(tf.STORE_FEATURE_DOCS) == set(tf.STORE_COLUMNS) and all(tf.STORE_FEATURE_DOCS.values())


def test_store_rows_match_per_store_feature(tvm_work) -> None:
    """Stored features are PerStoreFeature's rows, one per stored buffer, in its order."""
    from tvm import s_tir
    from tvm.s_tir import meta_schedule as ms

    from pipelines.tvm.sample import light_intrinsics, make_target, schedule_id

    light_intrinsics()
    cands = schema.read_table(tvm_work["work"][0] / "candidates.parquet", "tvm_candidates")
    prog = json.loads((tvm_work["work"][0] / "program.json").read_text())
    w = tp.build_workload(prog["spec"], prog["program_id"])
    mod = tp.workload_module(w)
    ctx = ms.TuneContext(mod=mod, target=make_target(1), space_generator="post-order-apply",
                         search_strategy="replay-trace", num_threads=1)  # fmt: skip
    for row in cands.iter_rows(named=True):
        sch = s_tir.Schedule(mod)
        s_tir.Trace.apply_json_to_schedule(json.loads(row["trace_json"]), sch)
        again = tg.extract_store_features(ctx, [sch])[0]
        stored = np.frombuffer(row["store_features"], dtype=np.float32).reshape(-1, 164)
        np.testing.assert_allclose(stored, again, rtol=1e-6)
        assert json.loads(row["store_buffers"]) == tg.store_buffers(sch.mod)
        assert schedule_id(sch.mod) == row["schedule_id"]  # the trace re-applies to the same IR
        assert None not in json.loads(row["store_nodes"])  # every stored buffer comes from a workload block


def test_dataset_tables(tvm_work) -> None:
    data = schema.read_dataset(tvm_work["data"], schema.TABLE_NAMES + schema.TVM_TABLE_NAMES)
    assert set(data["programs"]["compiler"]) == {"tvm"}
    assert sorted(data["programs"]["origin"]) == ["random", "zoo"]
    nodes = data["nodes"]
    assert nodes.filter(pl.col("program_id") == "t00000")["name"].to_list() == ["dense", "bias", "act"]
    assert nodes.select(schema.PIPELINE_COLUMNS[:3]).null_count().row(0) == (nodes.height,) * 3  # Halide-only columns
    edges = data["edges"].filter(pl.col("program_id") == "t00000")
    assert edges.select("src", "dst", "kind").rows() == [(0, 1, "pointwise"), (1, 2, "pointwise")]
    sched = data["schedules"]
    assert sched["schedule_id"].str.len_chars().unique().to_list() == [16]
    assert set(sched["sampler"]) == {"replay_trace", "evolutionary"}
    assert sched.height == sched.select("program_id", "schedule_id").unique().height
    store = data["tvm_store_features"]
    assert store.select("program_id", "schedule_id").unique().height == sched.filter(pl.col("has_featurization")).height
    assert store["node_id"].null_count() == 0
    nf = data["tvm_node_features"]
    assert nf.height == nodes.height
    m = data["measurements"]
    assert set(m["status"]) <= set(schema.STATUSES)
    assert m.filter(pl.col("status") == "ok").height == m.height  # MetaSchedule candidates compute the right result
    assert data["machines"].height == 1
    assert data["node_schedule_features"].height == 0
    docs = schema.feature_docs(schema.table_path(tvm_work["data"], "tvm_store_features"))
    assert docs["psf_float_mad"].startswith("float multiply-add")


def test_tvm_table_reader_refuses_other_versions(tvm_work, tmp_path) -> None:
    import pyarrow.parquet as pq

    src = schema.table_path(tvm_work["data"], "tvm_node_features")
    t = pq.read_table(src)
    meta = dict(t.schema.metadata)
    meta[schema.META_VERSION] = b"999"
    pq.write_table(t.replace_schema_metadata(meta), tmp_path / "bad.parquet")
    with pytest.raises(schema.SchemaError, match="schema version 999"):
        schema.read_table(tmp_path / "bad.parquet", "tvm_node_features")
    with pytest.raises(schema.SchemaError, match="expected 'tvm_store_features'"):
        schema.read_table(src, "tvm_store_features")
