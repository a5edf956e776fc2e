"""The TVM timing adapter: a failing candidate is a row with a status; results are checked."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tvm", reason="apache-tvm is not installed")


def test_failures_become_rows(tmp_path) -> None:
    from pipelines.tvm.bench import check_result, time_once

    bad = tmp_path / "bad.so"
    bad.write_bytes(b"not a library")
    row = time_once(bad, [{"shape": [4], "dtype": "float32", "output": True}], {"window_s": 0.001}, 20, 1)
    assert row["status"] in ("runtime_error", "crash") and row["error"]
    ref = np.ones((3, 3), np.float32)
    assert check_result(ref.copy(), ref) is None
    assert "wrong result" in check_result(ref * 2, ref)
