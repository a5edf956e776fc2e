"""Command line of the TVM dataset stages (what ``workflow/rules/tvm.smk`` calls).

perfgraph tvm-generate  --program-id ID (--seed N [--params JSON] | --zoo NAME) --out F
perfgraph tvm-sample    --entry F --out-dir D [--sampling JSON] [--parallelism N] [--threads T]
perfgraph tvm-bench     --work-dir D --out F --samples F --machine F --timing JSON
perfgraph tvm-retime    --out F --samples F --timing JSON --fraction X WORK_DIR...
perfgraph tvm-featurize --out DATASET_DIR [--retime F] WORK_DIR...
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from pipelines.cli import add_timing_flags, name_subcommands, run_timing_stage


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="perfgraph", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("generate", help="write one TVM program entry (JSON)")
    g.add_argument("--program-id", required=True)
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--seed", type=int)
    src.add_argument("--zoo")
    g.add_argument("--params", default="{}", help="random generator parameters (JSON)")
    g.add_argument("--out", required=True)

    s = sub.add_parser("sample", help="sample, compile and featurize MetaSchedule schedules of one program")
    s.add_argument("--entry", required=True)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--sampling", default="{}", help="sampling config (JSON)")
    s.add_argument("--parallelism", type=int, default=0, help="cores the schedules target (0: this machine's)")
    s.add_argument("--threads", type=int, default=1, help="threads of feature extraction and XGBoost while sampling")

    b = sub.add_parser("bench", help="time the compiled candidates of one program")
    b.add_argument("--work-dir", required=True)
    r = sub.add_parser("retime", help="drift pass: re-time a fraction of all candidates, later")
    r.add_argument("work_dirs", nargs="+")
    add_timing_flags(b, r)

    f = sub.add_parser("featurize", help="write the dataset tables from the work directories")
    f.add_argument("--out", required=True)
    f.add_argument("--retime", default=None)
    f.add_argument("work_dirs", nargs="+")

    name_subcommands(sub, "pipelines.tvm.cli")
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    if args.cmd == "generate":
        from featurize.schema import write_json
        from pipelines.tvm.programs import program_entry

        if args.seed is not None:
            entry = program_entry(args.program_id, seed=args.seed, params=json.loads(args.params))
        else:
            entry = program_entry(args.program_id, zoo=args.zoo)
        write_json(entry, args.out)
    elif args.cmd == "sample":
        from pipelines.tvm.sample import sample_program

        sample_program(args.entry, args.out_dir, json.loads(args.sampling), args.parallelism or cores, args.threads)
    elif args.cmd in ("bench", "retime"):
        from pipelines.tvm import bench

        run_timing_stage(args, bench, args.work_dir if args.cmd == "bench" else args.work_dirs)
    elif args.cmd == "featurize":
        from featurize.tvm.graph import featurize_dataset

        counts = featurize_dataset(args.work_dirs, args.retime, args.out)
        print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    from featurize.schema import run_reporting_user_errors

    sys.exit(run_reporting_user_errors(main))
