"""perfgraph tvm-tune: MetaSchedule's evolutionary search on a tiny program, guided by a GNN
trained on the tiny TVM dataset, by TVM's XGBModel and by random scores."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

pytest.importorskip("tvm", reason="apache-tvm is not installed")

from featurize import schema  # noqa: E402
from models import split as split_mod  # noqa: E402
from models.tvm import stages, tune  # noqa: E402
from tests.conftest import DENSE_SPEC, ROOT, _tvm_entry  # noqa: E402


@pytest.fixture(scope="module")
def trained_gcn(tvm_work, tmp_path_factory):
    out = tmp_path_factory.mktemp("tvm_tune") / "gcn"
    split = out.parent / "split.parquet"
    split_mod.write_split(tvm_work["data"], split)
    stages.train("gcn", tvm_work["data"], split, out, epochs=2, threads=1)
    return out


def test_best_so_far_keeps_the_minimum_and_skips_failures() -> None:
    assert tune.best_so_far([None, 3.0, None, 2.0, 5.0]) == [None, 3.0, 3.0, 2.0, 2.0]


def test_resolve_program_names_what_it_accepts(tmp_path) -> None:
    assert tune.resolve_program("bert_qkv_dense")["program_id"] == "tzoo_bert_qkv_dense"
    assert tune.resolve_program("random:7")["program_id"] == "t00007"
    entry = _tvm_entry(tmp_path / "e.json", "t00042", DENSE_SPEC)
    assert tune.resolve_program(str(entry))["spec"] == DENSE_SPEC
    with pytest.raises(schema.UserError, match="not a TVM zoo layer"):
        tune.resolve_program("no_such_layer")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(schema.UserError, match="bad.json: not a JSON program entry"):
        tune.resolve_program(str(tmp_path / "bad.json"))


def test_trained_model_guides_the_search(trained_gcn, tmp_path) -> None:
    """Every trial is built and timed, the GNN scored the candidates, and the curve never rises."""
    entry = _tvm_entry(tmp_path / "entry.json", "t00042", DENSE_SPEC)
    r = tune.tune(str(entry), str(trained_gcn), 4, work_dir=tmp_path / "w", seed=1, cores=1, per_round=2,
                  out=tmp_path / "tune.json")  # fmt: skip
    assert r["model"]["kind"] == "trained" and r["model"]["model"] == "gcn"
    assert r["trials_run"] == 4 and r["trials_failed"] == 0
    curve = r["best_so_far_s"]
    assert all(v is not None and v > 0 for v in curve) and list(np.minimum.accumulate(curve)) == curve
    assert r["best_s"] == min(r["latency_s"]) and "sch." in r["best_trace"]
    assert json.loads((tmp_path / "tune.json").read_text())["best_s"] == r["best_s"]


def test_trained_cost_model_ranks_by_predicted_time(trained_gcn, tvm_work) -> None:
    """The PyCostModel's scores are the model's predicted times, inverted: the same order."""
    from tvm import s_tir
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo

    from featurize.tvm.graph import graph_tables
    from models.tvm.inputs import graph_inputs, load_programs, read_tables
    from pipelines.tvm import ops as tp
    from pipelines.tvm.sample import light_intrinsics, make_target

    light_intrinsics()
    wd = tvm_work["work"][0]
    prog = json.loads((wd / "program.json").read_text())
    mod = tp.workload_module(tp.build_workload(prog["spec"], prog["program_id"]))
    tables = graph_tables(prog["graph"], prog["workload_features"])
    graph = graph_inputs(tables["nodes"], tables["tvm_node_features"], tables["edges"])
    name, meta, predict = stages.load_trained(trained_gcn)
    model = tune._make_trained_cost_model()(predict, prog["program_id"], graph, [r["func"] for r in prog["graph"]["nodes"]])
    cands = schema.read_table(wd / "candidates.parquet", "tvm_candidates").filter(pl.col("has_featurization"))
    mcs = []
    for row in cands.iter_rows(named=True):
        sch = s_tir.Schedule(mod)
        s_tir.Trace.apply_json_to_schedule(json.loads(row["trace_json"]), sch)
        mcs.append(ms.MeasureCandidate(sch, ArgInfo.from_prim_func(mod["main"])))
    ctx = ms.TuneContext(mod=mod, target=make_target(1), space_generator="post-order-apply",
                         search_strategy="replay-trace", num_threads=1)  # fmt: skip
    scores = model.predict(ctx, mcs)
    # The dataset's own rows of the same schedules, through the evaluation path.
    split = pl.DataFrame({"program_id": [prog["program_id"]], "split": ["test"]})
    (p,), _, _ = load_programs(read_tables(tvm_work["data"]), split)
    secs = dict(zip(p.schedule_ids, predict([p])[0]))
    expect = np.array([1e-3 / secs[sid] for sid in cands["schedule_id"] if sid in secs])
    got = np.array([s for s, sid in zip(scores, cands["schedule_id"]) if sid in secs])
    assert len(got) >= 2
    np.testing.assert_allclose(got, expect, rtol=1e-4)


def test_cli_help_and_one_line_errors(tmp_path) -> None:
    run = lambda *a: subprocess.run([sys.executable, "-m", "pipelines", "tvm-tune", *a], cwd=ROOT,  # noqa: E731
                                    capture_output=True, text=True, timeout=300)  # fmt: skip
    h = run("--help")
    assert h.returncode == 0 and "--trials" in h.stdout and "--model" in h.stdout
    bad = run("no_such_layer", "--model", "random", "--trials", "2", "--work-dir", str(tmp_path))
    assert bad.returncode == 2 and "not a TVM zoo layer" in bad.stderr and "Traceback" not in bad.stderr
