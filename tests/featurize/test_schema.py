"""The schema module: round trips, atomic writes, and clear errors for bad files."""

from __future__ import annotations

import os

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from featurize import schema


def machines(n: int = 2) -> pl.DataFrame:
    rows = [
        {"machine_id": f"m{i}", "hostname": "h", "cpu_model": "cpu", "n_cores": 2, "timing_threads": 2,
         "halide_target": "host", "versions": "{}"}  # fmt: skip
        for i in range(n)
    ]
    return pl.from_arrow(schema.from_rows("machines", rows))


def test_round_trip_with_polars_pyarrow_and_duckdb(tmp_path) -> None:
    path = tmp_path / "machines.parquet"
    schema.write_table("machines", machines(), path)
    assert_frame_equal(schema.read_table(path, "machines"), machines())
    assert pq.read_table(path).num_rows == 2
    assert path.stat().st_mode & 0o044, "a shared table must be readable by others"
    assert duckdb.sql(f"select count(*) from '{path}'").fetchall() == [(2,)]


def test_write_is_atomic(tmp_path) -> None:
    path = tmp_path / "machines.parquet"
    schema.write_table("machines", machines(1), path)

    def crash(tmp):
        with open(tmp, "wb") as f:
            f.write(b"PAR1 half a file")
        raise KeyboardInterrupt  # killed mid-write

    with pytest.raises(KeyboardInterrupt):
        schema.atomic_write_bytes(path, crash)
    # The old, complete file is still there and nothing half-written is left beside it.
    assert schema.read_table(path, "machines").height == 1
    assert os.listdir(tmp_path) == ["machines.parquet"]


def test_other_schema_version_is_refused(tmp_path) -> None:
    path = tmp_path / "machines.parquet"
    table = schema.to_arrow("machines", machines())
    meta = dict(table.schema.metadata)
    meta[schema.META_VERSION] = b"999"
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(schema.SchemaError, match=r"machines.parquet: schema version 999, but this perfgraph reads"):
        schema.read_table(path, "machines")


def test_truncated_and_foreign_files_get_clear_errors(tmp_path) -> None:
    path = tmp_path / "machines.parquet"
    schema.write_table("machines", machines(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(schema.SchemaError, match="not a readable Parquet file"):
        schema.read_table(path, "machines")
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pl.DataFrame({"a": [1]}).to_arrow(), foreign)
    with pytest.raises(schema.SchemaError, match="not a perfgraph table"):
        schema.read_table(foreign)
    schema.write_table("machines", machines(), path)
    with pytest.raises(schema.SchemaError, match="holds table 'machines', expected 'programs'"):
        schema.read_table(path, "programs")


def test_missing_columns_are_named() -> None:
    with pytest.raises(schema.SchemaError, match=r"missing columns \['versions'\]"):
        schema.to_arrow("machines", machines().drop("versions"))
