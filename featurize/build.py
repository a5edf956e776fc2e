"""From the per-program work directories of a run to the dataset's Parquet tables.

A work directory (``results/_work/<dataset>/<program>/``) holds what the compile
and bench rules wrote for one program: ``program.json`` (its entry and stage
kinds), ``dag.log`` (the Adams2019 DAG dump), ``candidates.parquet``,
``measurements.parquet`` and ``machine.json``. This module joins them into the
eight tables of :mod:`featurize.schema`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from featurize import schema
from featurize.halide.features import FEATURES_PER_STAGE, NUM_SCHEDULE_FEATURES
from featurize.halide.graph import Dag, edge_kind, max_stride, parse_dag_dump, stage_name


class FeaturizeError(schema.UserError):
    """A work directory is inconsistent (e.g. featurization and DAG disagree)."""


def decode_records(blob: bytes, n_stages: int, where: str) -> np.ndarray:
    """Featurization bytes -> float32 array (n_stages, 326)."""
    arr = np.frombuffer(blob, dtype="<f4")
    if arr.size != n_stages * FEATURES_PER_STAGE:
        raise FeaturizeError(
            f"{where}: featurization holds {arr.size / FEATURES_PER_STAGE:g} stage records, "
            f"the DAG has {n_stages} stages"
        )
    return arr.reshape(n_stages, FEATURES_PER_STAGE)


def graph_tables(program_id: str, dag: Dag, op_kinds: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """Node rows (without features) and edge rows of one program's stage graph."""
    stages = dag.featurization_stages()
    node_of = {s.name: i for i, s in enumerate(stages)}
    last_stage = {}  # func -> node id of its final stage (what consumers read)
    for i, s in enumerate(stages):
        if s.func not in last_stage or s.index > stages[last_stage[s.func]].index:
            last_stage[s.func] = i
    outputs = {n.func for n in dag.nodes if n.is_output}
    nodes = [
        {
            "program_id": program_id,
            "node_id": i,
            "name": s.name,
            "func": s.func,
            "stage_index": s.index,
            "op_kind": op_kinds.get(s.func, "other"),
            "is_output": s.func in outputs and node_of[s.name] == last_stage[s.func],
            "n_loop_dims": len(s.loop_vars),
            "n_reduction_dims": s.n_reduction_dims,
        }
        for i, s in enumerate(stages)
    ]
    by_name = {s.name: s for s in stages}
    edges = []
    for e in dag.edges:
        if e.producer not in last_stage or e.consumer not in node_of:
            continue  # reads of an input buffer: inputs are not stages
        consumer = by_name[e.consumer]
        edges.append(
            {
                "program_id": program_id,
                "src": last_stage[e.producer],
                "dst": node_of[e.consumer],
                "kind": edge_kind(e, consumer),
                "n_loads": e.n_loads,
                "n_jacobians": len(e.jacobians),
                "producer_dims": len(e.jacobians[0][1]) if e.jacobians else 0,
                "consumer_loop_dims": len(consumer.loop_vars),
                "max_stride": max_stride(e),
                "footprint_halo": e.footprint_halo,
            }
        )
    # A Func's update definitions read and overwrite what its earlier stages wrote.
    for s in stages:
        if s.index > 0:
            prev = node_of[stage_name(s.func, s.index - 1)]
            edges.append(
                {
                    "program_id": program_id,
                    "src": prev,
                    "dst": node_of[s.name],
                    "kind": "update",
                    "n_loads": 1,
                    "n_jacobians": 0,
                    "producer_dims": 0,
                    "consumer_loop_dims": len(s.loop_vars),
                    "max_stride": 1.0,
                    "footprint_halo": 0,
                }
            )
    return nodes, edges


def _features_frame(base: pl.DataFrame, values: np.ndarray, columns) -> pl.DataFrame:
    return pl.concat([base, pl.DataFrame(values, schema=list(columns), orient="row")], how="horizontal")


def read_candidates(work_dir: Path) -> pl.DataFrame:
    """A program's candidates: the compile stage's ``candidates.parquet`` and, where the refine
    stage ran, its ``refined.parquet`` (:mod:`pipelines.halide.refine`)."""
    tables = [schema.read_table(work_dir / "candidates.parquet", "candidates")]
    if (work_dir / "refined.parquet").exists():
        tables.append(schema.read_table(work_dir / "refined.parquet", "candidates"))
    return pl.concat(tables, how="vertical")


