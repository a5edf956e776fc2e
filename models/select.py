"""Use a trained model: rank, then time, candidate schedules of a user's own program.

``perfgraph predict PROGRAM.py --model DIR`` builds the program (the ``build()``
contract of README, "Use a trained model on your own program"), draws candidate schedules with the sampler
mix of the default config, featurizes them exactly as the dataset build does, and
scores them with the trained model (any of the six: GNNs and baselines go through
:class:`models.registry.TrainedModel`). Nothing is compiled or timed. The ranked
table lists every candidate: the ones a model cannot score (the reference
autoschedulers have no featurization) keep their row with a status.

``perfgraph tune PROGRAM.py --model DIR`` does the same, then compiles and times,
with the timing protocol of the default config, the model's top-k candidates and the
reference picks: Halide's default (Adams2019's beam search with its shipped weights,
at its own default beam of 32), Mullapudi2016 and Li2018. It prints each one's
speedup over Halide's default pick and writes the fastest measured schedule as the
C++ schedule Halide's autoschedulers emit, as a ``schedule.h`` in the shape of a
generator's ``*.schedule.h`` (Halide 21 gives no Python schedule source for
autoscheduler results), and a JSON record of every candidate.

With ``--seeds`` both score with the model's seed runs used as one (``DIR`` and
``DIR/seeds/<k>``, as the workflow trains them): each candidate's predicted time is the
geometric mean of the runs'.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from featurize import schema
from models.selection import HALIDE_DEFAULT
from models.selection import REFERENCES as OTHER_REFERENCES
from pipelines.halide.samplers import MANUAL

ROOT = Path(__file__).resolve().parents[1]


class SelectError(schema.UserError):
    """A user-facing problem: a bad program, model directory or sampling."""


def default_config(extra_samplers: dict | None = None) -> dict:
    """The default config (``config/config.yaml``), validated, its defaults filled in;
    ``extra_samplers`` (name -> sampler settings, as under ``sampling.samplers``) join its mix
    first, so the schema checks them and fills their defaults too."""
    import yaml
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    if extra_samplers:
        if not isinstance(extra_samplers, dict):
            raise SelectError(f"extra samplers: expected name -> settings, got {json.dumps(extra_samplers)}")
        taken = sorted(set(extra_samplers) & set(cfg["sampling"]["samplers"]))
        if taken:
            raise SelectError(f"extra samplers {taken}: the default mix has samplers of these names already")
        cfg["sampling"]["samplers"].update(extra_samplers)
    try:
        validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"), set_default=True)
    except WorkflowError as e:
        if not extra_samplers:
            raise
        # snakemake's message: a header line, then jsonschema's reason, then the whole schema.
        reason = next((line for line in str(e).splitlines() if line.startswith("ValidationError")), str(e))
        raise SelectError(f"extra samplers {json.dumps(extra_samplers)}: {reason}") from None
    return cfg


def default_sampling(extra_samplers: dict | None = None) -> dict:
    """The ``sampling`` section of the default config (``extra_samplers`` added to its mix),
    its weights files found from any directory."""
    from pipelines.halide.samplers import BUILTIN_WEIGHTS

    sampling = default_config(extra_samplers)["sampling"]
    for sampler in sampling["samplers"].values():
        if sampler["weights"] not in BUILTIN_WEIGHTS:
            sampler["weights"] = str(ROOT / sampler["weights"])  # an absolute path stays as it is
    return sampling


def default_timing() -> dict:
    """The ``timing`` section of the default config."""
    return default_config()["timing"]


class SeedEnsemble:
    """A model's seed runs used as one: a candidate's predicted time is the geometric mean
    of the runs' (:func:`models.selection.seed_ensemble` does the same for the benchmarks).

    Args:
        runs (list): The runs' :class:`models.registry.TrainedModel`, the first one first.
    """

    def __init__(self, runs: list) -> None:
        self.runs = runs

    def __repr__(self) -> str:
        return f"SeedEnsemble({self.runs[0].name}, {len(self.runs)} runs)"


def load_model(model_dir: str | Path, seeds: bool = False):
    """The trained model of ``model_dir`` (with ``seeds``, a :class:`SeedEnsemble` of it and
    its ``seeds/<k>`` runs), or one clear error naming the directory."""
    from models.evaluate import seed_run_dirs
    from models.registry import CHECKPOINT, TrainedModel

    model_dir = Path(model_dir)
    if not (model_dir / CHECKPOINT).is_file():
        raise SelectError(f"{model_dir}: no trained model here ({CHECKPOINT} not found); train one with make run")
    runs = []
    for run in seed_run_dirs(model_dir) if seeds else [model_dir]:
        try:
            runs.append(TrainedModel(run))
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is the user's directory's problem
            raise SelectError(f"{run}/{CHECKPOINT}: not a perfgraph model checkpoint ({type(exc).__name__}: {exc})")
    if len({r.name for r in runs}) > 1:
        raise SelectError(f"{model_dir}: its seed runs are different models ({sorted({r.name for r in runs})})")
    return SeedEnsemble(runs) if seeds else runs[0]


def check_program(program: str | Path, generator_params: dict | None = None) -> None:
    """Build the user's program once: a missing file, a syntax error, no ``build()`` or
    generator, or an input without estimates is one error naming the file, before any
    sampling starts."""
    from pipelines.halide.programs import load_user_program, parse_user_source

    if not Path(parse_user_source(str(program))[0]).is_file():
        raise SelectError(f"{program}: program file not found")
    load_user_program(program, generator_params=generator_params)


def draw_entry_candidates(
    entry: dict, work_dir: Path, sampling: dict, parallelism: int = 1, compile_libraries: bool = False
) -> pl.DataFrame:
    """The same for any program entry (:mod:`pipelines.halide.programs`: random, zoo or user)."""
    from pipelines.halide.sample import compile_program

    work_dir.mkdir(parents=True, exist_ok=True)
    schema.write_json(entry, work_dir / "entry.json")
    return compile_program(work_dir / "entry.json", work_dir, sampling, parallelism, compile_libraries)


def score_candidates(work_dir: Path, trained, host_row: dict | None = None) -> pl.DataFrame:
    """Every candidate of ``work_dir`` with the model's predicted time, fastest first; a model
    that reads machine features predicts for ``host_row``'s machine (:func:`host_row_for`)."""
    from featurize.build import featurize_program
    from models.halide.inputs import load_dataset
    from models.machine import prediction_machine

    tables = featurize_program(work_dir)
    cands = schema.read_table(work_dir / "candidates.parquet", "candidates")
    tables["measurements"] = pl.from_arrow(schema.from_rows("measurements", []))
    pid = cands["program_id"][0]
    split = pl.DataFrame({"program_id": [pid], "split": ["test"]})
    scored = pl.DataFrame(schema={"schedule_id": pl.String, "predicted_s": pl.Float64})
    ids, log_preds = None, []
    for run in trained.runs if isinstance(trained, SeedEnsemble) else [trained]:
        machine_id, rows = prediction_machine(run, host_row)
        tables["machines"] = pl.from_arrow(schema.from_rows("machines", rows))
        vector_counts = "auto" if run.machine_aware else run.vector_counts
        ds = load_dataset(tables=tables, split=split, stats=run.stats, labeled_only=False, machine_id=machine_id,
                          vector_counts=vector_counts)  # fmt: skip
        if not ds.programs:
            break
        ids = ds.programs[0].schedule_ids
        pred = run.predict_seconds(ds.programs)[0].astype(np.float64)
        # A run's non-finite or non-positive prediction makes the candidate's NaN: bad_prediction.
        log_preds.append(np.log(np.where(np.isfinite(pred) & (pred > 0), pred, np.nan)))
    if ids is not None:
        scored = pl.DataFrame({"schedule_id": ids, "predicted_s": np.exp(np.mean(log_preds, axis=0))},
                              schema={"schedule_id": pl.String, "predicted_s": pl.Float64})  # fmt: skip
    table = cands.select(
        "schedule_id", "sampler", "sampler_params", "autoscheduler", "compile_status", "compile_error", "library",
        "schedule_text",
    ).join(
        scored, on="schedule_id", how="left"
    )
    finite = pl.col("predicted_s").is_not_null() & pl.col("predicted_s").is_finite() & (pl.col("predicted_s") > 0)
    failed = ~pl.col("compile_status").is_in(["ok", "not_compiled"])
    table = table.with_columns(
        status=pl.when(failed)
        .then(pl.col("compile_status"))
        .when(finite)
        .then(pl.lit("scored"))
        .when(pl.col("predicted_s").is_null())
        .then(pl.lit("no_featurization"))
        .otherwise(pl.lit("bad_prediction"))
    )
    # Scored schedules by predicted time (ties by schedule id), then the rest.
    table = table.sort(
        [pl.col("status") != "scored", "predicted_s", "schedule_id"], nulls_last=True
    ).with_columns(rank=pl.when(pl.col("status") == "scored").then(pl.int_range(1, pl.len() + 1)).otherwise(None))
    return table


