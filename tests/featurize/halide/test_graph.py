"""The program graph and the featurization order, from the autoscheduler's own DAG dump."""

from __future__ import annotations

import numpy as np
import pytest

from featurize import schema
from featurize.build import featurize_program, graph_tables
from featurize.halide.graph import parse_dag_dump
from pipelines.halide.sample import compile_program, dag_dump
from pipelines.halide.programs import load_program
from featurize.schema import write_json


def st(name, op, args, **attrs):
    return {"name": name, "op": op, "args": args, "attrs": attrs}


#: One edge of every access-pattern kind the vocabulary produces.
KNOWN = {
    "name": "known",
    "inputs": [{"name": "input", "shape": [32, 32, 4]}],
    "stages": [
        st("blur", "stencil", ["input"], axis="x", weights=[1, 2, 1]),  # input_clamped -> blur: stencil
        st("act", "unary", ["blur"], fn="relu"),  # blur -> act: pointwise
        st("conv", "conv2d", ["act"], k=3, cout=4, form="rdom"),  # act -> conv.update(0): reduction
        st("down", "downsample", ["conv"], factor=2),  # conv -> down: downsample
        st("up", "upsample", ["down"], factor=2),  # down -> up: upsample
        st("tr", "transpose", ["up"]),  # up -> tr: transpose
        st("sm", "softmax", ["tr"], axis="c"),  # sm_max -> sm_exp: broadcast
    ],
    "outputs": ["sm"],
}

EXPECTED_EDGES = {
    ("input_clamped", "blur", "stencil"),
    ("blur", "act", "pointwise"),
    ("act", "conv.update(0)", "reduction"),
    ("conv", "conv.update(0)", "update"),
    ("conv.update(0)", "down", "downsample"),
    ("down", "up", "upsample"),
    ("up", "tr", "transpose"),
    ("tr", "sm_max.update(0)", "reduction"),
    ("sm_max", "sm_max.update(0)", "update"),
    ("tr", "sm_exp", "pointwise"),
    ("sm_max.update(0)", "sm_exp", "broadcast"),
    ("sm_exp", "sm_sum.update(0)", "reduction"),
    ("sm_sum", "sm_sum.update(0)", "update"),
    ("sm_exp", "sm", "pointwise"),
    ("sm_sum.update(0)", "sm", "broadcast"),
}


@pytest.fixture(scope="module")
def known_dag():
    entry = {"program_id": "known", "origin": "random", "spec": KNOWN}
    return entry, parse_dag_dump(dag_dump(entry, 2, 60))


def test_edges_of_a_known_program(known_dag) -> None:
    entry, dag = known_dag
    prog = load_program(entry)
    nodes, edges = graph_tables("known", dag, prog.op_kinds)
    name = {n["node_id"]: n["name"] for n in nodes}
    got = {(name[e["src"]], name[e["dst"]], e["kind"]) for e in edges}
    assert got == EXPECTED_EDGES
    kinds = {n["name"]: n["op_kind"] for n in nodes}
    assert kinds["conv.update(0)"] == "conv2d" and kinds["sm_exp"] == "softmax"
    assert [n["name"] for n in nodes if n["is_output"]] == ["sm"]


def test_uniquified_names_are_stripped(known_dag) -> None:
    # Building the program again in this process makes Halide name its Funcs "blur$1", ...
    entry, dag = known_dag
    load_program(entry)
    again = parse_dag_dump(dag_dump(entry, 2, 60))
    assert [s.name for s in again.featurization_stages()] == [s.name for s in dag.featurization_stages()]


# Each stage of this program has a distinct, known count of float Add and Mul operations.
OPS = {
    "name": "ops",
    "inputs": [{"name": "input", "shape": [64, 64, 1]}],
    "stages": [
        st("one_add", "scale", ["input"], mul=3.0, add=1.0),  # x * 3 + 1: 1 Mul, 1 Add
        st("three_adds", "stencil", ["one_add"], axis="x", weights=[2, 3, 5, 7]),  # 4 Mul, 3 Add
        st("mul_only", "binary", ["three_adds", "three_adds"], fn="mul"),  # 1 Mul, 0 Add
    ],
    "outputs": ["mul_only"],
}


def test_featurization_maps_to_stage_names(tmp_path, small_sampling) -> None:
    """Decode the featurization through the mapping and check each stage's op counts."""
    entry = {"program_id": "ops", "origin": "random", "spec": OPS}
    write_json(entry, tmp_path / "entry.json")
    small_sampling["samplers"]["adams2019_dropout"]["count"] = 1
    compile_program(tmp_path / "entry.json", tmp_path / "work", small_sampling, 2)
    (tmp_path / "work" / "measurements.parquet").touch()
    tables = featurize_program(tmp_path / "work")
    nodes = tables["nodes"]
    got = {
        row["name"]: (row["pf_op_histogram.Add.Float"], row["pf_op_histogram.Mul.Float"])
        for row in nodes.iter_rows(named=True)
    }
    assert got["one_add"] == (1, 1)
    assert got["three_adds"] == (3, 4)
    assert got["mul_only"] == (0, 1)
    # Schedule features line up too: the output stage is computed exactly once, at root.
    nsf = tables["node_schedule_features"].join(nodes.select("node_id", "name"), on="node_id")
    out = nsf.filter(pl_col_eq("name", "mul_only"))
    assert np.all(out["sf_num_realizations"].to_numpy() == 1)
    assert np.all(out["sf_points_computed_total"].to_numpy() == 64 * 64)


def pl_col_eq(col, value):
    import polars as pl

    return pl.col(col) == value


def test_feature_names_travel_with_the_data(tmp_path) -> None:
    frame = schema.from_rows("nodes", [])
    schema.write_table("nodes", frame, tmp_path / "nodes.parquet")
    docs = schema.feature_docs(tmp_path / "nodes.parquet")
    assert len(docs) == 287 and all(docs.values())
