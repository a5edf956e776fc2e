from __future__ import annotations

import hashlib

import polars as pl
import pytest

from featurize import schema
from models.__main__ import main
from models.split import UNUSED, assign_splits, program_hash, read_split, train_subset, write_split


def _programs(n_random: int, n_zoo: int = 0, n_user: int = 0) -> pl.DataFrame:
    ids = [f"p{i:05d}" for i in range(n_random + n_zoo + n_user)]
    origins = ["random"] * n_random + ["zoo"] * n_zoo + ["user"] * n_user
    return pl.DataFrame({"program_id": ids, "origin": origins})


def test_split_by_program_is_disjoint_and_complete() -> None:
    progs = _programs(100, 4, 2)
    split = assign_splits(progs)
    assert split.height == progs.height
    assert split["program_id"].n_unique() == progs.height  # one split per program
    counts = dict(split.group_by("split").len().iter_rows())
    assert counts == {"train": 70, "val": 15, "test": 15 + 2, "zoo": 4}
    sets = {s: set(split.filter(pl.col("split") == s)["program_id"]) for s in ("train", "val", "test", "zoo")}
    names = list(sets)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not sets[a] & sets[b]


def test_split_origins() -> None:
    split = assign_splits(_programs(10, 2, 3))
    by_id = dict(split.iter_rows())
    assert [by_id[f"p{i:05d}"] for i in (10, 11)] == ["zoo", "zoo"]
    assert [by_id[f"p{i:05d}"] for i in (12, 13, 14)] == ["test"] * 3


def test_split_is_deterministic_and_order_free() -> None:
    progs = _programs(40, 3)
    a = assign_splits(progs)
    b = assign_splits(progs.sample(fraction=1.0, shuffle=True, seed=1))
    assert a.equals(b)
    c = assign_splits(progs, salt="other")
    assert not a.equals(c)


def test_split_seed_zero_is_the_split_of_earlier_versions() -> None:
    # Computed with the code before the seed existed: seed 0 must not move any program.
    split = assign_splits(_programs(10), seed=0)
    assert split["split"].to_list() == ["train"] * 6 + ["test", "val", "test", "val"]
    assert split.equals(assign_splits(_programs(10)))
    digest = hashlib.sha256(b"saltp00001").digest()[:8]
    assert program_hash("p00001", "salt", seed=0) == int.from_bytes(digest, "big")


def test_split_seed_draws_another_split() -> None:
    progs = _programs(40, 3, 2)
    a, b = assign_splits(progs, seed=7), assign_splits(progs.reverse(), seed=7)
    assert a.equals(b)  # same seed, same split
    assert not a.equals(assign_splits(progs, seed=8))
    assert not a.equals(assign_splits(progs))
    base = assign_splits(progs)
    assert dict(a.group_by("split").len().iter_rows()) == dict(base.group_by("split").len().iter_rows())
    fixed = pl.col("program_id").is_in([f"p{i:05d}" for i in range(40, 45)])  # zoo and user programs
    assert a.filter(fixed).equals(base.filter(fixed))  # only random programs move


def test_split_seed_is_not_a_salt() -> None:
    progs = _programs(40)
    assert not assign_splits(progs, seed=1).equals(assign_splits(progs, salt="1"))
    assert not assign_splits(progs, seed=1, salt="x").equals(assign_splits(progs, seed=1))


def test_split_small_dataset_keeps_val_and_test() -> None:
    counts = dict(assign_splits(_programs(3)).group_by("split").len().iter_rows())
    assert counts == {"train": 1, "val": 1, "test": 1}


def test_split_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="fractions"):
        assign_splits(_programs(5), train=0.9, val=0.2)
    bad = pl.DataFrame({"program_id": ["a"], "origin": ["martian"]})
    with pytest.raises(ValueError, match="unknown program origins"):
        assign_splits(bad)


def test_train_subset_is_nested_per_seed_and_keeps_the_held_out_programs() -> None:
    split = assign_splits(_programs(40, n_zoo=3))
    n_train = split.filter(pl.col("split") == "train").height
    kept = {}
    for n in (5, 10, 20):
        sub = train_subset(split, n, seed=1)
        assert sub["program_id"].to_list() == split["program_id"].to_list()
        assert sub.filter(pl.col("split") == "train").height == n
        assert sub.filter(pl.col("split") == UNUSED).height == n_train - n
        for name in ("val", "test", "zoo"):  # the points of a curve are scored on the same programs
            assert sub.filter(pl.col("split") == name).equals(split.filter(pl.col("split") == name))
        kept[n] = set(sub.filter(pl.col("split") == "train")["program_id"])
    assert kept[5] < kept[10] < kept[20]
    other = set(train_subset(split, 10, seed=2).filter(pl.col("split") == "train")["program_id"])
    assert other != kept[10]  # another seed, another draw
    assert train_subset(split, None).equals(split) and train_subset(split, 10**6).equals(split)
    with pytest.raises(ValueError, match="at least 1"):
        train_subset(split, 0)


@pytest.mark.write_disk
def test_write_split_roundtrip(fake_dataset, tmp_path) -> None:
    out = tmp_path / "split.parquet"
    split = write_split(fake_dataset, out)
    assert read_split(out).equals(split)
    programs = schema.read_table(schema.table_path(fake_dataset, "programs"), "programs")
    assert set(split["program_id"]) == set(programs["program_id"])


@pytest.mark.write_disk
def test_split_command_passes_the_seed(fake_dataset, tmp_path, capsys) -> None:
    out = tmp_path / "split.parquet"
    assert main(["split", "--dataset", str(fake_dataset), "--out", str(out), "--seed", "3"]) == 0
    capsys.readouterr()
    assert read_split(out).equals(write_split(fake_dataset, tmp_path / "expected.parquet", seed=3))