def host_row_for(trained, calibration_dir: Path) -> dict | None:
    """This machine's row (its calibration speed measured now) when a run of ``trained`` reads
    machine features; ``None`` otherwise (nothing to measure)."""
    from models.machine import host_machine_row

    runs = trained.runs if isinstance(trained, SeedEnsemble) else [trained]
    return host_machine_row(default_timing(), calibration_dir) if any(r.machine_aware for r in runs) else None


def predict(
    program: str | Path,
    model_dir: str | Path,
    *,
    work_dir: str | Path | None = None,
    sampling: dict | None = None,
    parallelism: int = 1,
    seeds: bool = False,
    generator_params: dict | None = None,
) -> pl.DataFrame:
    """Rank candidate schedules of ``program`` (a user file, ``path.py:ClassName`` for a
    generator, ``generator_params`` its GeneratorParams) with the model in ``model_dir`` (with
    ``seeds``, its seed runs used as one).

    Returns:
        pl.DataFrame: ``rank`` (1 = predicted fastest; null where not scored),
        ``schedule_id``, ``sampler``, ``sampler_params``, ``autoscheduler``,
        ``predicted_s``, ``status`` (``scored``, ``no_featurization``,
        ``bad_prediction``) and ``schedule_text``.
    """
    trained, work, _ = draw_and_score(program, model_dir, work_dir, sampling or default_sampling(), parallelism,
                                      compile_libraries=False, seeds=seeds, generator_params=generator_params)  # fmt: skip
    return score_candidates(work, trained, host_row_for(trained, work / "calibration"))