def featurize_program(work_dir: str | Path) -> dict[str, pl.DataFrame]:
    """The program-derived tables (all but measurements and machines) of one program."""
    work_dir = Path(work_dir)
    info = json.loads((work_dir / "program.json").read_text())
    pid = info["program_id"]
    dag = parse_dag_dump((work_dir / "dag.log").read_text())
    stages = dag.featurization_stages()
    nodes, edges = graph_tables(pid, dag, info.get("op_kinds", {}))
    cands = read_candidates(work_dir)

    featurized = cands.filter(pl.col("has_featurization"))
    n = len(stages)
    if featurized.height:
        recs = np.stack(
            [decode_records(b, n, f"{work_dir}: candidate {sid}")
             for sid, b in featurized.select("schedule_id", "featurization").iter_rows()]
        )  # (n_schedules, n_stages, 326)
        pipe = recs[:, :, NUM_SCHEDULE_FEATURES:]
        if not np.all(pipe == pipe[0]):
            raise FeaturizeError(f"{work_dir}: pipeline features differ between schedules of one program")
        pipeline_feats = pipe[0]
        sched_feats = recs[:, :, :NUM_SCHEDULE_FEATURES].reshape(-1, NUM_SCHEDULE_FEATURES)
    else:
        pipeline_feats = np.full((n, len(schema.PIPELINE_COLUMNS)), np.nan, dtype=np.float32)
        sched_feats = np.zeros((0, NUM_SCHEDULE_FEATURES), dtype=np.float32)

    nodes_df = _features_frame(pl.DataFrame(nodes), pipeline_feats, schema.PIPELINE_COLUMNS)
    nsf_base = pl.DataFrame(
        {
            "program_id": [pid] * (featurized.height * n),
            "schedule_id": np.repeat(featurized["schedule_id"].to_numpy(), n).tolist() if n else [],
            "node_id": np.tile(np.arange(n, dtype=np.int32), featurized.height),
        },
        schema={"program_id": pl.String, "schedule_id": pl.String, "node_id": pl.Int32},
    )
    nsf_df = _features_frame(nsf_base, sched_feats, schema.SCHEDULE_COLUMNS)

    program = {
        "program_id": pid,
        "compiler": "halide",
        "origin": info["origin"],
        "generator_seed": info.get("seed"),
        "generator_params": json.dumps(info.get("params", {}), sort_keys=True),
        # The random generator's name as datasets have always recorded it (the module is now
        # pipelines.halide.generator): a string in the data, kept so a program keeps its content hash.
        "source": info.get("source", "pipelines.random_programs" if info["origin"] == "random" else ""),
        "description": info.get("description", ""),
        "n_nodes": n,
        "n_edges": len(edges),
        "n_inputs": sum(nd.is_input for nd in dag.nodes),
        "output_shape": json.dumps(info.get("output_shapes", [])),
    }
    return {
        "programs": pl.from_arrow(schema.from_rows("programs", [program])),
        "nodes": nodes_df,
        "edges": pl.from_arrow(schema.from_rows("edges", edges)),
        "schedules": cands.select(schema.TABLES["schedules"].names),
        "node_schedule_features": nsf_df,
    }


def calibration_speed(samples: pl.DataFrame) -> dict[str, float]:
    """Each machine's calibration-kernel time (``machines.calibration_s``): per timing job (a
    program's pass-1 windows) the protocol's fast calibration, then the median over jobs."""
    from pipelines.protocol import fast_calibration

    jobs = (
        samples.filter((pl.col("timing_pass") == 1) & (pl.col("calibration_s") > 0))
        .group_by("machine_id", "program_id")
        .agg(pl.col("calibration_s").map_batches(lambda c: pl.Series([fast_calibration(c.to_numpy())])).first())
    )
    speed = jobs.group_by("machine_id").agg(pl.col("calibration_s").median())
    return dict(zip(speed["machine_id"].to_list(), speed["calibration_s"].to_list()))


def machines_table(machines: dict[str, dict], samples: pl.DataFrame) -> pl.DataFrame:
    """The machines table from the timing jobs' ``machine.json`` facts and their samples."""
    speed = calibration_speed(samples)
    names = schema.TABLES["machines"].names
    rows = [{k: m.get(k) for k in names} | {"calibration_s": speed.get(mid)} for mid, m in machines.items()]
    return pl.from_arrow(schema.from_rows("machines", rows))


def featurize_dataset(
    work_dirs, retime_path: str | Path | None, out_dir: str | Path, retime_samples_path: str | Path | None = None
) -> None:
    """Write every table of the dataset into ``out_dir``.

    Each work directory holds a program's ``measurements`` and ``timing_samples``; the
    drift re-time's are ``retime_path`` and ``retime_samples_path`` (default: its
    ``retime_samples.parquet`` sibling)."""
    parts: dict[str, list] = {t: [] for t in schema.TABLE_NAMES}
    machines = {}
    for wd in work_dirs:
        wd = Path(wd)
        for name, frame in featurize_program(wd).items():
            parts[name].append(frame)
        parts["measurements"].append(schema.read_table(wd / "measurements.parquet", "measurements"))
        parts["timing_samples"].append(schema.read_table(wd / "timing_samples.parquet", "timing_samples"))
        machine = json.loads((wd / "machine.json").read_text())
        machines[machine["machine_id"]] = machine
    if retime_path is not None:
        parts["measurements"].append(schema.read_table(retime_path, "measurements"))
        samples = retime_samples_path or Path(retime_path).with_name("retime_samples.parquet")
        parts["timing_samples"].append(schema.read_table(samples, "timing_samples"))
    samples = pl.concat([pl.from_arrow(schema.to_arrow("timing_samples", f)) for f in parts["timing_samples"]])
    parts["machines"] = [machines_table(machines, samples)]
    for name in schema.TABLE_NAMES:
        table = pa.concat_tables([schema.to_arrow(name, f) for f in parts[name]])
        schema.write_table(name, table, schema.table_path(out_dir, name))
