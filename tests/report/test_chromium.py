"""The report in a real browser: headless Chromium loads it, takes a screenshot, and
any console error fails the test. The detector itself is tested on pages that do
log errors, so a silent pass cannot come from a blind detector."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from report.chromium import check_page, main

pytestmark = pytest.mark.write_disk


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def _page(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "page.html"
    path.write_text(f"<!DOCTYPE html><html><head><title>t</title></head><body><h1>page</h1>{body}</body></html>")
    return path


def test_report_in_chromium(full_report, chromium, tmp_path) -> None:
    res, _, _ = full_report
    shot = tmp_path / "report.png"
    page = check_page(res.index_html, shot, chromium=chromium)
    assert page.errors == [], page.errors
    assert page.title.startswith("perfgraph")
    width, height = _png_size(shot)
    assert width == 1280 and height > 4000  # the whole page, not only the first screen
    assert shot.stat().st_size > 100_000


def test_console_error_is_detected(chromium, tmp_path) -> None:
    page = check_page(_page(tmp_path, '<script>console.error("x")</script>'), tmp_path / "s.png", chromium=chromium)
    assert page.errors == ["console.error: x"]
    assert (tmp_path / "s.png").exists()


def test_exception_and_broken_image_are_detected(chromium, tmp_path) -> None:
    page = check_page(_page(tmp_path, '<script>noSuchFunction()</script><img src="missing.png">'), chromium=chromium)
    assert any("uncaught exception" in e and "noSuchFunction" in e for e in page.errors), page.errors
    assert any("missing.png" in e for e in page.errors), page.errors


def test_log_and_warning_are_not_errors(chromium, tmp_path) -> None:
    page = check_page(_page(tmp_path, '<script>console.log("hello"); console.warn("w")</script>'), chromium=chromium)
    assert page.errors == []
    assert page.console == ["log: hello", "warning: w"]


def test_command_line_exit_codes(chromium, tmp_path, capsys) -> None:
    assert main([str(_page(tmp_path, ""))]) == 0
    assert main([str(_page(tmp_path, '<script>console.error("boom")</script>'))]) == 1
    assert "console error: console.error: boom" in capsys.readouterr().err