def draw_and_score(
    program: str | Path, model_dir: str | Path, work_dir: str | Path | None, sampling: dict, parallelism: int,
    compile_libraries: bool, announce: str = "", seeds: bool = False, generator_params: dict | None = None,
) -> tuple[object, Path, pl.DataFrame]:
    """What ``predict`` and ``tune`` share: check the model directory and the program (one
    error each, before any work), draw the candidates into ``work_dir`` (a new temporary
    directory if ``None``). Returns (the trained model, the work directory, the candidates)."""
    from pipelines.halide.programs import user_entry

    trained = load_model(model_dir, seeds)
    check_program(program, generator_params)
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="perfgraph_"))
    if announce:
        _progress(announce)
    cands = draw_entry_candidates(user_entry(str(program), generator_params), work, sampling, parallelism,
                                  compile_libraries)  # fmt: skip
    if not cands["has_featurization"].any():
        raise SelectError(f"{program}: no candidate schedule with a featurization could be drawn ({cands.height} tried)")
    return trained, work, cands


#: The reference picks ``tune`` always times, by sampler name: Halide's default first.
REFERENCES = (HALIDE_DEFAULT, *OTHER_REFERENCES, MANUAL)


def tune_sampling(sampling: dict, beam_size: int, beam_timeout_s: float) -> dict:
    """``sampling`` with the reference picks ``tune`` compares against: Adams2019's beam search
    at ``beam_size`` (Halide's own default is 32), Mullapudi2016, Li2018 and, for a generator
    that has one, its own manual schedule."""
    return {
        **sampling,
        "beam_search": {"enabled": True, "beam_size": beam_size, "timeout_s": beam_timeout_s},
        "reference_autoschedulers": ["Mullapudi2016", "Li2018", MANUAL],
    }


