"""``perfgraph adapt``: a trained cost model made a model of the machine it runs on.

A model's labels are one machine's run times (or, for a model of several machines, those of
the machines in its data); on another machine its ranking of a program's schedules degrades
(Kendall's tau on the zoo from 0.67 to 0.33 on a new host, README). Within a time budget,
``adapt`` times a small set of programs on *this* machine and fine-tunes the model on them:

1. **Programs**: random programs of the generator settings given (the reference dataset's,
   and programs shaped like the zoo's image pipelines), at seeds no dataset uses.
2. **Schedules, chosen by the model**: each program's candidates are drawn with the sampler
   mix and featurized without compiling; every seed run of the model scores them, and the
   ones timed are those worth most to the ranking (:func:`choose_to_time`): the ones the
   model would pick (where a ranking error costs a user most), the ones its seed runs
   disagree on most (query by committee), and a few at random (so the rest of the range is
   not left to the model's own view of it). Only those are compiled (their draws re-run,
   deterministically) and timed, by the timing protocol, alone on the machine.
3. **Budget**: steps 1-2 run in rounds of ``jobs`` programs (drawn and compiled in parallel,
   then timed one after another) until the next round would pass the budget.
4. **Fine-tuning**: every seed run of each model continues training on the timed programs
   (85% train, 15% validation, early-stopped on the latter), its normalization kept, with as
   many of its own training programs replayed beside them (``replay``) so that it keeps what
   it knew. Every program is told its machine (:mod:`models.machine`): a model of one machine
   is given machine features for that (their weights starting at zero, so it starts as it
   was), and so learns what differs here rather than averaging two machines' labels. With ``local_weights``
   Adams2019 is also retrained from Halide's shipped weights on the timed programs, Halide's own
   recipe for a new machine, and written as a ``.weights`` file: a beam search guided by it is
   added to the samplers that ``perfgraph predict/tune`` draw from with the adapted model.

5. **Already timed** (``--data``): a dataset timed on the machine to adapt to stands in for
   steps 1-3, its random programs (or a split's ``train`` programs) fine-tuned on. ``make run``
   adapts so on the random programs it has just built and timed, and scores every model on the
   zoo and user programs it built beside them.

It writes to ``--out``: ``<model>/`` and ``<model>/seeds/<k>/`` (checkpoints that
``predict``, ``tune`` and ``evaluate`` take), ``data/`` (the timed programs, a dataset of
this machine that can be published), ``adams2019_local.weights`` and ``adapt.json`` (what
was timed, the time each phase took, the validation figures before and after).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import multiprocessing
import sys
import time
import types
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import polars as pl
import torch

from featurize import schema
from featurize.schema import UserError

log = logging.getLogger(__name__)

#: What ``adapt.json`` and the adapted models' ``meta.json`` call the local Adams2019 weights'
#: beam search, as an extra sampler of ``perfgraph predict/tune`` (README, "A model of your machine").
LOCAL_BEAM_SAMPLER = "adams2019_beam_local"
LOCAL_WEIGHTS = "adams2019_local.weights"
#: ``perfgraph adapt``'s budget by hand, in minutes (the workflow passes its config's, a few
#: minutes so that make run stays short; docs/adapt.md).
DEFAULT_BUDGET_MIN = 30.0


class AdaptError(UserError):
    """A problem with what ``adapt`` was given: models, budget or settings."""


# --- Choosing what to time ---------------------------------------------------------------


def choose_to_time(
    predicted_s: np.ndarray, n_time: int, n_fast: int, n_disagree: int, rng: np.random.Generator
) -> list[int]:
    """The candidates of one program worth timing, by the model's seed runs' predictions.

    Args:
        predicted_s: ``[runs, S]`` predicted run times (seconds) of the ``S`` candidates.
        n_time: How many to time in all (at most ``S``).
        n_fast: The ensemble's predicted fastest (geometric mean over runs): its picks.
        n_disagree: Then those whose runs disagree most on their rank: the standard deviation
            over runs of the log prediction less the run's mean over the program's candidates
            (a run's scale does not matter, its ordering does). A non-finite prediction counts
            as the most disagreement.
        rng: Draws the rest, uniformly among the candidates left.

    Returns:
        Candidate indices, in the order chosen (fast, disagreement, random).
    """
    p = np.asarray(predicted_s, dtype=np.float64)
    if p.ndim == 1:
        p = p[None, :]
    s = p.shape[1]
    n_time = min(n_time, s)
    logp = np.log(np.where(np.isfinite(p) & (p > 0), p, np.nan))
    centered = logp - np.nanmean(logp, axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        ensemble = np.nanmean(centered, axis=0)
        spread = np.nanstd(centered, axis=0) if p.shape[0] > 1 else np.zeros(s)
    bad = ~np.isfinite(centered).all(axis=0)
    ensemble = np.where(bad, np.inf, ensemble)
    spread = np.where(bad, np.inf, spread)
    chosen: list[int] = []
    for i in np.argsort(ensemble, kind="stable")[: min(n_fast, n_time)]:
        chosen.append(int(i))
    for i in np.argsort(-spread, kind="stable"):
        if len(chosen) >= min(n_fast + n_disagree, n_time):
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    rest = [i for i in range(s) if i not in chosen]
    chosen += [int(i) for i in rng.permutation(rest)[: n_time - len(chosen)]]
    return chosen


# --- Drawing and compiling (in worker processes) -------------------------------------------


def _draw_uncompiled(entry: dict, work_dir: str, sampling: dict, parallelism: int) -> tuple[float, str]:
    """Phase 1 of a program, in a worker: draw and featurize its candidates, compile none.
    (seconds, the error that stopped it or ""): a program that cannot be drawn is skipped."""
    from models.select import draw_entry_candidates

    t0 = time.perf_counter()
    try:
        draw_entry_candidates(entry, Path(work_dir), sampling, parallelism, compile_libraries=False)
    except Exception as exc:  # noqa: BLE001 - a program the autoscheduler cannot analyse is a row, not a crash
        return time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"
    Path(work_dir, "candidates.parquet").rename(Path(work_dir, "drawn.parquet"))
    return time.perf_counter() - t0, ""


def _compile_chosen(work_dir: str, sampling: dict, parallelism: int, chosen: list[tuple[str, str]]) -> float:
    """Phase 2, in a worker: run the chosen draws again (draws are deterministic per seed),
    compiled; their rows are the program's ``candidates.parquet``."""
    import tempfile

    from pipelines.halide.programs import read_entry
    from pipelines.halide.sample import RUNTIME_OBJECT, candidate_row, compile_runtime, in_child, run_draw
    from pipelines.halide.samplers import plan_draws

    t0 = time.perf_counter()
    work = Path(work_dir)
    entry = read_entry(work / "entry.json")
    mix, _ = plan_draws(sampling, parallelism)
    by_key = {(s.name, json.dumps(d.params, sort_keys=True)): d for s in mix for d in s.draws}
    lib_dir = work / "lib"
    lib_dir.mkdir(exist_ok=True)
    in_child(compile_runtime, lib_dir / RUNTIME_OBJECT, timeout_s=sampling["timeout_s"])
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(dir=work) as weights_dir:
        for key in chosen:
            draw = by_key[key]
            out = run_draw(entry, draw, lambda sid: lib_dir / f"{sid}.so", rows, weights_dir)
            if out.status != "duplicate" and out.text:
                row = candidate_row(entry, draw, out)
                rows[row["schedule_id"]] = row
    schema.write_table("candidates", schema.from_rows("candidates", list(rows.values())), work / "candidates.parquet")
    return time.perf_counter() - t0


# --- The timing loop ------------------------------------------------------------------------


def adapt_sampling(samplers: dict) -> dict:
    """The default config's ``sampling`` with adapt's own mix (no reference picks: nothing here
    is compared with Halide's), its weights files found from any directory."""
    from models.select import ROOT, default_sampling
    from pipelines.halide.samplers import BUILTIN_WEIGHTS

    sampling = default_sampling()
    sampling["samplers"] = copy.deepcopy(samplers)
    sampling["beam_search"] = {**sampling["beam_search"], "enabled": False}
    sampling["reference_autoschedulers"] = []
    for sampler in sampling["samplers"].values():
        if sampler.get("weights", "shipped") not in BUILTIN_WEIGHTS:
            sampler["weights"] = str(ROOT / sampler["weights"])
    return sampling


def program_entries(settings: dict):
    """Endless random program entries: generator seeds from ``first_seed`` on, each parameter
    set of ``params`` in turn."""
    from pipelines.halide.programs import random_entry

    seed = int(settings["first_seed"])
    params = settings["params"]
    while True:
        yield random_entry(f"r{seed:05d}", seed, params[(seed - settings["first_seed"]) % len(params)])
        seed += 1


def committee_predictions(work_dir: Path, runs: list) -> tuple[list[str], np.ndarray, pl.DataFrame]:
    """Every run's predicted time of each featurized candidate drawn for the program:
    (schedule ids, ``[runs, S]`` seconds, the drawn table)."""
    from featurize.build import featurize_program
    from models.halide.inputs import load_dataset

    drawn = schema.read_table(work_dir / "drawn.parquet", "candidates")
    schema.write_table("candidates", drawn, work_dir / "candidates.parquet")  # what featurize_program reads
    tables = featurize_program(work_dir)
    (work_dir / "candidates.parquet").unlink()
    tables["measurements"] = pl.from_arrow(schema.from_rows("measurements", []))
    split = pl.DataFrame({"program_id": [drawn["program_id"][0]], "split": ["test"]})
    ids, preds = None, []
    for run in runs:
        tables["machines"] = pl.from_arrow(schema.from_rows("machines", run.target_rows))
        ds = load_dataset(tables=tables, split=split, stats=run.stats, labeled_only=False,
                          machine_id=run.target_machine_id, vector_counts=run.vector_counts)  # fmt: skip
        if not ds.programs:
            return [], np.zeros((len(runs), 0)), drawn
        ids = ds.programs[0].schedule_ids
        preds.append(run.trained.predict_seconds(ds.programs)[0])
    return ids, np.stack(preds), drawn


class _Committee:
    """One seed run of a base model, told which machine its predictions are for
    (:func:`models.machine.prediction_machine`: this one, where the model reads machine features)."""

    def __init__(self, trained, machine_row: dict) -> None:
        from models.machine import prediction_machine

        self.trained = trained
        self.stats = trained.stats
        self.vector_counts = "auto" if trained.machine_aware else trained.vector_counts
        self.target_machine_id, self.target_rows = prediction_machine(trained, machine_row)


def time_rounds(
    runs: list, settings: dict, sampling: dict, timing: dict, work: Path, budget_s: float, jobs: int,
    machine_row: dict, rng: np.random.Generator,
) -> dict[str, Any]:
    """Draw, choose, compile and time programs in rounds of ``jobs`` until the budget is spent;
    each program's work directory is ``work/<program_id>`` (as the dataset build's)."""
    from models.select import time_candidates

    sel = settings["selection"]
    committee = [_Committee(r, machine_row) for r in runs]
    entries = program_entries(settings["programs"])
    done: list[dict] = []
    t0 = time.perf_counter()
    last_round = 0.0
    ctx = multiprocessing.get_context("spawn")  # the draws fork children: a threaded parent must not
    with ProcessPoolExecutor(max(1, jobs), mp_context=ctx) as pool:
        while time.perf_counter() - t0 + last_round <= budget_s:
            r0 = time.perf_counter()
            batch = []
            for _ in range(max(1, jobs)):
                entry = next(entries)
                d = work / entry["program_id"]
                if (d / "measurements.parquet").exists():  # timed in an earlier, interrupted run
                    done.append({"program_id": entry["program_id"], "reused": True})
                    continue
                d.mkdir(parents=True, exist_ok=True)
                batch.append((entry, d))
            drawn_out = list(pool.map(_draw_uncompiled, [e for e, _ in batch], [str(d) for _, d in batch],
                                      [sampling] * len(batch), [1] * len(batch)))  # fmt: skip
            for (entry, _), (_, error) in zip(batch, drawn_out):
                if error:
                    print(f"perfgraph adapt: {entry['program_id']} skipped: {error}", file=sys.stderr, flush=True)
                    done.append({"program_id": entry["program_id"], "error": error})
            batch = [b for b, (_, error) in zip(batch, drawn_out) if not error]
            draw_s = [t for t, error in drawn_out if not error]
            picks = []
            for (entry, d) in batch:
                ids, preds, drawn = committee_predictions(d, committee)
                keyed = drawn.filter(pl.col("has_featurization")).select("schedule_id", "sampler", "sampler_params")
                order = choose_to_time(preds, sel["time"], sel["fast"], sel["disagree"], rng) if ids else []
                chosen_ids = [ids[i] for i in order]
                rows = {r["schedule_id"]: (r["sampler"], r["sampler_params"]) for r in keyed.iter_rows(named=True)}
                picks.append([rows[i] for i in chosen_ids])
            compile_s = list(pool.map(_compile_chosen, [str(d) for _, d in batch], [sampling] * len(batch),
                                      [1] * len(batch), picks))  # fmt: skip
            for (entry, d), ds, cs, chosen in zip(batch, draw_s, compile_s, picks):
                t_time = time.perf_counter()
                # Every chosen candidate: a failed compile is a measurement row too, as in the dataset build.
                cands = schema.read_table(d / "candidates.parquet", "candidates")
                meas, samples, machine = time_candidates(d, cands, timing, work / "calibration", with_samples=True)
                schema.write_table("timing_samples", samples, d / "timing_samples.parquet")
                schema.write_table("measurements", meas, d / "measurements.parquet")
                schema.write_json(machine, d / "machine.json")
                done.append({"program_id": entry["program_id"], "draw_s": ds, "compile_s": cs,
                             "time_s": time.perf_counter() - t_time, "drawn": int(pl.read_parquet(d / "drawn.parquet").height),
                             "chosen": len(chosen), "timed_ok": int((meas["status"] == "ok").sum()),
                             "elapsed_s": time.perf_counter() - t0})  # fmt: skip
            last_round = time.perf_counter() - r0
            print(f"perfgraph adapt: {len(done)} programs timed, {time.perf_counter() - t0:.0f} s of {budget_s:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
    return {"programs": done, "wall_s": time.perf_counter() - t0}


# --- Fine-tuning ---------------------------------------------------------------------------------


def local_split(data_dir: Path, seed: int, program_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """85% of the timed programs (``program_ids``, default every one) to train on, 15% to stop
    on (at least one of three or more); the dataset's other programs unused."""
    from models.split import UNUSED, assign_splits

    programs = schema.read_dataset(data_dir, ("programs",))["programs"]
    chosen = pl.col("program_id").is_in(list(program_ids)) if program_ids is not None else pl.lit(True)
    # assign_splits draws train/val among random programs only: the chosen ones are told so.
    split = assign_splits(programs.filter(chosen).with_columns(origin=pl.lit("random")), train=0.85, val=0.15, seed=seed)
    unused = programs.filter(~chosen).select("program_id", split=pl.lit(UNUSED))
    return pl.concat([split, unused]).sort("program_id")


def timed_elsewhere(data_dir: Path, split_path: Path | None) -> tuple[list[str], dict, dict[str, Any]]:
    """Programs already timed on one machine (``adapt --data``): the ``train`` programs of
    ``split_path`` (default: every random program), that machine's row, and what ``adapt.json``
    records of them in place of the timing rounds'."""
    tables = schema.read_dataset(data_dir, ("programs", "machines", "measurements"))
    if split_path is not None:
        split = schema.read_table(split_path, "split")
        ids = sorted(split.filter(pl.col("split") == "train")["program_id"].to_list())
    else:
        ids = sorted(tables["programs"].filter(pl.col("origin") == "random")["program_id"].to_list())
    if len(ids) < 2:
        raise AdaptError(f"{data_dir}: {len(ids)} program to adapt on ({split_path or 'its random programs'}); "
                         "give a dataset with at least 2")  # fmt: skip
    machines = tables["machines"]
    if machines.height != 1:
        raise AdaptError(f"{data_dir}: timed on {machines.height} machines; adapt on one machine's dataset")
    ok = tables["measurements"].filter(pl.col("status") == "ok").group_by("program_id").len()
    counts = dict(zip(ok["program_id"].to_list(), ok["len"].to_list()))
    record = {"source": str(data_dir), "wall_s": 0.0,
              "programs": [{"program_id": p, "timed_ok": int(counts.get(p, 0))} for p in ids]}  # fmt: skip
    return ids, machines.row(0, named=True), record


def replay_programs(trained, run_dir: Path, n: int, seed: int) -> list:
    """``n`` of the run's own training programs (its dataset and split, as its ``meta.json``
    records them), to train on beside the new machine's: what it knew is kept."""
    from models.halide.inputs import load_dataset

    meta = json.loads((run_dir / "meta.json").read_text())
    dataset, split = Path(meta["dataset"]), Path(meta["split"])
    if n <= 0 or not dataset.is_dir() or not split.exists():
        if n > 0:
            log.warning("%s: its training data (%s) is not here; fine-tuning without replay", run_dir, dataset)
        return []
    ds = load_dataset(dataset, schema.read_table(split, "split"), stats=trained.stats, splits=("train",),
                      vector_counts=trained.vector_counts, all_machines=trained.machine_aware)  # fmt: skip
    progs = ds.split("train")
    idx = np.random.default_rng(seed).permutation(len(progs))[:n]
    return [progs[i] for i in sorted(idx)]


def finetune_run(
    run_dir: Path, data_dir: Path, split_path: Path, out_dir: Path, settings: dict, seed: int, threads: int
) -> dict[str, Any]:
    """One seed run of a torch model trained on for this machine (see the module's docstring);
    its checkpoint, ``history.json`` and ``meta.json`` go to ``out_dir``."""
    from models.data import dataset_hash, split_hash
    from models.halide.inputs import load_dataset
    from models.registry import TrainedModel, build_model, save_checkpoint
    from models.train import _torch_ckpt, adam, eval_loss, fresh_train_state, run_epochs

    torch.set_num_threads(max(1, threads))
    trained = TrainedModel(run_dir)
    if not trained.is_torch:
        raise AdaptError(f"{run_dir}: a {trained.name} model; adapt fine-tunes the torch models")
    split = schema.read_table(split_path, "split")
    # The new machine's vector counts as its target says (models.halide.inputs.VECTOR_COUNTS).
    vector_counts = "auto" if trained.name != "adams2019" else "halide"
    local = load_dataset(data_dir, split, stats=trained.stats, splits=("train", "val"), vector_counts=vector_counts)
    train, val = local.split("train"), local.split("val")
    replay = replay_programs(trained, run_dir, round(settings["replay"] * len(train)), seed)
    config = {**trained.config, "epochs": settings["epochs"], "patience": settings["patience"],
              "lr": trained.config["lr"] * settings["lr_scale"], "vector_counts": local.vector_counts}  # fmt: skip
    model = trained.model
    device = trained.device
    before = _val_metrics(trained, val)
    if replay and not trained.machine_aware:
        # Replayed labels are another machine's: the model must be told which machine each
        # program's are, so it is given machine features, their weights zero (it starts as it was).
        config["machine_features"] = True
        model = build_model(trained.name, config).to(device)
        model.load_state_dict(trained.model.state_dict(), strict=False)
        torch.nn.init.zeros_(model.machine_lin.weight)
        torch.nn.init.zeros_(model.machine_offset.weight)
    opt = adam(trained.name, model, config)
    state = fresh_train_state()
    best = run_epochs(model, trained.name, opt, train + replay, val, config, seed, device, state,
                      copy.deepcopy(model.state_dict()))  # fmt: skip
    model.load_state_dict(best)
    model.eval()
    fp = {"model": trained.name, "config": json.dumps({k: v for k, v in config.items() if k != "epochs"}, sort_keys=True),
          "dataset_hash": dataset_hash(data_dir), "split_hash": split_hash(split_path), "seed": str(seed),
          "machine_id": local.machine_id, "adapted_from": str(run_dir)}  # fmt: skip
    rows = [r for r in trained.machine_rows if r["machine_id"] != local.machine_id] + list(local.machine_rows)
    facts = types.SimpleNamespace(stats=trained.stats, machine_id=local.machine_id, machine_rows=rows,
                                  num_cores=local.num_cores)  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(_torch_ckpt(trained.name, config, facts, fp, model, opt, best, state, True), out_dir)
    adapted = TrainedModel(out_dir)
    after = _val_metrics(adapted, val)
    meta = {
        "model": trained.name, "adapted_from": str(run_dir), "dataset": str(data_dir), "dataset_hash": fp["dataset_hash"],
        "split": str(split_path), "split_hash": fp["split_hash"], "machine_id": local.machine_id,
        "num_cores": local.num_cores, "config": config, "seed": seed, "threads": threads, "device": str(device),
        "n_train_programs": len(train), "n_replay_programs": len(replay), "n_val_programs": len(val),
        "epochs_run": state["epoch"] + 1, "best_epoch": state["best_epoch"], "best_val_loss": state["best_val"],
        "train_wall_s": state["wall_s"], "n_params": sum(p.numel() for p in model.parameters()),
        "val_before": before, "metrics": {"val": after},
        "validation_loss_before": eval_loss(TrainedModel(run_dir).model, trained.name, val, device) if val else None,
    }  # fmt: skip
    schema.write_json(state["history"], out_dir / "history.json")
    schema.write_json(meta, out_dir / "meta.json")
    return meta


def _val_metrics(trained, val: list) -> dict | None:
    from models import metrics as metrics_mod
    from models.train import predictions_frame

    return metrics_mod.compute_metrics(predictions_frame(trained.name, val, trained.predict_seconds(val))) if val else None


def local_adams2019(data_dir: Path, split_path: Path, out: Path, threads: int) -> dict[str, Any]:
    """Adams2019 retrained from Halide's shipped weights on this machine's timings (Halide's own
    recipe for a new machine), exported as a ``.weights`` file beside the adapted models."""
    from models.halide.adams2019 import export_halide_weights
    from models.registry import TrainedModel
    from models.train import train

    meta = train("adams2019", data_dir, split_path, out / "adams2019", threads=threads, progress=False,
                 config={"init": "halide", "epochs": 800, "patience": 60})  # fmt: skip
    export_halide_weights(TrainedModel(out / "adams2019").model, out / LOCAL_WEIGHTS)
    return {"weights": str(out / LOCAL_WEIGHTS), "train_wall_s": meta["train_wall_s"],
            "val": meta["metrics"]["val"]}  # fmt: skip


def local_beam_sampler(weights: Path) -> dict[str, dict]:
    """The extra sampler an adapted model asks ``predict``/``tune`` to draw with: Adams2019's beam
    search at Halide's own beam, guided by the weights retrained on this machine."""
    return {LOCAL_BEAM_SAMPLER: {"count": 1, "beam_size": 32, "weights": str(weights)}}


# --- The command ----------------------------------------------------------------------------------


def adapt(
    models_dir: str | Path,
    out_dir: str | Path,
    *,
    work_dir: str | Path | None = None,
    models: Sequence[str] = ("gatv2",),
    budget_min: float | None = None,
    jobs: int = 2,
    threads: int = 2,
    settings: dict | None = None,
    n_seeds: int | None = None,
    timing: dict | None = None,
    data: str | Path | None = None,
    data_split: str | Path | None = None,
) -> dict[str, Any]:
    """Time programs on this machine within the budget, then fine-tune each model's seed runs
    on them (the module's docstring). ``settings``: the config's ``adapt`` section (default:
    config/config.yaml's); ``timing``: the protocol (default: the config's). With ``data``, a
    dataset already timed on the machine to adapt to, nothing is timed: its ``train`` programs
    of ``data_split`` (default: its random programs) are fine-tuned on (make run adapts on the
    random programs it built and timed, and scores every model on the rest). Returns what
    ``adapt.json`` records."""
    from featurize.build import featurize_dataset
    from models.evaluate import seed_run_dirs
    from models.machine import host_machine_row
    from models.registry import CHECKPOINT, TrainedModel
    from models.select import default_config

    cfg = default_config()
    settings = copy.deepcopy(settings or cfg["adapt"])
    budget_s = 60.0 * (settings["budget_min"] if budget_min is None else budget_min)
    if budget_s <= 0 and data is None:
        raise AdaptError(f"budget {budget_s / 60:g} minutes: give a positive budget (--budget-min)")
    models_dir, out = Path(models_dir), Path(out_dir)
    work = Path(work_dir) if work_dir is not None else out / "work"
    run_dirs = {}
    for name in models:
        dirs = [d for d in seed_run_dirs(models_dir / name, n_seeds) if (d / CHECKPOINT).is_file()]
        if not dirs:
            raise AdaptError(f"{models_dir / name}: no trained model here ({CHECKPOINT} not found); train one first")
        run_dirs[name] = dirs
    if data is not None:
        data_dir = Path(data)
        ids, machine_row, timed = timed_elsewhere(data_dir, Path(data_split) if data_split else None)
        print(f"perfgraph adapt: {len(ids)} programs of {data_dir}, timed on {machine_row['cpu_model']}",
              file=sys.stderr, flush=True)  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        split_path = out / "split.parquet"
        schema.write_table("split", local_split(data_dir, 0, ids), split_path)
    else:
        committee = [TrainedModel(d) for d in run_dirs[models[0]]]
        sampling = adapt_sampling(settings["samplers"])
        timing = timing or cfg["timing"]
        work.mkdir(parents=True, exist_ok=True)
        machine_row = host_machine_row(timing, work / "calibration")
        rng = np.random.default_rng(int(settings["programs"]["first_seed"]))
        print(f"perfgraph adapt: timing programs on {machine_row['cpu_model']} for {budget_s / 60:g} min",
              file=sys.stderr, flush=True)  # fmt: skip
        timed = time_rounds(committee, settings, sampling, timing, work, budget_s, jobs, machine_row, rng)

        data_dir = out / "data"
        timed_ids = {p["program_id"] for p in timed["programs"] if "error" not in p}
        work_dirs = sorted(work / pid for pid in timed_ids)
        if len(work_dirs) < 2:
            raise AdaptError(f"only {len(work_dirs)} program timed in {budget_s / 60:g} min: give a larger budget")
        featurize_dataset(work_dirs, None, data_dir)
        split_path = data_dir / "split.parquet"
        schema.write_table("split", local_split(data_dir, 0), split_path)

    t_ft = time.perf_counter()
    record: dict[str, Any] = {"budget_min": None if data is not None else budget_s / 60, "timing": timed,
                              "machine": machine_row,
                              "settings": settings, "models": {}}  # fmt: skip
    for name, dirs in run_dirs.items():
        record["models"][name] = []
        for k, run in enumerate(dirs):
            target = out / name if k == 0 else out / name / "seeds" / run.name
            meta = finetune_run(run, data_dir, split_path, target, settings["finetune"], k, threads)
            record["models"][name].append({"run": str(target), "val_before": meta["val_before"],
                                           "val_after": meta["metrics"]["val"], "epochs_run": meta["epochs_run"],
                                           "train_wall_s": meta["train_wall_s"]})  # fmt: skip
            print(f"perfgraph adapt: {name} run {k}: validation tau "
                  f"{_fmt(meta['val_before'], 'kendall_tau')} -> {_fmt(meta['metrics']['val'], 'kendall_tau')}",
                  file=sys.stderr, flush=True)  # fmt: skip
    if settings["local_weights"]:
        record["local_weights"] = local_adams2019(data_dir, split_path, out, threads)
        extra = local_beam_sampler(out / LOCAL_WEIGHTS)
        record["extra_samplers"] = extra
        for name in run_dirs:
            for meta_path in (out / name).glob("**/meta.json"):
                meta = json.loads(meta_path.read_text())
                meta["extra_samplers"] = extra
                schema.write_json(meta, meta_path)
    record["finetune_wall_s"] = time.perf_counter() - t_ft
    schema.write_json(record, out / "adapt.json")
    return record


def _fmt(metrics: dict | None, key: str) -> str:
    v = (metrics or {}).get(key)
    return "n/a" if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="perfgraph adapt", description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", default="results/models", help="the trained models' parent (default: results/models)")
    ap.add_argument("--models", nargs="+", default=["gatv2"], help="torch models to adapt (default: gatv2); the first "
                    "one's seed runs choose what to time")  # fmt: skip
    ap.add_argument("--out", required=True, help="where the adapted models, the timed data and adapt.json go")
    ap.add_argument("--work-dir", default=None, help="per-program work directories (default: OUT/work); an "
                    "interrupted run reuses what it timed")  # fmt: skip
    ap.add_argument("--budget-min", type=float, default=None,
                    help=f"minutes of drawing, compiling and timing on this machine (default: {DEFAULT_BUDGET_MIN:g}, "
                         "or --settings' budget_min)")  # fmt: skip
    ap.add_argument("--jobs", type=int, default=2, help="programs drawn and compiled at once (timing is always alone)")
    ap.add_argument("--threads", type=int, default=2, help="threads of the fine-tuning")
    ap.add_argument("--seeds", type=int, default=None, help="seed runs per model to adapt (default: every one)")
    ap.add_argument("--settings", type=json.loads, default=None, metavar="JSON",
                    help="the adapt section of the config, whole, as JSON (default: config/config.yaml's)")
    ap.add_argument("--timing", type=json.loads, default=None, metavar="JSON",
                    help="the timing protocol, as the config's timing section (default: config/config.yaml's)")
    ap.add_argument("--data", default=None, metavar="DIR",
                    help="time nothing: fine-tune on this dataset, already timed on the machine to adapt to "
                         "(its random programs, or --data-split's train programs)")  # fmt: skip
    ap.add_argument("--data-split", default=None, metavar="FILE",
                    help="with --data: a split table whose train programs are the ones adapted on")
    args = ap.parse_args(argv)
    budget = args.budget_min if args.budget_min is not None else (None if args.settings else DEFAULT_BUDGET_MIN)
    record = adapt(args.models_dir, args.out, work_dir=args.work_dir, models=args.models, budget_min=budget,
                   jobs=args.jobs, threads=args.threads, settings=args.settings, n_seeds=args.seeds,
                   timing=args.timing, data=args.data, data_split=args.data_split)  # fmt: skip
    timed = record["timing"]["programs"]
    print(json.dumps({"programs_timed": len(timed), "timing_wall_s": record["timing"]["wall_s"],
                      "finetune_wall_s": record["finetune_wall_s"], "out": str(args.out)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(schema.run_reporting_user_errors(main))
