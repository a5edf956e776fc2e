"""Timing noise of the protocol: re-time N compiled schedules twice, at different times.

Independently of the workflow, takes N compiled, featurized candidates of a built
dataset's work directory (spread over its programs), and labels each of them twice with
the timing protocol of :mod:`pipelines.protocol` (the config's ``timing`` section, or
``--timing``): pass A, a pause of ``--gap-s``, then pass B with other shuffles and the
programs in reverse order. Writes:

* ``mape``: MAPE (%) of pass B's labels against pass A's; ``median_ratio``, ``p10``,
  ``p90``: quantiles of the ratio B / A (a machine that got slower between the passes
  shows as a median above 1);
* ``split_half``: the same figures between the odd and the even rounds of pass A;
* ``seconds_per_schedule``: wall time of a pass / schedules (what the bench jobs pay);
* ``slow_window_share`` and the calibration kernel's fast time, per pass;
* ``other_cpu_share``: the share of the machine's CPU time used by other processes while
  the benchmark ran (from ``/proc/stat``, minus this process and its children): what else
  ran. Run it on an otherwise idle machine.

    python benchmarks/timing_noise.py --work-dir results/_work/default --n 60 \\
        --out results/bench/timing_noise.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_DIR, ROOT, environment, write_result  # noqa: E402

from featurize import schema  # noqa: E402
from pipelines.bench import machine_info, prepare_timing, time_program  # noqa: E402
from pipelines.halide.bench import halide_loader  # noqa: E402
from pipelines.calibration import ensure_kernel  # noqa: E402
from featurize.noise import agreement, split_half_pairs  # noqa: E402
from pipelines.protocol import Protocol, fast_calibration  # noqa: E402


def default_timing() -> dict:
    """The default config's timing section (the schema's defaults fill the rest)."""
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text()) or {}
    return dict(cfg.get("timing") or {})


def select(work_dir: Path, n: int) -> list[tuple[Path, pl.DataFrame]]:
    """Up to ``n`` compiled, featurized candidates, spread over the programs (round-robin
    over programs, each program's in a hash order): ``[(program dir, candidates)]``."""
    per_prog = []
    for path in sorted(work_dir.glob("*/candidates.parquet")):
        c = schema.read_table(path, "candidates").filter((pl.col("compile_status") == "ok") & pl.col("has_featurization"))
        if c.height:
            key = [hashlib.sha256(s.encode()).hexdigest() for s in c["schedule_id"]]
            per_prog.append((path.parent, c.with_columns(pl.Series("_k", key)).sort("_k").drop("_k")))
    chosen: dict[Path, list[int]] = {}
    i = 0
    while sum(map(len, chosen.values())) < n and any(i < c.height for _, c in per_prog):
        for d, c in per_prog:
            if i < c.height and sum(map(len, chosen.values())) < n:
                chosen.setdefault(d, []).append(i)
        i += 1
    return [(d, c[chosen[d]]) for d, c in per_prog if d in chosen]


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return sum(f) - idle, sum(f)


def own_cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def one_pass(selection, protocol: Protocol, calib: Path, machine: dict, reverse: bool) -> dict:
    t0 = time.perf_counter()
    meas, samples = [], []
    for d, cands in reversed(selection) if reverse else selection:
        m, s = time_program(cands, lambda c, d=d: halide_loader(d / c["library"]), protocol, calib, machine)
        meas.append(m)
        samples.append(s)
    wall = time.perf_counter() - t0
    meas, samples = pl.concat(meas), pl.concat(samples)
    ok = samples.filter(pl.col("status") == "ok")
    return {
        "meas": meas,
        "samples": samples,
        "wall_s": wall,
        "fast_calibration_s": fast_calibration(ok["calibration_s"].to_numpy()),
        "slow_window_share": float(ok["slow"].mean()) if ok.height else None,
        "windows": samples.height,
    }


def ratio_figures(pairs: pl.DataFrame) -> dict:
    a = agreement(pairs)
    return {"mape": a["mape"], "median_ratio": a["median_ratio"], "p10": a["p10_ratio"], "p90": a["p90_ratio"],
            "n_schedules": a["n_schedules"]}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work-dir", default="results/_work/default", help="a built dataset's work directory")
    ap.add_argument("--n", type=int, default=60, help="schedules to re-time")
    ap.add_argument("--gap-s", type=float, default=30.0, help="pause between the two passes")
    ap.add_argument("--timing", help="timing protocol as JSON (default: config/config.yaml's timing section)")
    ap.add_argument("--threads", type=int, help="timing threads, overriding the protocol's (0: every core)")
    ap.add_argument("--calibration-dir", default="results/_work/calibration")
    ap.add_argument("--note", default="", help="what else ran, in words, for the record")
    ap.add_argument("--out", default=str(BENCH_DIR / "timing_noise.json"))
    ap.add_argument("--samples-out", help="also write both passes' windows here (a timing_samples table)")
    args = ap.parse_args(argv)

    timing = json.loads(args.timing) if args.timing else default_timing()
    if args.threads is not None:
        timing["threads"] = args.threads
    protocol = Protocol.from_config(timing)
    selection = select(Path(args.work_dir), args.n)
    n = sum(c.height for _, c in selection)
    if n == 0:
        print(f"error: no compiled, featurized candidate under {args.work_dir}", file=sys.stderr)
        return 2
    calib = ensure_kernel(args.calibration_dir)
    threads = prepare_timing(protocol)
    machine = machine_info(threads)
    env = environment()
    busy0, total0, own0 = *cpu_jiffies(), own_cpu_s()

    a = one_pass(selection, protocol, calib, machine, reverse=False)
    time.sleep(args.gap_s)
    protocol_b = Protocol(**{**protocol.as_dict(), "seed": protocol.seed + 1})
    b = one_pass(selection, protocol_b, calib, machine, reverse=True)

    busy1, total1, own1 = *cpu_jiffies(), own_cpu_s()
    hz = os.sysconf("SC_CLK_TCK")
    other = max(0.0, (busy1 - busy0) / hz - (own1 - own0)) / max((total1 - total0) / hz, 1e-9)

    key = ["program_id", "schedule_id"]
    la = a["meas"].filter(pl.col("status") == "ok").select(*key, label_a="runtime_s")
    lb = b["meas"].filter(pl.col("status") == "ok").select(*key, label_b="runtime_s")
    result = {
        "benchmark": "timing_noise",
        "work_dir": args.work_dir,
        "protocol": protocol.as_dict(),
        "threads": threads,
        "pinning": machine["pinning"],
        "gap_s": args.gap_s,
        "schedules": n,
        "programs": len(selection),
        **ratio_figures(la.join(lb, on=key)),
        "split_half": ratio_figures(split_half_pairs(a["samples"], protocol.aggregate)),
        "seconds_per_schedule": (a["wall_s"] + b["wall_s"]) / (2 * n),
        "passes": [{k: v for k, v in p.items() if k not in ("meas", "samples")} for p in (a, b)],
        "failed": int(a["meas"].filter(pl.col("status") != "ok").height),
        "other_cpu_share": other,
        "note": args.note,
        "environment": env,
    }
    ratios = (la.join(lb, on=key).select(pl.col("label_b") / pl.col("label_a")).to_series().to_numpy())
    result["within_5pct_share"] = float(np.mean(np.abs(ratios - 1) <= 0.05)) if len(ratios) else None
    write_result(result, args.out)
    if args.samples_out:
        both = pl.concat([a["samples"], b["samples"].with_columns(pl.lit(2, dtype=pl.Int32).alias("timing_pass"))])
        schema.write_table("timing_samples", both, args.samples_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