def time_candidates(
    work_dir: Path, chosen: pl.DataFrame, timing: dict, calibration_dir: Path, with_samples: bool = False
):
    """Time the compiled candidates in ``chosen`` with the timing protocol; their measurement rows
    (with ``with_samples``: the rows, the raw timing windows and the machine, as the dataset
    build's timing job writes them)."""
    from pipelines.bench import machine_info, pinned_for_timing, time_program
    from pipelines.halide.bench import halide_loader
    from pipelines.calibration import ensure_kernel
    from pipelines.protocol import Protocol

    protocol = Protocol.from_config(timing)
    calib = ensure_kernel(calibration_dir)  # compiled before pinning: it may use every core
    cands = schema.read_table(work_dir / "candidates.parquet", "candidates")
    cands = cands.filter(pl.col("schedule_id").is_in(chosen["schedule_id"].implode()))
    with pinned_for_timing(protocol) as threads:
        machine = machine_info(threads)
        meas, samples = time_program(cands, lambda c: halide_loader(work_dir / c["library"]), protocol, calib, machine)
    return (meas, samples, machine) if with_samples else meas


def tune(
    program: str | Path,
    model_dir: str | Path,
    *,
    top_k: int = 5,
    work_dir: str | Path | None = None,
    sampling: dict | None = None,
    timing: dict | None = None,
    beam_size: int = 32,
    beam_timeout_s: float = 600.0,
    parallelism: int = 1,
    calibration_dir: str | Path | None = None,
    seeds: bool = False,
    generator_params: dict | None = None,
) -> dict:
    """Rank the candidates of ``program`` with the model, then time its top ``top_k`` and the
    reference picks (Halide's default, Mullapudi2016, Li2018 and a generator's own schedule,
    ``manual``); write ``schedule.h`` (the fastest measured) and ``tune.json`` to the work dir.

    Returns:
        dict: ``program``, ``model``, ``work_dir``, ``schedule_file``, ``chosen`` (the fastest
        measured candidate's row), ``speedups`` (Halide's default pick's time over each timed
        candidate's; null where either failed) and ``candidates``: every candidate's row
        (rank, predicted and measured time, statuses, ``timed_as``: ``top<k>`` or the reference).
    """
    from pipelines.halide.programs import user_program_id

    if top_k < 1:
        raise SelectError(f"top_k must be at least 1, got {top_k}")
    trained, work, _ = draw_and_score(
        program, model_dir, work_dir, tune_sampling(sampling or default_sampling(), beam_size, beam_timeout_s),
        parallelism, compile_libraries=True,
        announce=f"drawing and compiling candidates of {program} (Halide's default: beam search, beam {beam_size})",
        seeds=seeds, generator_params=generator_params,
    )  # fmt: skip
    cal_dir = Path(calibration_dir) if calibration_dir is not None else work / "calibration"
    ranked = score_candidates(work, trained, host_row_for(trained, cal_dir))
    top = ranked.filter((pl.col("status") == "scored") & (pl.col("rank") <= top_k)).with_columns(
        timed_as=pl.format("top{}", pl.col("rank"))
    )
    refs = ranked.filter(pl.col("sampler").is_in(REFERENCES) & (pl.col("compile_status") == "ok"))
    refs = refs.filter(~pl.col("schedule_id").is_in(top["schedule_id"].implode())).with_columns(
        timed_as=pl.col("sampler")
    )
    chosen = pl.concat([top, refs])
    _progress(f"timing {chosen.height} candidates ({top.height} predicted fastest, {refs.height} reference picks)")
    meas = time_candidates(work, chosen, timing or default_timing(), cal_dir)
    table = ranked.join(chosen.select("schedule_id", "timed_as"), on="schedule_id", how="left").join(
        meas.select("schedule_id", pl.col("status").alias("timing_status"), pl.col("error").alias("timing_error"),
                    pl.col("runtime_s").alias("measured_s")),
        on="schedule_id", how="left",
    )  # fmt: skip
    default = table.filter(pl.col("sampler") == HALIDE_DEFAULT)["measured_s"]
    default_s = default[0] if default.len() and default[0] is not None else None
    table = table.with_columns(
        speedup=(pl.lit(default_s) / pl.col("measured_s")) if default_s else pl.lit(None, dtype=pl.Float64)
    )
    timed_ok = table.filter(pl.col("measured_s").is_not_null() & (pl.col("timing_status") == "ok"))
    if timed_ok.height == 0:
        raise SelectError(f"{program}: none of the {chosen.height} timed candidates ran (see {work}/candidates.parquet)")
    best = timed_ok.sort("measured_s", "schedule_id").row(0, named=True)
    schedule_file = work / "schedule.h"
    schedule_file.write_text(schedule_header(user_program_id(str(program), generator_params).removeprefix("user_"), best))
    record = {
        "program": str(program),
        "generator_params": generator_params or {},
        "model": str(model_dir),
        "seed_runs": len(trained.runs) if isinstance(trained, SeedEnsemble) else 1,
        "work_dir": str(work),
        "schedule_file": str(schedule_file),
        "halide_default_s": default_s,
        "beam_size": beam_size,
        "chosen": {k: v for k, v in best.items() if k != "schedule_text"},
        "candidates": [{k: v for k, v in r.items() if k != "schedule_text"} for r in table.iter_rows(named=True)],
    }
    schema.write_json(record, work / "tune.json")
    return {**record, "table": table}


