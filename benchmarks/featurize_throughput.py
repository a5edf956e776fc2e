"""Featurize throughput (rows per second), and Parquet scan times of a ~1M-schedule dataset.

1. **Featurize**: ``featurize.build.featurize_dataset`` over a run's per-program work
   directories (``results/_work/<dataset>/``), into a temporary directory, ``--repeats``
   times. Figures: output rows per second (all seven tables), schedules and programs per
   second.
2. **Scan**: the ``programs``, ``schedules`` and ``measurements`` tables of that dataset,
   replicated (each copy with its own program and schedule ids, timings jittered by ~5%
   so copies do not compress into each other) until ``schedules``
   has ``--rows`` rows, written with the dataset's own Parquet schema (zstd, row groups of
   ``--row-group`` rows). Then timed, median of ``--repeats`` after one warm-up:
   lazy polars queries (a count, the README's filter+join+group-by (docs/dataset.md), a full read of
   ``measurements``, the schedule keys) and docs/dataset.md's DuckDB query.

Replicated schedule texts repeat, so Parquet's dictionary encoding stores them once per
row group: the ``schedules`` file is far smaller than a real 1M-schedule one would be.
None of the timed queries reads ``schedule_text``.

    python benchmarks/featurize_throughput.py --work-dir results/_work/default \\
        --out results/bench/featurize_throughput.json
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_DIR, ROOT, environment, timed, write_result  # noqa: E402

from featurize import schema  # noqa: E402
from featurize.build import featurize_dataset  # noqa: E402

SCAN_TABLES = ("programs", "schedules", "measurements")


def default_work_dir() -> Path:
    """results/_work/default if a run left it, else results/_work/tiny."""
    for name in ("default", "tiny"):
        d = ROOT / "results/_work" / name
        if any(d.glob("*/candidates.parquet")):
            return d
    raise SystemExit("error: no results/_work/default or results/_work/tiny: run the workflow first (make run)")


def program_dirs(work_dir: Path) -> list[Path]:
    dirs = sorted(p.parent for p in work_dir.glob("*/candidates.parquet"))
    if not dirs:
        raise SystemExit(f"error: {work_dir} has no program work directory (*/candidates.parquet)")
    return dirs


def bench_featurize(work_dir: Path, out_dir: Path, repeats: int) -> dict:
    dirs = program_dirs(work_dir)
    retime = work_dir / "retime.parquet"
    retime = retime if retime.exists() else None
    t = timed(lambda: featurize_dataset(dirs, retime, out_dir), repeats=repeats, warmup=1)
    rows = {name: schema.read_table(schema.table_path(out_dir, name), name).height for name in schema.TABLE_NAMES}
    total = sum(rows.values())
    return {
        "work_dir": str(work_dir),
        "programs": rows["programs"],
        "rows": rows,
        "rows_total": total,
        "time": t,
        "rows_per_s": round(total / t["median_s"], 1),
        "schedules_per_s": round(rows["schedules"] / t["median_s"], 1),
        "programs_per_s": round(rows["programs"] / t["median_s"], 2),
    }


def _copy(frame: pl.DataFrame, k: int, rng: np.random.Generator) -> pl.DataFrame:
    """Copy ``k`` of a table: its own program and schedule ids, and timings jittered by ~5%
    (so that copies do not compress into each other as exact repeats would)."""
    out = frame.with_columns(pl.col("program_id") + f"~{k:05d}")
    if "schedule_id" in out.columns:  # still a 16-character id, unique per copy
        out = out.with_columns(pl.col("schedule_id").str.slice(0, 11) + f"{k:05x}")
    jitter = [c for c in out.columns if c.startswith("runtime_") or c in ("compile_time_s", "warmup_s")]
    if jitter:
        factor = pl.Series(np.abs(1 + 0.05 * rng.standard_normal(out.height)))
        out = out.with_columns([pl.col(c) * factor for c in jitter])
    return out


def replicate(dataset: Path, out_dir: Path, target_rows: int, row_group: int) -> dict:
    """Write ``SCAN_TABLES`` of ``dataset`` replicated until ``schedules`` has ``target_rows`` rows."""
    base = {name: schema.read_table(schema.table_path(dataset, name), name) for name in SCAN_TABLES}
    copies = max(1, math.ceil(target_rows / base["schedules"].height))
    per_chunk = max(1, row_group // base["schedules"].height)
    out: dict = {"copies": copies}
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, frame in base.items():
        path = schema.table_path(out_dir, name)
        writer = None
        for first in range(0, copies, per_chunk):
            chunk = pl.concat([_copy(frame, k, rng) for k in range(first, min(copies, first + per_chunk))])
            table = schema.to_arrow(name, chunk)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=row_group)
        writer.close()
        meta = pq.read_metadata(path)
        out[name] = {"rows": meta.num_rows, "row_groups": meta.num_row_groups,
                     "file_mb": round(path.stat().st_size / 1e6, 2)}  # fmt: skip
    return out


def scan_queries(d: Path, repeats: int) -> dict:
    m, s, p = (str(schema.table_path(d, t)) for t in ("measurements", "schedules", "programs"))

    def count_ok():
        return (
            pl.scan_parquet(m)
            .filter((pl.col("status") == "ok") & (pl.col("timing_pass") == 1))
            .select(pl.len())
            .collect()
        )

    def readme_join():  # README: best time per (program, sampler)
        return (
            pl.scan_parquet(m)
            .filter((pl.col("status") == "ok") & (pl.col("timing_pass") == 1))
            .join(pl.scan_parquet(s).select("program_id", "schedule_id", "sampler"), on=["program_id", "schedule_id"])
            .group_by("program_id", "sampler")
            .agg(pl.col("runtime_median_s").min())
            .collect()
        )

    def full_measurements():
        return pl.read_parquet(m)

    def schedule_keys():
        return pl.scan_parquet(s).select("program_id", "schedule_id", "sampler", "has_featurization").collect()

    queries = {
        "polars_count_ok_pass1": count_ok,
        "polars_readme_filter_join_groupby": readme_join,
        "polars_read_all_measurements": full_measurements,
        "polars_schedule_keys": schedule_keys,
    }
    try:
        import duckdb

        con = duckdb.connect()

        def duck_readme():  # README: median run time per origin
            return con.sql(f"""
                select p.origin, count(*) as schedules, median(m.runtime_median_s) * 1e3 as median_ms
                from '{m}' m join '{p}' p using (program_id)
                where m.status = 'ok' and m.timing_pass = 1
                group by p.origin""").fetchall()

        queries["duckdb_readme_origin_median"] = duck_readme
    except ImportError:
        pass
    out = {}
    for name, fn in queries.items():
        result = fn()
        t = timed(fn, repeats=repeats, warmup=1)
        out[name] = {**t, "result_rows": len(result) if not isinstance(result, pl.DataFrame) else result.height}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work-dir", help="a run's per-program work directories (default: results/_work/default, else tiny)")
    ap.add_argument("--rows", type=int, default=1_000_000, help="schedule rows of the replicated dataset")
    ap.add_argument("--row-group", type=int, default=128_000, help="Parquet row-group size of the replicated files")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tmp", help="scratch directory (default: a temporary directory, removed after)")
    ap.add_argument("--out", default=str(BENCH_DIR / "featurize_throughput.json"))
    args = ap.parse_args(argv)
    env = environment()  # before the work: the load average it started under

    work_dir = Path(args.work_dir) if args.work_dir else default_work_dir()
    scratch = Path(args.tmp or tempfile.mkdtemp(prefix="perfgraph-bench-"))
    try:
        featurized = scratch / "featurized"
        try:
            feat = bench_featurize(work_dir, featurized, args.repeats)
        except schema.SchemaError as exc:
            raise SystemExit(f"error: {exc}\n(work directories of an older perfgraph? rebuild them: make run)") from None
        big = scratch / "replicated"
        t0 = time.perf_counter()
        files = replicate(featurized, big, args.rows, args.row_group)
        write_s = time.perf_counter() - t0
        scans = scan_queries(big, args.repeats)
        n_meas = files["measurements"]["rows"]
        for q in scans.values():
            q["measurement_rows_per_s"] = round(n_meas / q["median_s"], 1)
        result = {
            "benchmark": "featurize_throughput",
            "featurize": feat,
            "scan": {
                "source": str(work_dir),
                "copies": files.pop("copies"),
                "write_s": round(write_s, 3),
                "files": files,
                "queries": scans,
                "note": "replicated schedule texts dictionary-encode: schedules file_mb understates a real dataset",
            },
        }
    finally:
        if not args.tmp:
            shutil.rmtree(scratch, ignore_errors=True)
    result["environment"] = env
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
