"""Within-program spread of each sampler: does the mix span the space and stay near the best?

Draws a sampler mix (``--sampling``, JSON or YAML, shaped like the config's ``sampling``
section; default: the config's) for some random programs of the config's generator and
some zoo programs, compiles every schedule (two compile jobs at a time), then times them
alone with the config's timing protocol. Writes :func:`featurize.summary.sampler_spread`
of the featurized samples: per program the slowest over the fastest sample, the share
within 1.5x of the best, and per sampler the same with the geometric mean of its best
sample over the program's best.

    python benchmarks/sampler_spread.py --random 6 --zoo separable_blur harris_corners \\
        --out results/bench/sampler_spread.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_DIR, ROOT, environment, write_result  # noqa: E402

from featurize import schema  # noqa: E402
from featurize.summary import sampler_spread  # noqa: E402
from pipelines.halide import bench  # noqa: E402
from pipelines.halide import programs  # noqa: E402
from pipelines.protocol import Protocol  # noqa: E402


def validated_config(path: Path, sampling: str | None) -> dict:
    from snakemake.utils import validate

    cfg = yaml.safe_load(path.read_text())
    if sampling:
        cfg["sampling"] = yaml.safe_load(sampling)
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"), set_default=True)
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config/config.yaml")
    ap.add_argument("--sampling", help="the sampling section to measure (JSON or YAML; default: the config's)")
    ap.add_argument("--random", type=int, default=6, help="random programs (the config's generator, seeds 0, 1, ...)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--zoo", nargs="*", default=["separable_blur", "harris_corners"])
    ap.add_argument("--work-dir", type=Path, default=ROOT / "results/_work/sampler_spread")
    ap.add_argument("--jobs", type=int, default=2, help="compile jobs at a time")
    ap.add_argument("--out", type=Path, default=BENCH_DIR / "sampler_spread.json")
    args = ap.parse_args()

    cfg = validated_config(args.config, args.sampling)
    threads = cfg["timing"]["threads"] or 1
    entries = [programs.random_entry(f"r{s:05d}", s, cfg["programs"]["random"]["params"])
               for s in range(args.first_seed, args.first_seed + args.random)]  # fmt: skip
    entries += [programs.zoo_entry(z) for z in args.zoo]

    t0 = time.perf_counter()
    running: list[subprocess.Popen] = []
    for e in entries:
        work = args.work_dir / e["program_id"]
        work.mkdir(parents=True, exist_ok=True)
        schema.write_json(e, work / "entry.json")
        if (work / "candidates.parquet").exists():
            continue
        while len(running) >= args.jobs:
            running = [p for p in running if p.poll() is None]
            time.sleep(0.2)
        cmd = [sys.executable, "-m", "pipelines", "compile", "--entry", str(work / "entry.json"), "--out-dir", str(work),
               "--sampling", json.dumps(cfg["sampling"]), "--parallelism", str(threads)]  # fmt: skip
        running.append(subprocess.Popen(cmd, cwd=ROOT, stderr=open(work / "compile.log", "w")))
    for p in running:
        p.wait()
    compile_s = time.perf_counter() - t0

    # Timing runs alone, after every compile job has finished.
    protocol = Protocol.from_config({**cfg["timing"], "threads": threads})
    t0 = time.perf_counter()
    cands, meas = [], []
    for e in entries:
        work = args.work_dir / e["program_id"]
        if not (work / "measurements.parquet").exists():
            bench.bench_program(work / "candidates.parquet", work / "measurements.parquet",
                                work / "timing_samples.parquet", work / "machine.json", protocol,
                                ROOT / "results/_work/calibration")  # fmt: skip
        cands.append(pl.read_parquet(work / "candidates.parquet").drop("featurization", "schedule_text"))
        meas.append(pl.read_parquet(work / "measurements.parquet"))
    time_s = time.perf_counter() - t0
    spread = sampler_spread(pl.concat(cands, how="diagonal_relaxed"), pl.concat(meas, how="diagonal_relaxed"))
    write_result(
        {
            "benchmark": "sampler_spread",
            "sampling": cfg["sampling"],
            "programs": [e["program_id"] for e in entries],
            "compile_s": compile_s,
            "time_s": time_s,
            "spread": spread,
            "environment": environment(),
        },
        args.out,
    )
    print(json.dumps(spread, indent=1))


if __name__ == "__main__":
    main()