def schedule_header(name: str, row: dict) -> str:
    """A schedule as a C++ header in the shape Halide's generators emit (``*.schedule.h``):
    ``apply_schedule_<name>(pipeline, target)`` applies it to the program's Pipeline."""
    ident = re.sub(r"\W", "_", name)
    body = "\n".join(f"    {line}" if line else "" for line in row["schedule_text"].splitlines())
    if row["autoscheduler"] == MANUAL:
        body = "    // Nothing to apply: the generator's own schedule was the fastest measured; keep it.\n" + body
    return (
        f"// perfgraph tune: the fastest measured schedule of {name} (timed as {row['timed_as']}, sampler "
        f"{row['sampler']}, {row['autoscheduler']}),\n"
        f"// {row['measured_s'] * 1e3:.4f} ms per run on the machine that timed it.\n"
        f"#pragma once\n#include \"Halide.h\"\n\n"
        f"inline void apply_schedule_{ident}(::Halide::Pipeline pipeline, ::Halide::Target target) {{\n"
        "    using ::Halide::Func;\n    using ::Halide::MemoryType;\n    using ::Halide::RVar;\n"
        "    using ::Halide::TailStrategy;\n    using ::Halide::Var;\n"
        f"{body}\n}}\n"
    )


def _progress(message: str) -> None:
    print(f"perfgraph: {message}", file=sys.stderr, flush=True)


def format_tuned(table: pl.DataFrame) -> str:
    """The timed candidates as aligned text: how each did against Halide's default pick."""
    lines = [f"{'timed as':<16}  {'predicted':>12}  {'measured':>12}  {'speedup':>8}  {'sampler':<30}  schedule_id"]
    timed = table.filter(pl.col("timed_as").is_not_null()).sort(pl.col("rank").fill_null(10**9), "timed_as")
    for r in timed.iter_rows(named=True):
        pred = "" if r["predicted_s"] is None else f"{r['predicted_s'] * 1e3:.4f} ms"
        meas = r["timing_status"] if r["measured_s"] is None else f"{r['measured_s'] * 1e3:.4f} ms"
        speed = "" if r["speedup"] is None else f"{r['speedup']:.2f}x"
        lines.append(f"{r['timed_as']:<16}  {pred:>12}  {meas:>12}  {speed:>8}  {r['sampler']:<30}  {r['schedule_id']}")
    return "\n".join(lines)


def format_table(table: pl.DataFrame) -> str:
    """The ranked table as aligned text (one line per candidate)."""
    lines = [f"{'rank':>4}  {'predicted':>12}  {'status':<16}  {'sampler':<30}  schedule_id"]
    for r in table.iter_rows(named=True):
        rank = "" if r["rank"] is None else str(r["rank"])
        pred = "" if r["predicted_s"] is None else f"{r['predicted_s'] * 1e3:.4f} ms"
        lines.append(f"{rank:>4}  {pred:>12}  {r['status']:<16}  {r['sampler']:<30}  {r['schedule_id']}")
    return "\n".join(lines)


