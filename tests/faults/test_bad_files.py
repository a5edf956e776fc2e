"""Disk trouble, bad Parquet and booby-trapped files: clear errors, nothing partial, no code run."""

from __future__ import annotations

import errno
import pickle
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
import torch

from featurize import schema

ROOT = Path(__file__).resolve().parents[2]


def machines() -> pl.DataFrame:
    row = {"machine_id": "m", "hostname": "h", "cpu_model": "c", "n_cores": 2, "timing_threads": 2,
           "halide_target": "host", "versions": "{}"}  # fmt: skip
    return pl.from_arrow(schema.from_rows("machines", [row]))


def test_disk_full_mid_write_leaves_nothing(tmp_path, monkeypatch) -> None:
    def half_then_enospc(table, where, **kw):
        Path(where).write_bytes(b"PAR1" + b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", half_then_enospc)
    target = tmp_path / "machines.parquet"
    with pytest.raises(schema.WriteError, match=re.escape(f"cannot write {target}: No space left on device")):
        schema.write_table("machines", machines(), target)
    assert list(tmp_path.iterdir()) == []


def test_results_path_blocked_by_a_file(tmp_path) -> None:
    (tmp_path / "results").write_text("not a directory")
    with pytest.raises(schema.WriteError, match="cannot write .*results/ds/machines.parquet"):
        schema.write_table("machines", machines(), tmp_path / "results/ds/machines.parquet")


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:40]), "not a readable Parquet file"),
        (lambda p: pq.write_table(pl.DataFrame({"x": [1]}).to_arrow(), p), "not a perfgraph table"),
        (
            lambda p: pq.write_table(
                pq.read_table(p).replace_schema_metadata({schema.META_VERSION: b"0", schema.META_TABLE: b"programs"}), p
            ),
            "schema version 0, but this perfgraph reads version",
        ),
    ],
)
def test_cli_reports_a_bad_dataset_in_one_line(tiny_run, tmp_path, damage, message) -> None:
    ds = tmp_path / "ds"
    ds.mkdir()
    for t in schema.TABLE_NAMES:
        (ds / f"{t}.parquet").write_bytes((tiny_run / f"results/tiny/{t}.parquet").read_bytes())
    damage(ds / "programs.parquet")
    run = subprocess.run([sys.executable, "-m", "featurize", "summary", str(ds)], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.startswith(f"error: {ds / 'programs.parquet'}: ")
    assert message in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(MARKER),))


MARKER = "/tmp/perfgraph-booby-trap-fired"


def test_booby_trapped_checkpoint_is_refused(tmp_path) -> None:
    from models.registry import load_checkpoint

    Path(MARKER).unlink(missing_ok=True)
    (tmp_path / "model").mkdir()
    torch.save({"format": 1, "weights": _Payload()}, tmp_path / "model/checkpoint.pt")
    with pytest.raises(Exception, match="checkpoint|Weights only load failed|Unsupported"):
        load_checkpoint(tmp_path / "model")
    assert not Path(MARKER).exists(), "loading a checkpoint ran code from it"


def test_booby_trapped_dataset_file_runs_nothing(tmp_path) -> None:
    Path(MARKER).unlink(missing_ok=True)
    (tmp_path / "programs.parquet").write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(schema.SchemaError, match="not a readable Parquet file"):
        schema.read_table(tmp_path / "programs.parquet", "programs")
    assert not Path(MARKER).exists()


def test_no_code_path_unpickles() -> None:
    """Data is Parquet and JSON; checkpoints load with weights_only=True."""
    offenders = []
    for path in ROOT.glob("[a-z]*/**/*.py"):
        if path.is_relative_to(ROOT / "tests") or ".venv" in path.parts:
            continue
        text = path.read_text()
        if re.search(r"\bpickle\.loads?\(|allow_pickle\s*=\s*True|joblib\.load", text):
            offenders.append(str(path))
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            if "weights_only=True" not in call:
                offenders.append(f"{path}: {call}")
    assert offenders == []
