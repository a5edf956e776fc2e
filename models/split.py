"""Split a dataset by program, deterministically from the program ids.

Every model reads the same ``split`` table, so a held-out program has no schedule in
any model's training data. Rules:

* ``origin == "zoo"``  -> ``"zoo"`` (the out-of-distribution test set);
* ``origin == "user"`` -> ``"test"`` (never trained on);
* ``origin == "random"`` -> ``"train"`` / ``"val"`` / ``"test"``: the programs are
  ordered by a SHA-256 hash of ``salt + program_id`` and cut at the requested
  fractions. A non-zero ``seed`` (the config's ``models.seed``) prefixes the salt
  with ``"<seed>\\0"`` to draw another split; seed 0 leaves the salt as it is, so
  the default split is the one of earlier versions. With at least three random
  programs, ``val`` and ``test`` get at least one program each, so the tiny default
  dataset still has something to stop on and something to test on.

The order depends only on the ids, never on a random generator or on the order of
rows. Adding programs to a dataset can move a program across a cut, so compare
models only on one split table, never on splits of two dataset versions.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import numpy as np
import polars as pl

from featurize import schema
from featurize.schema import UserError

ORIGIN_TO_SPLIT = {"zoo": "zoo", "user": "test"}
#: Where a program came from (the ``programs`` table's ``origin``).
ORIGINS = ("random", "zoo", "user")


def program_hash(program_id: str, salt: str = "", seed: int = 0) -> int:
    """A stable 64-bit hash of a program id, salted by ``salt`` and ``seed``.

    Seed 0 hashes ``salt + program_id`` (the hash of earlier versions); another seed
    hashes ``f"{seed}\\0{salt}{program_id}"`` (a NUL cannot come from a command line
    salt, so no salt imitates a seed).
    """
    prefix = salt if seed == 0 else f"{seed}\0{salt}"
    return int.from_bytes(hashlib.sha256((prefix + program_id).encode()).digest()[:8], "big")


def assign_splits(
    programs: pl.DataFrame,
    train: float = 0.7,
    val: float = 0.15,
    salt: str = "",
    seed: int = 0,
) -> pl.DataFrame:
    """Assign each program to train / val / test / zoo.

    Args:
        programs (pl.DataFrame): The ``programs`` table (``program_id``, ``origin``).
        train (float, optional): Fraction of random programs to train on. (default: :obj:`0.7`)
        val (float, optional): Fraction of random programs for validation (early stopping);
            the rest is ``test``. (default: :obj:`0.15`)
        salt (str, optional): Prefix of the hashed ids, to draw another split. (default: :obj:`""`)
        seed (int, optional): Seed of the split (``models.seed``); 0 keeps the split of
            earlier versions. (default: :obj:`0`)

    Returns:
        pl.DataFrame: ``(program_id, split)``, sorted by ``program_id``.
    """
    if not (0 < train <= 1 and 0 <= val < 1 and train + val <= 1 + 1e-9):
        raise UserError(f"bad split fractions: train={train}, val={val} (test is the rest)")
    test = 1.0 - train - val
    test = 0.0 if test < 1e-9 else test  # 0.85 + 0.15 leaves 3e-17 in floats, not a test program
    origins = set(programs["origin"].unique().to_list())
    unknown = origins - set(ORIGINS)
    if unknown:
        raise UserError(f"unknown program origins {sorted(unknown)}; expected random, zoo or user")
    if programs["program_id"].n_unique() != programs.height:
        raise UserError("programs table has duplicate program_id values")

    rand = sorted(
        programs.filter(pl.col("origin") == "random")["program_id"].to_list(),
        key=lambda p: (program_hash(p, salt, seed), p),
    )
    n = len(rand)
    n_val, n_test = round(val * n), round(test * n)
    if n >= 3:
        n_val = max(n_val, 1) if val > 0 else 0
        n_test = max(n_test, 1) if test > 0 else 0
    n_train = max(n - n_val - n_test, 0)
    labels = ["train"] * n_train + ["val"] * n_val + ["test"] * (n - n_train - n_val)
    assigned = dict(zip(rand, labels))
    rows = [
        {"program_id": pid, "split": assigned.get(pid) or ORIGIN_TO_SPLIT[origin]}
        for pid, origin in zip(programs["program_id"].to_list(), programs["origin"].to_list())
    ]
    return pl.DataFrame(rows, schema={"program_id": pl.String, "split": pl.String}).sort("program_id")


#: The split label of training programs left out of a smaller training set (no model reads it).
UNUSED = "unused"


def train_subset(split: pl.DataFrame, n_train: int | None, seed: int = 0) -> pl.DataFrame:
    """The split with only ``n_train`` of its training programs kept as ``train``, the rest
    :data:`UNUSED`; validation, test and zoo programs unchanged (a learning curve's points).

    The kept programs are the first ``n_train`` of one random order per ``seed``, so a seed's
    subsets are nested (the 50 programs include the 25). ``None``, or at least every training
    program: the split as it is."""
    train_ids = sorted(split.filter(pl.col("split") == "train")["program_id"].to_list())
    if n_train is None or n_train >= len(train_ids):
        return split
    if n_train < 1:
        raise UserError(f"a training subset of {n_train} programs: give at least 1")
    order = np.random.default_rng(seed).permutation(len(train_ids))
    keep = [train_ids[i] for i in order[:n_train]]
    dropped = (pl.col("split") == "train") & ~pl.col("program_id").is_in(keep)
    return split.with_columns(split=pl.when(dropped).then(pl.lit(UNUSED)).otherwise(pl.col("split")))


def held_out(programs: pl.DataFrame, adapt_on: Sequence[str] = ()) -> pl.DataFrame:
    """Every program held out: zoo programs ``"zoo"``, all others ``"test"``; with
    ``adapt_on``, programs of those origins ``"train"`` instead.

    For scoring models trained on another dataset (e.g. the reference dataset) on this
    machine's fresh one, none of whose programs they trained on. ``adapt_on``: the programs
    ``perfgraph adapt --data`` fine-tunes those models on, so that no model, adapted or not,
    is scored on them."""
    unknown = set(adapt_on) - set(ORIGINS)
    if unknown:
        raise UserError(f"adapt on origins {sorted(unknown)}: expected random, zoo or user")
    origin = pl.col("origin")
    split = pl.when(origin.is_in(list(adapt_on))).then(pl.lit("train"))
    split = split.when(origin == "zoo").then(pl.lit("zoo")).otherwise(pl.lit("test"))
    return programs.select("program_id", split=split).sort("program_id")


def write_split(
    dataset_dir: str | os.PathLike,
    out: str | os.PathLike,
    train: float = 0.7,
    val: float = 0.15,
    salt: str = "",
    seed: int = 0,
    all_held_out: bool = False,
    adapt_on: Sequence[str] = (),
) -> pl.DataFrame:
    """Split the programs of ``dataset_dir`` and write the ``split`` table to ``out``
    (with ``all_held_out``, the :func:`held_out` split, ``adapt_on`` its)."""
    programs = schema.read_table(schema.table_path(dataset_dir, "programs"), "programs")
    if all_held_out:
        split = held_out(programs, adapt_on)
    else:
        split = assign_splits(programs, train=train, val=val, salt=salt, seed=seed)
    schema.write_table("split", split, out)
    return split


def read_split(path: str | os.PathLike) -> pl.DataFrame:
    """Read a ``split`` table."""
    return schema.read_table(path, "split")