def with_model_samplers(model_dir: str | Path, extra: dict | None) -> dict | None:
    """``extra`` plus the samplers the model asks for in its ``meta.json`` (an adapted model:
    a beam search guided by Adams2019 retrained on its machine, ``models.adapt``); a sampler the
    user named the same way wins, and one whose weights file has gone is left out."""
    meta_path = Path(model_dir) / "meta.json"
    asked = json.loads(meta_path.read_text()).get("extra_samplers") if meta_path.is_file() else None
    merged = dict(extra or {})
    for name, sampler in (asked or {}).items():
        if name not in merged and Path(sampler.get("weights", "")).is_file():
            _progress(f"{model_dir} draws with {name} too (its meta.json: {json.dumps(sampler)})")
            merged[name] = sampler
    return merged or None


def generator_param_arg(text: str) -> tuple[str, object]:
    """An argparse type: ``NAME=VALUE``, the value a JSON literal where it reads as one (``8``,
    ``0.5``, ``true``) and a string otherwise; Halide converts it to the GeneratorParam's type
    (a string ``"false"`` would be a true bool to it, hence the literal)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return name.strip(), parsed if isinstance(parsed, (bool, int, float)) else value


def json_arg(text: str):
    """An argparse type: the argument parsed as JSON, or argparse's one-line error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from None


def main(argv: list[str] | None = None) -> int:
    """``perfgraph``: use a trained model on your own program."""
    ap = argparse.ArgumentParser(prog="perfgraph", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for cmd, help_ in (
        ("predict", "rank candidate schedules of a program with a trained model (no compiling or timing)"),
        ("tune", "rank, then compile and time the top-k candidates and Halide's reference picks"),
    ):
        p = sub.add_parser(cmd, help=help_, description=help_)
        p.add_argument("program", help="a Python file defining build() or a Halide generator (path.py, or "
                                       "path.py:ClassName to name one of several; README, \"Use a trained model "
                                       "on your own program\")")
        p.add_argument("-p", "--generator-param", action="append", default=[], metavar="NAME=VALUE",
                       type=generator_param_arg, help="a GeneratorParam of the generator (repeatable)")
        p.add_argument("--model", required=True, help="a trained model's directory, e.g. results/models/gcn")
        p.add_argument("--work-dir", default=None, help="where the candidates go (default: a new temporary directory)")
        p.add_argument("--parallelism", type=int, default=1, help="cores the schedules are for (default: 1)")
        p.add_argument("--extra-samplers", type=json_arg, default=None, metavar="JSON",
                       help='samplers added to the default mix, as under sampling.samplers, e.g. Adams2019 weights '
                            'retrained on this machine in a beam search: \'{"adams2019_beam_local": {"count": 1, '
                            '"beam_size": 32, "weights": "local.weights"}}\' (docs/selection.md)')
        p.add_argument("--seeds", action="store_true",
                       help="score with the model's seed runs (DIR/seeds/<k>) as one: the geometric mean of their "
                            "predicted times")
        if cmd == "predict":
            p.add_argument("--out", default=None, help="also write the ranked table as Parquet here")
        else:
            p.add_argument("--top-k", type=int, default=5, help="predicted-fastest candidates to time (default: 5)")
            p.add_argument("--beam-size", type=int, default=32,
                           help="beam of Halide's default pick, Adams2019's beam search (default: 32, Halide's own)")  # fmt: skip
    args = ap.parse_args(argv)

    sampling = default_sampling(with_model_samplers(args.model, args.extra_samplers))
    generator_params = dict(args.generator_param)
    if args.cmd == "predict":
        table = predict(args.program, args.model, work_dir=args.work_dir, sampling=sampling, parallelism=args.parallelism,
                        seeds=args.seeds, generator_params=generator_params)  # fmt: skip
    else:
        result = tune(args.program, args.model, work_dir=args.work_dir, sampling=sampling,
                      parallelism=args.parallelism, top_k=args.top_k, beam_size=args.beam_size,
                      seeds=args.seeds, generator_params=generator_params)  # fmt: skip
    if args.cmd == "predict":
        print(format_table(table))
        if args.out:
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            table.write_parquet(out)
        return 0
    print(format_tuned(result["table"]))
    chosen = result["chosen"]
    print(f"\nfastest measured: {chosen['timed_as']} ({chosen['sampler']}), "
          + (f"{chosen['speedup']:.2f}x Halide's default pick; " if chosen["speedup"] else "")
          + f"schedule in {result['schedule_file']}, record in {result['work_dir']}/tune.json")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(schema.run_reporting_user_errors(main))
