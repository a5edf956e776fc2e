"""Command line of the featurize stage: ``python -m featurize {build,summary}``."""

from __future__ import annotations

import argparse
import json
import sys

from featurize.build import featurize_dataset


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m featurize", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="join per-program work directories into the dataset tables")
    b.add_argument("--out", required=True, help="dataset directory to write")
    b.add_argument("--retime", help="measurements of the drift re-time (timing pass 2)")
    b.add_argument("--retime-samples", help="timing windows of the drift re-time (default: retime_samples.parquet beside --retime)")
    b.add_argument("work_dirs", nargs="+")
    s = sub.add_parser("summary", help="print a dataset's headline figures as JSON")
    s.add_argument("dataset")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        featurize_dataset(args.work_dirs, args.retime, args.out, args.retime_samples)
    else:
        from featurize.schema import read_dataset
        from featurize.summary import dataset_summary

        print(json.dumps(dataset_summary(read_dataset(args.dataset)), indent=1))
    return 0


if __name__ == "__main__":
    from featurize.errors import run_reporting_user_errors

    sys.exit(run_reporting_user_errors(main))
