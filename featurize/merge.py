"""One dataset from several: ``perfgraph merge``.

Datasets built with different configs (say the reference mix on random programs, Halide's
beam search on others, and ``config/zoo_shaped.yaml``'s image operators) train one model
once merged: every table is the concatenation of the inputs' (each checked against
:mod:`featurize.schema`), and the ``machines`` table keeps one row per machine. A program id
in two inputs is refused, naming both, as their schedules and labels would mix; so is a TVM
dataset, whose extra tables this does not merge, and an output directory that already holds
a dataset (nothing built is overwritten). Datasets timed on different machines merge too, but
a model trains on one machine's labels (:func:`models.data.choose_machine`: the one with most).
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
    seen: dict[str, Path] = {}
    for d, tables in zip(dirs, inputs):
        for pid in tables["programs"]["program_id"].to_list():
            if pid in seen:
                raise SchemaError(f"{d}: program {pid} is also in {seen[pid]} (build them with distinct seeds)")
            seen[pid] = d
    counts = {}
    for name in schema.TABLE_NAMES:
        frame = pl.concat([tables[name] for tables in inputs], how="vertical_relaxed")
        if name == "machines":
            # The same machine timed several inputs: one row, the first input's.
            frame = frame.unique(subset="machine_id", keep="first", maintain_order=True)
        schema.write_table(name, frame, schema.table_path(out, name))
        counts[name] = frame.height
    return counts
