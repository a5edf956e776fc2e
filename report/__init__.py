"""perfgraph report: the prediction-error comparison as one self-contained HTML page.

:func:`report.build.build_report` reads a dataset directory, the models' outputs and
the config, and writes ``index.html`` (figures embedded as PNG, inline CSS, no script),
``summary.md`` (the headline table) and ``figures/*.png``. Command line:
``perfgraph report``; page checks in headless Chromium: :mod:`report.chromium`.
"""

from report.build import ReportResult, build_report
from report.sections import SECTION_IDS

__all__ = ["build_report", "ReportResult", "SECTION_IDS"]
