"""perfgraph merge: one dataset from several, checked, and nothing overwritten."""

from __future__ import annotations

import polars as pl
import pytest

from featurize import schema
from featurize.merge import merge_datasets
from featurize.schema import SchemaError
from tests.report.report_fakes import make_dataset

pytestmark = pytest.mark.write_disk


def renamed(path, prefix: str):
    """The fake dataset at ``path`` with every program id prefixed (a second, distinct dataset)."""
    for name in schema.TABLE_NAMES:
        frame = schema.read_table(schema.table_path(path, name), name)
        if "program_id" in frame.columns:
            frame = frame.with_columns(program_id=pl.lit(prefix) + pl.col("program_id"))
        schema.write_table(name, frame, schema.table_path(path, name))
    return path


def test_merge_concatenates_and_keeps_one_row_per_machine(tmp_path) -> None:
    a = make_dataset(tmp_path / "a", seed=0)
    b = renamed(make_dataset(tmp_path / "b", seed=1), "b_")
    counts = merge_datasets([a, b], tmp_path / "ab")
    merged = schema.read_dataset(tmp_path / "ab")
    one = schema.read_dataset(a)
    for name in schema.TABLE_NAMES:
        want = 1 if name == "machines" else 2 * one[name].height
        assert merged[name].height == counts[name] == want, name
    assert merged["programs"]["program_id"].n_unique() == 2 * one["programs"].height
    # A model trains on the merge as on any built dataset: from its split on.
    from models.split import write_split

    assert write_split(tmp_path / "ab", tmp_path / "split.parquet").height == merged["programs"].height


def test_merge_refuses_what_would_mix_or_overwrite(tmp_path) -> None:
    a = make_dataset(tmp_path / "a", seed=0)
    b = make_dataset(tmp_path / "b", seed=1)
    with pytest.raises(SchemaError, match=r"program r00000 is also in .*a"):
        merge_datasets([a, b], tmp_path / "ab")
    assert not (tmp_path / "ab").exists() or not any((tmp_path / "ab").iterdir())
    renamed(b, "b_")
    merge_datasets([a, b], tmp_path / "ab")
    with pytest.raises(SchemaError, match="already holds a dataset"):
        merge_datasets([a, b], tmp_path / "ab")
    with pytest.raises(SchemaError, match="the output is one of the inputs"):
        merge_datasets([a, b], a)
    with pytest.raises(SchemaError, match="dataset directory not found"):
        merge_datasets([a, tmp_path / "nothing"], tmp_path / "c")
