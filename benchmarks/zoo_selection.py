"""The models' picks on the zoo against Halide's own default: Adams2019's beam search at beam 32.

What ``perfgraph tune`` does for one program, for every zoo program and every trained
model at once, with every candidate timed (so the oracle, the best candidate, is known):

1. draw the default config's sampler mix plus the reference picks (Adams2019 beam search
   with its shipped weights at ``--beam-size``, Halide's own default being 32, given
   ``--beam-timeout`` seconds; Mullapudi2016; Li2018) and compile every candidate;
2. time every compiled candidate with the default config's timing protocol, one program
   after another, after all compiling is done (run it as the machine's only job);
3. score the candidates with each run (every training seed) of each model under
   ``--models-dir`` and report, per model, the geometric-mean speedup of its top-1 pick,
   of the best of its top-5 and of what ``perfgraph tune`` keeps (the best of the top-5 and
   the reference picks) over Halide's pick, the worst program, and the oracle's
   (:mod:`models.selection`); and the same for the model's seeds used as one (their
   predictions' geometric mean, ``<model>+seeds``).

``--finetune-dataset DIR [DIR ...]`` first continues each torch model's training on datasets
timed on this machine (its normalization kept; ``--finetune-epochs`` at ``--finetune-lr-scale``
times the model's learning rate, early-stopped on 15% of those programs; the GNNs' pairwise
ranking loss weighted ``--finetune-rank-weight`` if given): does a model of another machine
pick better once it has seen this one? With ``--finetune-leave-one-out`` the datasets' zoo and
user programs train too, once per zoo program without it, and each program is scored by the
model that did not see it. The XGBoost baselines are scored as trained.

``--count-scale K`` draws K times each sampler's count of the default mix: how the oracle
and the picks change with a larger candidate pool (use a new ``--work-dir``); the same
timings restricted to the unscaled mix's own draws (its first draws by seed) are reported
beside them (``models_default_mix``).

``--extra-samplers JSON`` adds samplers to the default mix (as under ``sampling.samplers``,
checked by the config schema), e.g. beam searches with dropout near Halide's own pick:
does a wider mix raise the oracle? Step 1 draws ``--jobs`` programs at a time.

``--sessions K`` times every candidate K times, each session a pass over all programs (so
sessions are minutes apart, about 1.5 minutes for the seven programs here): the labels are each
schedule's median over the sessions (:func:`models.selection.session_labels`), and the JSON's
``sessions`` has each program's session-to-session noise and every model's top-1 figure with
each session's own labels. On this project's shared 2-vCPU host, seven sessions: the
compute-bound programs' sessions differ from the median by 0.3-1.7% on average, the
memory-bound ones' (separable blur, unsharp mask) by 3.6-4.8% and up to 26%: enough to move a
1.1x verdict on one program.

Steps 1 and 2 keep their results under ``--work-dir`` and are skipped when rerun.

    python benchmarks/zoo_selection.py --models-dir results/models --out results/bench/zoo_selection.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from featurize import schema  # noqa: E402
from models.constants import MODEL_NAMES  # noqa: E402
from models.evaluate import seed_run_dirs  # noqa: E402
from models.machine import host_machine_row  # noqa: E402
from models.select import (  # noqa: E402
    default_sampling,
    default_timing,
    draw_entry_candidates,
    json_arg,
    load_model,
    score_candidates,
    time_candidates,
    tune_sampling,
)
from models.selection import (  # noqa: E402
    HALIDE_DEFAULT,
    pick_speedups,
    reference_columns,
    reference_speedups,
    seed_ensemble,
    session_labels,
    session_noise,
)
from pipelines.halide.programs import zoo_entry  # noqa: E402
from pipelines.halide.zoo import ZOO  # noqa: E402


def _draw_program(name: str, work: Path, sampling: dict) -> float:
    """Draw and compile one zoo program's candidates; seconds."""
    t0 = time.perf_counter()
    draw_entry_candidates(zoo_entry(name), work / name, sampling, parallelism=1, compile_libraries=True)
    seconds = time.perf_counter() - t0
    print(f"{name}: drawn and compiled in {seconds:.0f} s", file=sys.stderr, flush=True)
    return seconds


