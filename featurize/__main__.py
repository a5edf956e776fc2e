"""Command line of the featurize stage: ``perfgraph {featurize,summary,publish,merge}`` (also ``python -m featurize {build,summary,publish,merge}``)."""

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
    p = sub.add_parser("publish", help="copy a built dataset to a shareable directory with its config and card")
    p.add_argument("--dataset", required=True, help="the built dataset, e.g. results/reference")
    p.add_argument("--config", required=True, help="the validated config it was built with (its config.json)")
    p.add_argument("--work-dir", default=None, help="its work directory, for the build's wall time")
    p.add_argument("--command", default="", help="the command that rebuilds it, shown on the card")
    p.add_argument("--out", required=True, help="where to publish, e.g. datasets/reference")
    m = sub.add_parser("merge", help="one dataset from several (distinct programs), to train one model on")
    m.add_argument("--out", required=True, help="a new dataset directory")
    m.add_argument("datasets", nargs="+", help="built dataset directories, e.g. results/picks results/zoo_shaped")

    from pipelines.cli import name_subcommands

    name_subcommands(sub, "featurize.__main__")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        featurize_dataset(args.work_dirs, args.retime, args.out, args.retime_samples)
    elif args.cmd == "merge":
        from featurize.merge import merge_datasets

        print(json.dumps(merge_datasets(args.datasets, args.out)))
    elif args.cmd == "publish":
        from featurize.card import publish
        from featurize.schema import SchemaError

        try:
            config = json.loads(open(args.config, encoding="utf-8").read())
        except ValueError as exc:
            raise SchemaError(f"{args.config}: not a JSON config: {exc}") from None
        publish(args.dataset, args.out, config=config, work_dir=args.work_dir, rebuild_command=args.command)
    else:
        from featurize.schema import read_dataset
        from featurize.summary import dataset_summary

        print(json.dumps(dataset_summary(read_dataset(args.dataset)), indent=1))
    return 0


if __name__ == "__main__":
    from featurize.schema import run_reporting_user_errors

    sys.exit(run_reporting_user_errors(main))
