"""Command line of the Halide dataset stages: ``perfgraph {generate,compile,refine,bench,retime}``."""

from __future__ import annotations

import argparse
import json
import os
import sys

from featurize.schema import write_json
from pipelines.cli import add_timing_flags, name_subcommands, run_timing_stage


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="perfgraph", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("generate", help="write one program entry (JSON)")
    g.add_argument("--program-id", required=True)
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--seed", type=int, help="random program from this seed")
    src.add_argument("--zoo", help="zoo program name")
    src.add_argument("--user", help="user program file (defines build() or a Halide generator; path.py:ClassName names one)")
    g.add_argument("--generator-params", default="{}", help="a user generator's GeneratorParams (JSON)")
    g.add_argument("--params", default="{}", help="random generator parameters (JSON)")
    g.add_argument("--out", required=True)

    c = sub.add_parser("compile", help="sample and compile the schedules of one program")
    c.add_argument("--entry", required=True)
    c.add_argument("--out-dir", required=True)
    c.add_argument("--sampling", required=True, help="sampling config (JSON)")
    c.add_argument("--parallelism", type=int, default=0, help="cores the schedules target (0: this machine's)")

    f = sub.add_parser("refine", help="probe-time a program's candidates, then draw more near its fastest")
    f.add_argument("--entry", required=True)
    f.add_argument("--candidates", required=True, help="the compile stage's candidates table")
    f.add_argument("--out", required=True, help="candidates table of the new schedules (refined.parquet)")
    f.add_argument("--probe", required=True, help="measurements table of the probe timing")
    f.add_argument("--sampling", required=True, help="sampling config (JSON), with its refine section")
    f.add_argument("--timing", required=True, help="timing protocol (JSON: the config's timing section)")
    f.add_argument("--calibration-dir", default="results/_work/calibration")

    b = sub.add_parser("bench", help="time the compiled candidates of one program")
    b.add_argument("--candidates", required=True, nargs="+", help="its candidates tables (compile's, refine's)")
    r = sub.add_parser("retime", help="drift pass: re-time a fraction of all candidates, later")
    r.add_argument("candidates", nargs="+")
    add_timing_flags(b, r)

    name_subcommands(sub, "pipelines.halide.cli")
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    if args.cmd == "generate":
        from pipelines.halide import programs

        if args.seed is not None:
            entry = programs.random_entry(args.program_id, args.seed, json.loads(args.params))
        elif args.zoo:
            entry = programs.zoo_entry(args.zoo)
        else:
            generator_params = json.loads(args.generator_params)
            entry = programs.user_entry(args.user, generator_params)
            # A bad program fails here, not later.
            programs.load_user_program(args.user, args.program_id, generator_params=generator_params)
        write_json(entry, args.out)
    elif args.cmd == "compile":
        from pipelines.halide.sample import compile_program

        compile_program(args.entry, args.out_dir, json.loads(args.sampling), args.parallelism or cores)
    elif args.cmd == "refine":
        from pipelines.halide.refine import refine_program
        from pipelines.protocol import Protocol

        protocol = Protocol.from_config(json.loads(args.timing))
        refine_program(args.entry, args.candidates, args.out, args.probe, json.loads(args.sampling), protocol,
                       args.calibration_dir)  # fmt: skip
    elif args.cmd in ("bench", "retime"):
        from pipelines.halide import bench

        run_timing_stage(args, bench, args.candidates)
    return 0


if __name__ == "__main__":
    from featurize.schema import run_reporting_user_errors

    sys.exit(run_reporting_user_errors(main))