def build(
    work: Path, names: list[str], beam_size: int, beam_timeout_s: float, count_scale: int = 1,
    extra_samplers: dict | None = None, jobs: int = 1,
) -> dict[str, float]:
    """Draw and compile every zoo program's candidates (skipping those already built), ``jobs``
    programs at a time; seconds each."""
    sampling = tune_sampling(default_sampling(extra_samplers), beam_size, beam_timeout_s)
    for sampler in sampling["samplers"].values():
        sampler["count"] *= count_scale
    todo = [name for name in names if not (work / name / "candidates.parquet").exists()]
    # Worker processes, spawned: the draws fork children, which a threaded parent must not do.
    with ProcessPoolExecutor(max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(zip(todo, pool.map(_draw_program, todo, [work] * len(todo), [sampling] * len(todo))))


def measure(work: Path, names: list[str], sessions: int = 1) -> list[pl.DataFrame]:
    """Time every compiled candidate of every program, ``sessions`` times (skipping what is
    already timed): one ``measurements`` table per session, all programs each. Session 0 is
    ``measurements.parquet``, session ``k`` ``measurements.session<k>.parquet``; a session times
    every program before the next begins, so sessions are minutes apart."""
    timed = []
    for k in range(sessions):
        frames = []
        for name in names:
            d = work / name
            out = d / ("measurements.parquet" if k == 0 else f"measurements.session{k}.parquet")
            if not out.exists():
                cands = schema.read_table(d / "candidates.parquet", "candidates")
                compiled = cands.filter(pl.col("compile_status") == "ok")
                meas = time_candidates(d, compiled, default_timing(), work / "calibration")
                schema.write_table("measurements", meas, out)
            frames.append(schema.read_table(out, "measurements"))
        timed.append(pl.concat(frames))
    return timed


def per_session_picks(
    predictions: dict[str, list[pl.DataFrame]], cands: pl.DataFrame, sessions: list[pl.DataFrame]
) -> dict[str, list[dict]]:
    """Each model's top-1 figure (geomean over programs, worst program) with each session's
    times as the labels: how much the verdict moves with the session that timed it."""
    out: dict[str, list[dict]] = {}
    variants = scored_variants(predictions)  # the predictions do not depend on the session
    for m in sessions:
        labels = m.filter(pl.col("status") == "ok").select("schedule_id", pl.col("runtime_s").alias("y_true"))
        refs = reference_columns(cands["program_id"], cands, labels.rename({"y_true": "runtime_s"}))
        for name, scored in variants:
            summary, _ = pick_speedups([r.drop("y_true").join(labels, on="schedule_id") for r in scored], refs)
            top1 = summary["top1"]
            out.setdefault(name, []).append({"top1": top1["geomean"], "top1_min": top1["min"]})
    for name, figures in out.items():
        g, w = [f["top1"] for f in figures], [f["top1_min"] for f in figures]
        print(f"{name}: top-1 over {len(figures)} sessions {min(g):.2f}-{max(g):.2f}x, "
              f"worst program {min(w):.2f}-{max(w):.2f}x", file=sys.stderr)  # fmt: skip
    return out


def first_draws(cands: pl.DataFrame, sampling: dict) -> pl.Series:
    """Schedule ids of what the unscaled mix draws: per program and mix sampler, its first
    ``count`` distinct schedules in seed order (draws are deterministic per seed), and every
    reference pick."""
    counts = {name: s["count"] for name, s in sampling["samplers"].items()}
    params = pl.col("sampler_params").str.json_decode(pl.Struct({"random_dropout_seed": pl.Int64, "weights_seed": pl.Int64}))
    mix = (
        cands.filter(pl.col("sampler").is_in(list(counts)))
        .with_columns(seed=pl.coalesce(params.struct.field("random_dropout_seed"), params.struct.field("weights_seed")))
        .sort("program_id", "sampler", "seed")
        .with_columns(rank=pl.int_range(pl.len()).over("program_id", "sampler"))
        .filter(pl.col("rank") < pl.col("sampler").replace_strict(counts, return_dtype=pl.Int64))
    )
    refs = cands.filter(~pl.col("sampler").is_in(list(counts)))
    return pl.concat([mix["schedule_id"], refs["schedule_id"]])


def finetune(
    trained, dataset_dirs: list[Path], epochs: int, lr_scale: float, seed: int, rank_weight: float | None = None,
    held_out: str | None = None,
):
    """``trained`` (a torch :class:`TrainedModel`) trained on for ``epochs`` more on the random
    programs of ``dataset_dirs`` (each 85% train, 15% validation), in place; its best state by
    the validation loss is kept, and so are its normalization statistics. ``rank_weight``, when
    given, replaces the model's weight of the pairwise ranking loss while it trains. With
    ``held_out`` (a program id), the datasets' zoo and user programs train too, all but that one:
    one fold of a leave-one-program-out."""
    import copy

    from models.halide.inputs import load_dataset
    from models.split import assign_splits
    from models.train import adam, eval_loss, fresh_train_state, run_epochs

    train, val = [], []
    for dataset_dir in dataset_dirs:
        programs = schema.read_dataset(dataset_dir, ("programs",))["programs"]
        split = assign_splits(programs, train=0.85, val=0.15, seed=seed)
        if held_out is not None:
            named = programs.filter(pl.col("origin").is_in(["zoo", "user"]) & (pl.col("program_id") != held_out))
            split = split.with_columns(
                split=pl.when(pl.col("program_id").is_in(named["program_id"].implode())).then(pl.lit("train"))
                .otherwise(pl.col("split"))
            )
        ds = load_dataset(dataset_dir, split, stats=trained.stats, vector_counts=trained.vector_counts)
        train += ds.split("train")
        val += ds.split("val")
    config = {**trained.config, "epochs": epochs, "lr": trained.config["lr"] * lr_scale}
    model, device = trained.model, trained.device
    if rank_weight is not None and hasattr(model, "rank_weight"):  # the GNNs; Adams2019 has no ranking term
        model.rank_weight = rank_weight
    opt = adam(trained.name, model, config)
    before = eval_loss(model, trained.name, val, device)
    best = run_epochs(model, trained.name, opt, train, val, config, seed, device, fresh_train_state(),
                      copy.deepcopy(model.state_dict()))  # fmt: skip
    model.load_state_dict(best)
    model.eval()
    print(f"{trained.name}: fine-tuned on {len(train)} programs, validation loss {before:.4g} -> "
          f"{eval_loss(model, trained.name, val, device):.4g}", file=sys.stderr)  # fmt: skip
    return trained


def scored_variants(predictions: dict[str, list[pl.DataFrame]]) -> list[tuple[str, list[pl.DataFrame]]]:
    """Each model as its training runs (``<model>``) and as its seeds used as one (``<model>+seeds``)."""
    variants = []
    for model, runs in predictions.items():
        variants += [(model, runs), (f"{model}+seeds", [seed_ensemble(runs)])]
    return variants


def pick_summaries(predictions: dict[str, list[pl.DataFrame]], refs: pl.DataFrame) -> dict:
    """Each model's pick speedups (:func:`pick_speedups`), per seed and its seeds as one."""
    out = {}
    for name, runs_scored in scored_variants(predictions):
        summary, _ = pick_speedups(runs_scored, refs)
        out[name] = summary
        print(f"{name}: top-1 {summary['top1']['geomean']:.2f}x (worst {summary['top1']['min']:.2f}x), "
              f"best of top-5 {summary['top5']['geomean']:.2f}x, tuned {summary['tuned']['geomean']:.2f}x, "
              f"oracle {summary['oracle']['geomean']:.2f}x"
              + ("; runs: " + ", ".join(f"{r['top1']:.2f}x (worst {r['top1_min']:.2f}x)"
                                        for r in summary["per_run"]) if len(summary["per_run"]) > 1 else ""),
              file=sys.stderr)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", default="results/models")
    ap.add_argument("--models", nargs="+", default=list(MODEL_NAMES))
    ap.add_argument("--seeds", type=int, default=3, help="training runs per model to score with")
    ap.add_argument("--programs", nargs="+", default=sorted(ZOO))
    ap.add_argument("--beam-size", type=int, default=32)
    ap.add_argument("--beam-timeout", type=float, default=600.0)
    ap.add_argument("--count-scale", type=int, default=1, help="draw K times each sampler's count of the default mix")
    ap.add_argument("--extra-samplers", type=json_arg, default=None,
                    help='JSON: samplers added to the default mix, as under sampling.samplers, e.g. '
                         '\'{"adams2019_beam_dropout": {"count": 3, "beam_size": 8, "random_dropout": 50}}\'')
    ap.add_argument("--jobs", type=int, default=2,
                    help="programs drawn and compiled at once, one core each (timing is always alone)")
    ap.add_argument("--finetune-dataset", nargs="+", help="datasets timed on this machine to train the torch models on first")
    ap.add_argument("--finetune-epochs", type=int, default=20)
    ap.add_argument("--finetune-lr-scale", type=float, default=0.3)
    ap.add_argument("--finetune-leave-one-out", action="store_true",
                    help="fine-tune on the datasets' zoo and user programs too, once per zoo program without it, "
                         "and score each program with the model that did not see it")
    ap.add_argument("--finetune-rank-weight", type=float, help="the pairwise ranking loss's weight while fine-tuning (default: the model's)")
    ap.add_argument("--sessions", type=int, default=1,
                    help="time every candidate this many times, each session over all programs; the labels are "
                         "the median over sessions, and each session's own figures are reported beside them")
    ap.add_argument("--work-dir", default="results/_work/zoo_selection")
    ap.add_argument("--out", default="results/bench/zoo_selection.json")
    args = ap.parse_args(argv)
    if args.sessions < 1:
        ap.error("--sessions must be at least 1")
    if args.finetune_leave_one_out and not args.finetune_dataset:
        ap.error("--finetune-leave-one-out needs --finetune-dataset")
    work = Path(args.work_dir)

    t0 = time.perf_counter()
    build_s = build(work, args.programs, args.beam_size, args.beam_timeout, args.count_scale, args.extra_samplers, args.jobs)
    sessions = measure(work, args.programs, args.sessions)
    timed = session_labels(sessions)
    labels = timed.select("schedule_id", pl.col("runtime_s").alias("y_true"))
    cands = pl.concat([schema.read_table(work / n / "candidates.parquet", "candidates") for n in args.programs])
    sampler_times = cands.join(labels, on="schedule_id")
    refs = reference_columns(cands["program_id"], cands, labels.rename({"y_true": "runtime_s"}))
    result = {
        "halide_default": f"Adams2019 beam search, beam {args.beam_size}, shipped weights",
        "count_scale": args.count_scale,
        "extra_samplers": args.extra_samplers,
        "finetune": {"dataset": args.finetune_dataset, "epochs": args.finetune_epochs,
                     "lr_scale": args.finetune_lr_scale, "rank_weight": args.finetune_rank_weight,
                     "leave_one_out": args.finetune_leave_one_out}
        if args.finetune_dataset else None,
        "programs": refs.filter(pl.col(f"{HALIDE_DEFAULT}_s").is_not_null())["program_id"].to_list(),
        "programs_without_default": refs.filter(pl.col(f"{HALIDE_DEFAULT}_s").is_null())["program_id"].to_list(),
        "build_s": build_s,
        "candidates": cands.group_by("program_id").len().sort("program_id").to_dicts(),
        "references": reference_speedups(refs),
    }
    # Models that read machine features predict for this machine: its row, measured once.
    host_row = host_machine_row(default_timing(), work / "calibration")
    predictions = {}
    for model in args.models:
        runs = [d for d in seed_run_dirs(Path(args.models_dir) / model, args.seeds) if d.is_dir()]
        run_predictions = []
        for k, run in enumerate(runs):
            scored = []
            # Leave-one-out: a model fine-tuned without each program scores that program.
            for names in [[n] for n in args.programs] if args.finetune_leave_one_out else [args.programs]:
                trained = load_model(run)
                if args.finetune_dataset and trained.is_torch:
                    finetune(trained, [Path(d) for d in args.finetune_dataset], args.finetune_epochs,
                             args.finetune_lr_scale, k, args.finetune_rank_weight,
                             zoo_entry(names[0])["program_id"] if args.finetune_leave_one_out else None)  # fmt: skip
                scored += [score_candidates(work / n, trained, host_row).filter(pl.col("status") == "scored")
                           .select("schedule_id", pl.col("predicted_s").alias("y_pred")) for n in names]  # fmt: skip
            scored = pl.concat(scored)
            run_predictions.append(scored.join(sampler_times.select("program_id", "schedule_id", "y_true"), on="schedule_id"))
        if run_predictions:
            predictions[model] = run_predictions
    result["models"] = pick_summaries(predictions, refs)
    if args.sessions > 1:
        noise = session_noise(sessions, timed)
        for row in noise.iter_rows(named=True):
            print(f"{row['program_id']}: one session from the median of {args.sessions}: "
                  f"mean {row['mean_abs_dev']:.1%}, 90th percentile {row['p90_abs_dev']:.1%}, "
                  f"largest {row['max_abs_dev']:.1%}", file=sys.stderr)  # fmt: skip
        result["sessions"] = {"count": args.sessions, "noise": noise.to_dicts(),
                              "per_session": per_session_picks(predictions, cands, sessions)}  # fmt: skip
    if args.count_scale > 1:
        # The same timings, restricted to what the unscaled mix draws: its first draws by seed.
        pool = first_draws(cands, default_sampling(args.extra_samplers))
        print(f"-- the default mix's own draws ({pool.len()} candidates):", file=sys.stderr)
        within = {m: [p.filter(pl.col("schedule_id").is_in(pool.implode())) for p in runs] for m, runs in predictions.items()}
        result["models_default_mix"] = pick_summaries(within, refs)
    result["wall_s"] = time.perf_counter() - t0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("programs", "references")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(schema.run_reporting_user_errors(main))
