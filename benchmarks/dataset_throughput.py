"""Dataset throughput of a finished run: schedules labelled per minute, and where the time went.

Reads what a run left behind, runs nothing:

* the dataset's ``measurements`` table: schedules sampled and compiled (pass-1 rows),
  schedules labelled (pass-1 rows with ``status == "ok"``), the compiler's own time per
  schedule (``compile_time_s``) and the harness's time spent running pipelines
  (timed runs x median run time over the ``timing_samples`` windows);
* Snakemake's log of the run (``.snakemake/log/*.snakemake.log``): the wall time and each
  job's start and end (1 s resolution; under a cluster executor a job's time includes
  its queueing);
* per-job ``benchmark:`` files, if the rules write them (``--benchmarks``), which replace
  the log's job times for the rules they cover.

Figures:

* ``labelled_per_min`` = labelled schedules / wall minutes;
* ``overhead_ratio`` = wall / (sum of compile-job time + sum of timing-job time), timing
  jobs being ``bench`` and ``retime``. Compile jobs run in parallel, so the ratio can be
  below 1; above 1 is time spent outside compiling and timing (generation, featurizing,
  Snakemake itself, idle cores while one timing job holds the machine);
* ``busy_share``: per rule, the share of the wall time during which at least one of its
  jobs ran — where the wall clock went;
* ``largest_cost``: the rule with the most job time.

    python benchmarks/dataset_throughput.py --dataset results/default \\
        --out results/bench/dataset_throughput.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from collections import defaultdict
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_DIR, environment, write_result  # noqa: E402

from featurize import schema  # noqa: E402

COMPILE_RULES = ("compile",)
TIMING_RULES = ("bench", "retime")

_TS = re.compile(r"^\s*\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]")
_START = re.compile(r"^\s*(?:local)?rule (\w+):\s*$")
_JOBID = re.compile(r"^\s*jobid: (\d+)\s*$")
_FINISHED = re.compile(r"^\s*Finished jobid: (\d+) \(Rule: (\w+)\)")
_ERROR = re.compile(r"^\s*Error in rule (\w+):")
_ELAPSED = re.compile(r"^Elapsed time: (?:(\d+) days?, )?(\d+):(\d\d):(\d\d(?:\.\d+)?)")
_DATE = re.compile(r"^\s*Date: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def _ts(text: str) -> dt.datetime:
    return dt.datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")


def parse_log(path: Path) -> dict:
    """Jobs (rule, start, end, ok) and the wall time of one Snakemake log."""
    jobs: dict[str, dict] = {}
    last_ts = first_ts = None
    pending_rule = pending_ts = None
    elapsed = None
    for line in path.read_text(errors="replace").splitlines():
        if m := _DATE.match(line):
            first_ts = first_ts or dt.datetime.fromisoformat(m.group(1))
        if m := _TS.match(line):
            last_ts = _ts(m.group(1))
            first_ts = first_ts or last_ts
            continue
        if m := _START.match(line):
            pending_rule, pending_ts = m.group(1), last_ts
            continue
        if (m := _JOBID.match(line)) and pending_rule:
            jobs[m.group(1)] = {"rule": pending_rule, "start": pending_ts, "end": None, "ok": None}
            pending_rule = None
            continue
        if m := _FINISHED.match(line):
            job = jobs.setdefault(m.group(1), {"rule": m.group(2), "start": None, "end": None, "ok": None})
            job.update(end=last_ts, ok=True)
            continue
        if m := _ERROR.match(line):
            pending_rule = None
            # The jobid line follows; mark the most recent unfinished job of that rule failed.
            for job in reversed(list(jobs.values())):
                if job["rule"] == m.group(1) and job["end"] is None:
                    job.update(end=last_ts, ok=False)
                    break
            continue
        if m := _ELAPSED.match(line):
            days, h, mnt, s = m.groups()
            elapsed = int(days or 0) * 86400 + int(h) * 3600 + int(mnt) * 60 + float(s)
    wall = elapsed if elapsed is not None else ((last_ts - first_ts).total_seconds() if first_ts and last_ts else None)
    return {"jobs": list(jobs.values()), "wall_s": wall, "start": first_ts, "complete": elapsed is not None}


def find_log(workdir: Path, dataset: str) -> Path:
    """The newest Snakemake log of ``workdir`` whose run wrote ``results/<dataset>/measurements.parquet``."""
    logs = sorted((workdir / ".snakemake/log").glob("*.snakemake.log"), reverse=True)
    needle = f"results/{dataset}/measurements.parquet"
    for log in logs:
        text = log.read_text(errors="replace")
        if needle in text and "(Rule: featurize)" in text:
            return log
    raise SystemExit(f"error: no Snakemake log in {workdir}/.snakemake/log shows a run that built {needle}")


def benchmark_times(bench_dir: Path | None) -> dict[str, list[float]]:
    """Seconds per job from ``benchmark:`` files: ``<bench_dir>/<rule>/*.tsv`` or ``<bench_dir>/<rule>.tsv``."""
    out: dict[str, list[float]] = defaultdict(list)
    if bench_dir is None or not bench_dir.is_dir():
        return out
    for tsv in sorted(bench_dir.rglob("*.tsv")):
        rel = tsv.relative_to(bench_dir)
        rule = rel.parts[0] if len(rel.parts) > 1 else tsv.stem
        frame = pl.read_csv(tsv, separator="\t")
        if "s" in frame.columns and frame.height:
            out[rule].append(float(frame["s"][-1]))  # the last repeat, as Snakemake appends none
    return out


def _union_s(intervals: list[tuple[dt.datetime, dt.datetime]]) -> float:
    total, cur_a, cur_b = 0.0, None, None
    for a, b in sorted(intervals):
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                total += (cur_b - cur_a).total_seconds()
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        total += (cur_b - cur_a).total_seconds()
    return total


def table_figures(dataset: Path) -> dict:
    meas = schema.read_table(schema.table_path(dataset, "measurements"), "measurements")
    n_programs = schema.read_table(schema.table_path(dataset, "programs"), "programs").height
    machines = schema.read_table(schema.table_path(dataset, "machines"), "machines")
    first = meas.filter(pl.col("timing_pass") == 1)
    samples = schema.read_table(schema.table_path(dataset, "timing_samples"), "timing_samples")
    measure_s = samples.select((pl.col("n_runs") * pl.col("window_median_s")).sum()).item()
    return {
        "programs": n_programs,
        # Where the run timed (the environment block below is where this analysis ran).
        "run_machines": machines.select("machine_id", "hostname", "cpu_model", "n_cores", "timing_threads").to_dicts(),
        "schedules_compiled": first.height,
        "schedules_labelled": first.filter(pl.col("status") == "ok").height,
        "retimed": meas.filter(pl.col("timing_pass") == 2).height,
        "timing_windows": samples.height,
        "timing_windows_slow": int(samples["slow"].sum()),
        "status_counts": dict(first.group_by("status").len().sort("status").iter_rows()),
        "compiler_time_s": float(first["compile_time_s"].fill_nan(None).fill_null(0).sum()),
        "pipeline_run_time_s": float(measure_s or 0.0),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="results/default", help="the run's dataset directory")
    ap.add_argument("--workdir", default=".", help="where the run ran (holds .snakemake/log)")
    ap.add_argument("--log", help="the run's Snakemake log (default: the newest that built --dataset)")
    ap.add_argument("--benchmarks", help="directory of the rules' benchmark: files (default: results/benchmarks/<dataset>)")
    ap.add_argument("--out", default=str(BENCH_DIR / "dataset_throughput.json"))
    args = ap.parse_args(argv)
    env = environment()  # before the work: the load average it started under

    workdir = Path(args.workdir)
    dataset = Path(args.dataset) if Path(args.dataset).is_absolute() else workdir / args.dataset
    log_path = Path(args.log) if args.log else find_log(workdir, dataset.name)
    run = parse_log(log_path)
    if not run["wall_s"]:
        raise SystemExit(f"error: {log_path}: no timestamps")
    tables = table_figures(dataset)

    jobs = [j for j in run["jobs"] if j["start"] and j["end"]]
    per_rule: dict[str, list[float]] = defaultdict(list)
    intervals: dict[str, list] = defaultdict(list)
    for j in jobs:
        per_rule[j["rule"]].append((j["end"] - j["start"]).total_seconds())
        intervals[j["rule"]].append((j["start"], j["end"]))
    bench_dir = Path(args.benchmarks) if args.benchmarks else workdir / "results/benchmarks" / dataset.name
    from_files = benchmark_times(bench_dir)
    source = {r: ("benchmark files" if r in from_files else "snakemake log") for r in set(per_rule) | set(from_files)}
    for rule, times in from_files.items():
        per_rule[rule] = times

    wall = float(run["wall_s"])
    rules = {
        r: {"jobs": len(t), "sum_s": round(sum(t), 3), "max_s": round(max(t), 3), "source": source[r]}
        for r, t in sorted(per_rule.items())
    }
    busy = {r: round(_union_s(iv) / wall, 4) for r, iv in sorted(intervals.items())}
    all_iv = [iv for ivs in intervals.values() for iv in ivs]
    compile_s = sum(sum(per_rule.get(r, [])) for r in COMPILE_RULES)
    timing_s = sum(sum(per_rule.get(r, [])) for r in TIMING_RULES)
    notes = []
    if rules.get("compile", {}).get("jobs", 0) < tables["programs"]:
        notes.append("this run compiled fewer programs than the dataset holds (a partial rerun?): figures cover it only")
    if not run["complete"]:
        notes.append("the log has no 'Elapsed time' line: wall time is first to last timestamp")
    result = {
        "benchmark": "dataset_throughput",
        "dataset": str(args.dataset),
        "snakemake_log": str(log_path),
        "run_started": run["start"].isoformat() if run["start"] else None,
        "wall_s": round(wall, 3),
        **tables,
        "labelled_per_min": round(tables["schedules_labelled"] / (wall / 60), 3),
        "compile_job_s": round(compile_s, 3),
        "timing_job_s": round(timing_s, 3),
        "overhead_ratio": round(wall / (compile_s + timing_s), 4) if compile_s + timing_s else None,
        # The same ratio against the work inside those jobs: the compiler's own time per
        # schedule and the time pipelines actually ran under the timing harness.
        "overhead_ratio_inner": round(wall / (tables["compiler_time_s"] + tables["pipeline_run_time_s"]), 4)
        if tables["compiler_time_s"] + tables["pipeline_run_time_s"]
        else None,
        "rules": rules,
        "busy_share": busy,
        # Share of the wall time with no job running (log times are whole seconds: clipped at 0).
        "idle_share": round(max(0.0, 1 - _union_s(all_iv) / wall), 4) if all_iv else None,
        "largest_cost": max(rules, key=lambda r: rules[r]["sum_s"]) if rules else None,
        "notes": notes,
    }
    result["environment"] = env
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
