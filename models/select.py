"""Use a trained model: rank candidate schedules of a user's own program.

``perfgraph predict PROGRAM.py --model DIR`` builds the program (the ``build()``
contract of README, Your own programs), draws candidate schedules with the sampler
mix of the config, featurizes them exactly as the dataset build does, and scores
them with the trained model (any of the six: GNNs and baselines go through
:class:`models.registry.TrainedModel`). Nothing is compiled or timed. The ranked
table lists every candidate: the ones a model cannot score (the reference
autoschedulers have no featurization) keep their row with a status.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import polars as pl

from featurize import schema

ROOT = Path(__file__).resolve().parents[1]


class SelectError(ValueError):
    """A user-facing problem: a bad program, model directory or sampling."""


def default_sampling() -> dict:
    """The ``sampling`` section of the default config, validated (defaults filled in)."""
    import yaml
    from snakemake.utils import validate

    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    validate(cfg, str(ROOT / "workflow/schemas/config.schema.yaml"), set_default=True)
    return cfg["sampling"]


def load_model(model_dir: str | Path):
    """The trained model of ``model_dir``, or one clear error naming the directory."""
    from models.registry import CHECKPOINT, TrainedModel

    model_dir = Path(model_dir)
    if not (model_dir / CHECKPOINT).is_file():
        raise SelectError(f"{model_dir}: no trained model here ({CHECKPOINT} not found); train one with make run")
    try:
        return TrainedModel(model_dir)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is the user's directory's problem
        raise SelectError(f"{model_dir}/{CHECKPOINT}: not a perfgraph model checkpoint ({type(exc).__name__}: {exc})")


def draw_candidates(program: str | Path, work_dir: Path, sampling: dict, parallelism: int = 1) -> pl.DataFrame:
    """Draw (and featurize, not compile) the candidate schedules of a user program in ``work_dir``."""
    from pipelines.compile import compile_program
    from pipelines.programs import load_user_program, user_entry

    load_user_program(program)  # a bad program fails here, naming the file
    entry = user_entry(str(program))
    work_dir.mkdir(parents=True, exist_ok=True)
    schema.write_json(entry, work_dir / "entry.json")
    return compile_program(work_dir / "entry.json", work_dir, sampling, parallelism, compile_libraries=False)


def score_candidates(work_dir: Path, trained) -> pl.DataFrame:
    """Every candidate of ``work_dir`` with the model's predicted time, fastest first."""
    from featurize.build import featurize_program
    from models.data import load_dataset

    tables = featurize_program(work_dir)
    cands = schema.read_table(work_dir / "candidates.parquet", "candidates")
    tables["measurements"] = pl.from_arrow(schema.from_rows("measurements", []))
    tables["machines"] = pl.from_arrow(schema.from_rows("machines", []))
    pid = cands["program_id"][0]
    split = pl.DataFrame({"program_id": [pid], "split": ["test"]})
    ds = load_dataset(tables=tables, split=split, stats=trained.stats, labeled_only=False, machine_id=trained.machine_id)
    scored = pl.DataFrame(schema={"schedule_id": pl.String, "predicted_s": pl.Float64})
    if ds.programs:
        prog = ds.programs[0]
        scored = pl.DataFrame({"schedule_id": prog.schedule_ids, "predicted_s": trained.predict_seconds([prog])[0]},
                              schema={"schedule_id": pl.String, "predicted_s": pl.Float64})  # fmt: skip
    table = cands.select("schedule_id", "sampler", "sampler_params", "autoscheduler", "schedule_text").join(
        scored, on="schedule_id", how="left"
    )
    finite = pl.col("predicted_s").is_not_null() & pl.col("predicted_s").is_finite() & (pl.col("predicted_s") > 0)
    table = table.with_columns(
        status=pl.when(finite)
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


def predict(
    program: str | Path,
    model_dir: str | Path,
    *,
    work_dir: str | Path | None = None,
    sampling: dict | None = None,
    parallelism: int = 1,
) -> pl.DataFrame:
    """Rank candidate schedules of ``program`` with the model in ``model_dir``.

    Returns:
        pl.DataFrame: ``rank`` (1 = predicted fastest; null where not scored),
        ``schedule_id``, ``sampler``, ``sampler_params``, ``autoscheduler``,
        ``predicted_s``, ``status`` (``scored``, ``no_featurization``,
        ``bad_prediction``) and ``schedule_text``.
    """
    trained = load_model(model_dir)  # checked before any work
    if not Path(program).is_file():
        raise SelectError(f"{program}: program file not found")
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="perfgraph_predict_"))
    cands = draw_candidates(program, work, sampling or default_sampling(), parallelism)
    if not cands["has_featurization"].any():
        raise SelectError(f"{program}: no candidate schedule with a featurization could be drawn ({cands.height} tried)")
    return score_candidates(work, trained)


def format_table(table: pl.DataFrame) -> str:
    """The ranked table as aligned text (one line per candidate)."""
    lines = [f"{'rank':>4}  {'predicted':>12}  {'status':<16}  {'sampler':<30}  schedule_id"]
    for r in table.iter_rows(named=True):
        rank = "" if r["rank"] is None else str(r["rank"])
        pred = "" if r["predicted_s"] is None else f"{r['predicted_s'] * 1e3:.4f} ms"
        lines.append(f"{rank:>4}  {pred:>12}  {r['status']:<16}  {r['sampler']:<30}  {r['schedule_id']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``perfgraph``: use a trained model on your own program."""
    ap = argparse.ArgumentParser(prog="perfgraph", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("predict", help="rank candidate schedules of a program with a trained model (no timing)")
    p.add_argument("program", help="a Python file defining build() (README, Your own programs)")
    p.add_argument("--model", required=True, help="a trained model's directory, e.g. results/models/gcn")
    p.add_argument("--work-dir", default=None, help="where the candidates go (default: a new temporary directory)")
    p.add_argument("--out", default=None, help="also write the ranked table as Parquet here")
    p.add_argument("--parallelism", type=int, default=1, help="cores the schedules are for (default: 1)")
    args = ap.parse_args(argv)

    from featurize.errors import USER_ERRORS

    try:
        table = predict(args.program, args.model, work_dir=args.work_dir, parallelism=args.parallelism)
    except (SelectError, *USER_ERRORS) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(table))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        table.write_parquet(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
