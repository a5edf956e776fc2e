"""Command line of the report stage.

    perfgraph report --dataset results/default --models results/models \
        --config config/config.yaml --out results/report

Writes ``<out>/index.html``, ``<out>/summary.md`` and ``<out>/figures/*.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="perfgraph report", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="dataset directory, e.g. results/default")
    parser.add_argument("--models", required=True, help="parent of the model directories, e.g. results/models")
    parser.add_argument("--out", required=True, help="report directory, e.g. results/report")
    parser.add_argument("--config", action="extend", nargs="+", default=[], metavar="FILE",
                        help="config file(s) used by the run, shown verbatim")
    parser.add_argument("--config-json", default=None, metavar="JSON",
                        help="the effective config as JSON (Snakemake's config after defaults)")
    parser.add_argument("--summary", default=None, help="summary.json (default: <models>/summary.json if present)")
    parser.add_argument("--split", default=None, help="split table (default: <dataset>/split.parquet)")
    parser.add_argument("--models-expected", nargs="*", default=None, metavar="NAME",
                        help="models to list even if missing (default: the config's models.names)")
    parser.add_argument("--no-figures", action="store_true", help="tables only (quick)")
    parser.add_argument("--strict", action="store_true", help="fail when a section cannot be built")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # build_report renders whatever is there (a run half done still gets its report); a path
    # that does not exist at all is a typo, and the command says so.
    for flag, path in (("--dataset", args.dataset), ("--models", args.models)):
        if not Path(path).is_dir():
            raise FileNotFoundError(f"{path}: {flag} directory not found")
    config = None
    if args.config_json:
        try:
            config = json.loads(args.config_json)
        except ValueError as exc:
            parser.error(f"--config-json is not valid JSON: {exc}")

    from report.build import build_report

    res = build_report(
        args.dataset,
        args.models,
        args.out,
        config_files=args.config,
        config=config,
        summary_path=args.summary,
        split_path=args.split,
        expected_models=args.models_expected,
        strict=args.strict,
        draw_figures=not args.no_figures,
    )
    for p in res.problems:
        print(f"note: {p}", file=sys.stderr)
    print(json.dumps({
        "index_html": str(res.index_html),
        "summary_md": str(res.summary_md),
        "figures": len(res.figures),
        "failed_sections": res.failed_sections,
    }))
    return 1 if res.failed_sections else 0


if __name__ == "__main__":
    from featurize.schema import run_reporting_user_errors

    sys.exit(run_reporting_user_errors(main))
