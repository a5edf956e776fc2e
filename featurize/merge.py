"""One dataset from several: ``perfgraph merge``.

Datasets built with different configs (say the reference mix on random programs, Halide's
beam search on others, and ``config/zoo_shaped.yaml``'s image operators), or timed on
different machines, train one model once merged: every table is the concatenation of the
inputs' (each checked against :mod:`featurize.schema`), and the ``machines`` table keeps one
row per machine. A program in two inputs (the zoo, timed on two machines) is one program
with the measurements of both, when its stage graph is the same in both and no machine timed
it in both; its schedules are the union (a schedule drawn in both keeps the first input's
features). A program with two different graphs, or timed on one machine in two inputs, is
refused, naming both, as its schedules and labels would mix; so is a TVM dataset, whose
extra tables this does not merge, and an output directory that already holds a dataset
(nothing built is overwritten). A model of several machines reads every machine's labels
(``machine_features``, :mod:`models.machine`); any other trains on one machine's
(:func:`models.data.choose_machine`: the one with most).
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from featurize import schema
from featurize.schema import SchemaError


def merge_datasets(dataset_dirs: list[str | os.PathLike], out_dir: str | os.PathLike) -> dict[str, int]:
    """Write the merge of ``dataset_dirs`` to ``out_dir``.

    Returns:
        dict: rows written per table.
    """
    dirs = [Path(d) for d in dataset_dirs]
    out = Path(out_dir)
    if len(dirs) < 2:
        raise SchemaError("merge needs at least two datasets")
    if out.resolve() in {d.resolve() for d in dirs}:
        raise SchemaError(f"{out}: the output is one of the inputs")
    if out.is_dir() and any(schema.table_path(out, t).exists() for t in schema.TABLE_NAMES):
        raise SchemaError(f"{out}: already holds a dataset; merge into a new directory")
    for d in dirs:
        tvm = [t for t in schema.TVM_TABLE_NAMES if schema.table_path(d, t).exists()]
        if tvm:
            raise SchemaError(f"{d}: a TVM dataset ({', '.join(tvm)}); merge handles Halide datasets")
    inputs = [schema.read_dataset(d) for d in dirs]
    _check_shared_programs(dirs, inputs)
    counts = {}
    for name in schema.TABLE_NAMES:
        frame = pl.concat([tables[name] for tables in inputs], how="vertical_relaxed")
        keys = _ROW_KEYS.get(name)
        if keys:
            # A program (or schedule) in several inputs: one row, the first input's.
            frame = frame.unique(subset=keys, keep="first", maintain_order=True)
        schema.write_table(name, frame, schema.table_path(out, name))
        counts[name] = frame.height
    return counts


#: Tables whose rows describe a program, a schedule or a machine rather than a timing: a
#: program in several inputs keeps the first input's row (measurements and timing samples
#: are all kept, each with its machine).
_ROW_KEYS = {
    "programs": ["program_id"],
    "nodes": ["program_id", "node_id"],
    "edges": ["program_id", "src", "dst"],
    "schedules": ["program_id", "schedule_id"],
    "node_schedule_features": ["program_id", "schedule_id", "node_id"],
    "machines": ["machine_id"],
}


def _check_shared_programs(dirs: list[Path], inputs: list[dict[str, pl.DataFrame]]) -> None:
    """A program in two inputs must have one stage graph and no machine timing it in both."""
    seen: dict[str, tuple[Path, dict[str, pl.DataFrame]]] = {}
    for d, tables in zip(dirs, inputs):
        for pid in tables["programs"]["program_id"].to_list():
            if pid not in seen:
                seen[pid] = (d, tables)
                continue
            first_dir, first = seen[pid]
            if _graph(first, pid) != _graph(tables, pid):
                raise SchemaError(f"{d}: program {pid} is also in {first_dir} with another stage graph "
                                  "(build them with distinct seeds)")  # fmt: skip
            both = _timing_machines(first, pid) & _timing_machines(tables, pid)
            if both:
                raise SchemaError(f"{d}: program {pid} is also in {first_dir}, timed on the same machine "
                                  f"{sorted(both)[0]} (build them with distinct seeds)")  # fmt: skip


def _graph(tables: dict[str, pl.DataFrame], pid: str) -> tuple:
    nodes = tables["nodes"].filter(pl.col("program_id") == pid).sort("node_id")
    edges = tables["edges"].filter(pl.col("program_id") == pid).sort("src", "dst")
    return tuple(nodes["name"].to_list()), tuple(edges.select("src", "dst", "kind").iter_rows())


def _timing_machines(tables: dict[str, pl.DataFrame], pid: str) -> set[str]:
    return set(tables["measurements"].filter(pl.col("program_id") == pid)["machine_id"].unique().to_list())
