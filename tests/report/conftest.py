"""Fixtures for the report tests: the fake dataset and models of
:mod:`tests.report.report_fakes`, and the Chromium executable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.report.report_fakes import make_dataset, make_models

from report.chromium import find_chromium


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("report-data") / "ds")


@pytest.fixture(scope="session")
def models_dir(dataset, tmp_path_factory) -> Path:
    return make_models(tmp_path_factory.mktemp("report-models") / "models", dataset)


@pytest.fixture(scope="session")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report-config") / "config.yaml"
    path.write_text("# test config\ndataset: ds\nmodels:\n  names: [gcn, gine, gatv2, adams2019, tvm_xgb, pooled_xgb]\n"
                    "  epochs: 12\n")
    return path


@pytest.fixture(scope="session")
def full_report(dataset, models_dir, config_file, tmp_path_factory):
    """The complete report of the fake run: (result, index.html text, summary.md text)."""
    from report import build_report

    out = tmp_path_factory.mktemp("report") / "report"
    res = build_report(dataset, models_dir, out, config_files=[config_file], strict=True)
    return res, res.index_html.read_text(), res.summary_md.read_text()


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable; skips without one unless PERFGRAPH_REQUIRE_CHROMIUM=1 (CI)."""
    exe = find_chromium()
    if exe is None:
        msg = "headless Chromium not found (Debian: apt-get install chromium; or set PERFGRAPH_CHROMIUM)"
        if os.environ.get("PERFGRAPH_REQUIRE_CHROMIUM") == "1":
            pytest.fail(msg + "; PERFGRAPH_REQUIRE_CHROMIUM=1 requires it")
        pytest.skip(msg)
    return exe
