"""Publish a built dataset: its tables, the config that built it and a dataset card.

``publish(dataset_dir, out_dir, ...)`` copies the Parquet tables of a dataset built by
the workflow (``results/<name>/``) into a directory meant to be shared or committed
(``datasets/<name>/``) and writes beside them:

* ``config.json``: the validated config the workflow built it with;
* ``card.json``: the card's figures, computed from the tables
  (:func:`featurize.summary.dataset_summary`) plus the build's wall time and sizes;
* ``README.md``: the dataset card, every figure of which comes from ``card.json``.

The card's figures can be recomputed from the tables at any time
(:func:`card_figures`); a test checks that the shipped card still matches them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl

from featurize import schema
from featurize.summary import dataset_summary


def card_figures(dataset_dir: str | os.PathLike) -> dict[str, Any]:
    """The figures of a dataset's card that follow from its tables alone."""
    data = schema.read_dataset(dataset_dir, schema.dataset_table_names(dataset_dir))
    figures = dataset_summary(data)
    figures["compiler"] = ", ".join(sorted(data["programs"]["compiler"].unique().to_list()))
    machines = data["machines"]
    figures["machines"] = [
        {**{k: v for k, v in row.items() if k != "versions"}, "versions": json.loads(row["versions"] or "{}")}
        for row in machines.iter_rows(named=True)
    ]
    ok = data["measurements"].filter((pl.col("timing_pass") == 1) & (pl.col("status") == "ok"))
    labelled = data["schedules"].filter(pl.col("has_featurization")).join(
        ok.select("program_id", "schedule_id"), on=["program_id", "schedule_id"]
    )
    figures["schedules_labelled_featurized"] = labelled.height
    figures["schema_version"] = schema.file_version(schema.table_path(dataset_dir, "schedules"))
    if figures["schema_version"] >= 5:  # what featurized them: the column since version 5
        featurized = data["schedules"].filter(pl.col("has_featurization"))
        figures["schedules_by_featurizer"] = dict(sorted(featurized.group_by("featurizer").len().iter_rows()))
    return figures


def build_times(work_dir: str | os.PathLike) -> dict[str, float]:
    """Wall time of a workflow build from its work directory: from the first program
    generated to the last timing job's output (``wall_s``), and the timing jobs' own span
    summed (``timing_s``, from the windows' start times)."""
    work = Path(work_dir)
    # The workflow writes programs/<id>.json; perfgraph adapt each program's <id>/entry.json.
    starts = [p.stat().st_mtime for p in (work / "programs").glob("*.json")]
    starts += [p.stat().st_mtime for p in work.glob("*/entry.json")]
    ends = [p.stat().st_mtime for p in work.glob("*/measurements.parquet")]
    ends += [p.stat().st_mtime for p in work.glob("retime*.parquet")]
    timing_s = 0.0
    for path in work.glob("*/timing_samples.parquet"):
        started = pl.read_parquet(path, columns=["started_s"])["started_s"]
        if started.len():
            timing_s += float(started.max() - started.min())
    return {"wall_s": (max(ends) - min(starts)) if starts and ends else None, "timing_s": timing_s}


def publish(
    dataset_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    config: dict[str, Any],
    work_dir: str | os.PathLike | None = None,
    rebuild_command: str = "",
) -> dict[str, Any]:
    """Copy the dataset's tables to ``out_dir`` and write its config and card there."""
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = schema.dataset_table_names(dataset_dir)
    for name in tables:
        src = schema.table_path(dataset_dir, name)
        schema.read_table(src, name)  # refuse a damaged or outdated table before publishing it
        schema.atomic_write_bytes(schema.table_path(out_dir, name), lambda tmp, src=src: shutil.copyfile(src, tmp))
    schema.write_json(config, out_dir / "config.json")
    card = card_figures(out_dir)
    card["name"] = out_dir.name
    card["build"] = build_times(work_dir) if work_dir is not None else {}
    card["rebuild_command"] = rebuild_command
    card["size_bytes"] = {name: schema.table_path(out_dir, name).stat().st_size for name in tables}
    # A TVM dataset's programs and candidates come from the config's tvm section.
    side = config.get("tvm", {}) if card["compiler"] == "tvm" else config
    card["sampling"] = side.get("sampling", {})
    card["timing"] = config.get("timing", {})
    card["generator"] = side.get("programs", {})
    card["retime_fraction"] = config.get("noise", {}).get("fraction", 0)
    schema.write_json(card, out_dir / "card.json")
    # Rendered from the file's content (keys sorted), so the card can be re-rendered from card.json alone.
    card = json.loads((out_dir / "card.json").read_text())
    text = render_card(card)
    schema.atomic_write_bytes(out_dir / "README.md", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return card


def _num(v: float | None, spec: str = ".3f", unit: str = "") -> str:
    """``v`` formatted, or "n/a" where a figure is missing (no pairs, nothing timed ok)."""
    return "n/a" if v is None or v != v else f"{v:{spec}}{unit}"


def render_card(card: dict[str, Any]) -> str:
    """The dataset card (Markdown) from ``card.json``'s figures, section by section."""
    sections = (_intro_lines, _machine_lines, _build_lines, _noise_lines, _spread_lines, _use_lines)
    lines = [line for section in sections for line in section(card)]
    return "\n".join(lines + _sampler_weights_lines(card.get("sampler_weights")))


#: What a dataset holds, and the features its schedules carry, by compiler (``programs.compiler``).
_WHAT = {
    "halide": "Halide schedules of random programs and of the zoo",
    "tvm": "TVM MetaSchedule candidates of random tensor programs and of real networks' layers (the TVM zoo)",
}
_FEATURES = {"halide": "Adams2019 featurization", "tvm": "per-store features of TVM's MetaSchedule (PerStoreFeature)"}


def _intro_lines(card: dict[str, Any]) -> list[str]:
    size_mb = sum(card["size_bytes"].values()) / 1e6
    return [
        f"# Dataset card: `{card['name']}`",
        "",
        f"{_WHAT[card.get('compiler', 'halide')]}, each compiled and timed on one machine, as "
        "perfgraph's Parquet graph tables (`featurize/schema.py`, schema version "
        f"{card['schema_version']}). Every figure below is computed from the tables (`card.json`; "
        "`featurize.card.card_figures` recomputes them, and a test checks they still match).",
        "",
        "## Contents",
        "",
        f"- Programs: {card['programs']} ("
        + ", ".join(f"{n} {o}" for o, n in card["programs_by_origin"].items())
        + f"), {card['stages']} stages, {card['edges']} edges.",
        f"- Schedules: {card['schedules']}, of which {card['schedules_featurized']} carry the "
        f"{_FEATURES[card.get('compiler', 'halide')]}{_featurizer_words(card)} and "
        f"{card['schedules_labelled_featurized']} of those have a label (timed ok); "
        f"median {card['schedules_per_program_median']:.0f} per program.",
        "- Timing outcomes (pass 1): "
        + ", ".join(f"{s} {n}" for s, n in card["measurements_by_status"].items())
        + f"; run times {_num(card['runtime_ms_min'])}-{_num(card['runtime_ms_max'], '.1f')} ms "
        f"(median {_num(card['runtime_ms_median'], '.2f')} ms).",
        f"- Size: {size_mb:.1f} MB of Parquet (zstd) in {len(card['size_bytes'])} tables.",
        "",
    ]


def _machine_lines(card: dict[str, Any]) -> list[str]:
    m = card["machines"][0] if card["machines"] else {}
    versions = ", ".join(f"{k} {v}" for k, v in sorted((m.get("versions") or {}).items()))
    return [
        "## Machine and software",
        "",
        f"- Machine `{m.get('machine_id')}`: {m.get('cpu_model')}, {m.get('n_cores')} cores, Halide target "
        f"`{m.get('halide_target')}`; timed on {m.get('timing_threads')} thread(s), pinned to core(s) "
        f"{m.get('pinning')}.",
        f"- CPU: {m.get('vector_bits')}-bit vectors; ISA extensions {m.get('isa') or 'not recorded'}; caches "
        + (
            f"L1d {m.get('l1d_kib')} KiB, L2 {m.get('l2_kib')} KiB per core, L3 {m.get('l3_kib')} KiB as the OS reports it"
            if m.get("l2_kib")
            else "not recorded"
        )
        + f"; calibration kernel {_num((m.get('calibration_s') or float('nan')) * 1e3, '.4f', ' ms')} "
        "(median over timing jobs of each job's fast calibration: the machine's speed on one fixed piece of work).",
        f"- Versions: {versions}.",
        "",
    ]


def _build_lines(card: dict[str, Any]) -> list[str]:
    build = card.get("build") or {}
    t = card["timing"]
    samplers = card["sampling"].get("samplers", {})
    return [
        "## How it was built",
        "",
        f"- Command: `{card['rebuild_command']}`" if card.get("rebuild_command") else "- Command: not recorded.",
        f"- Wall time: {build['wall_s'] / 60:.0f} min from the first program generated to the last timing job "
        f"(timing jobs {build['timing_s'] / 60:.0f} min of it), with nothing else running."
        if build.get("wall_s") is not None
        else "- Wall time: not recorded.",
        f"- Timing protocol (docs/timing.md): {t.get('rounds')} shuffled rounds of {t.get('window_s')} s windows, "
        f"each right after a {t.get('calibration_s', 0.015)} s calibration kernel; slow windows flagged and "
        f"re-measured; label `runtime_s` = {card['noise'].get('label_method')} over the good windows. "
        f"{card['timing_windows']} windows, {100 * (card['timing_windows_slow_share'] or 0):.1f}% flagged slow.",
        "- Generator parameters: `" + json.dumps(card["generator"].get("random", {}).get("params", {}), sort_keys=True) + "`.",
        *(_tvm_sampler_lines(card) if card.get("compiler") == "tvm" else [
            "- Sampler mix (per program, distinct schedules wanted; `pipelines/halide/samplers.py`):",
            "",
            *[
                f"  - `{name}`: {s.get('count')} x Mullapudi2016, last_level_cache_size and balance drawn per seed"
                if s.get("autoscheduler") == "Mullapudi2016" else
                f"  - `{name}`: {s.get('count')} x Adams2019, beam {s.get('beam_size', 1)}, random_dropout "
                f"{s.get('random_dropout')}, {s.get('weights', 'shipped')} weights"
                for name, s in samplers.items()
            ],
            *([f"  - reference picks: {', '.join(card['sampling']['reference_autoschedulers'])}"]
              if card["sampling"].get("reference_autoschedulers") else []),
        ]),
        "",
        "The full config is `config.json`.",
        "",
    ]


def _tvm_sampler_lines(card: dict[str, Any]) -> list[str]:
    s, gen = card["sampling"], card["generator"]
    random = gen.get("random", {})
    return [
        f"- Programs: {random.get('count')} random (generator seeds {random.get('first_seed', 0)}.."
        f"{random.get('first_seed', 0) + random.get('count', 0) - 1}) and the zoo layers "
        + ", ".join(f"`{z}`" for z in gen.get("zoo", [])) + ".",
        f"- Candidates per program (`pipelines/tvm/sample.py`): {s.get('replay_trace')} distinct random draws of "
        f"MetaSchedule's design space (ReplayTrace) and {s.get('evolutionary')} picks of its evolutionary search "
        "(TVM's XGBModel guiding it), each built by TVM and featurized by MetaSchedule's PerStoreFeature.",
    ]


def _noise_lines(card: dict[str, Any]) -> list[str]:
    noise = card["noise"]
    sh, dr = noise.get("split_half") or {}, noise.get("drift") or {}
    return [
        "## Timing noise",
        "",
        f"- Split-half (odd vs even rounds of the same job, featurized schedules): MAPE {_num(sh.get('mape'), '.1f', '%')}, "
        f"median ratio {_num(sh.get('median_ratio'))}, {sh.get('n_schedules')} schedules.",
        f"- Drift (a later re-time of {100 * card.get('retime_fraction', 0):.0f}% of them vs their labels): MAPE "
        f"{_num(dr.get('mape'), '.1f', '%')}, median ratio {_num(dr.get('median_ratio'))}, "
        f"{dr.get('n_schedules')} schedules.",
        "",
    ]


def _spread_lines(card: dict[str, Any]) -> list[str]:
    spread = card["spread"]
    return [
        "## Within-program spread",
        "",
        f"Over the labelled featurized samples of each of {spread.get('programs')} programs: slowest / fastest "
        f"has median {_num(spread.get('spread_median'), '.1f', 'x')} (p10 {_num(spread.get('spread_p10'), '.1f', 'x')}, "
        f"p90 {_num(spread.get('spread_p90'), '.1f', 'x')}); the median share of a program's samples within "
        f"{spread.get('near_best')}x of its fastest is {_num(100 * spread.get('near_best_share_median', 0), '.0f', '%')}, and "
        f"{_num(100 * spread.get('programs_with_quarter_near_best', 0), '.0f', '%')} of programs have at least a quarter there.",
        "",
        "| sampler | programs | samples | median spread | share within 1.5x of best | best sample / program's best (geomean) |",
        "|---|---:|---:|---:|---:|---:|",
        *[
            f"| `{name}` | {s['programs']} | {s['samples']} | {s['spread_median']:.2f}x | "
            f"{100 * s['near_best_share']:.0f}% | {s['best_over_best_geomean']:.2f}x |"
            for name, s in (spread.get("by_sampler") or {}).items()
        ],
        "",
    ]


def _use_lines(card: dict[str, Any]) -> list[str]:
    if card.get("compiler") == "tvm":
        return [
            "## Use it",
            "",
            "```python",
            "from featurize.schema import TABLE_NAMES, TVM_TABLE_NAMES, read_dataset",
            f"tables = read_dataset('datasets/{card['name']}', TABLE_NAMES + TVM_TABLE_NAMES)",
            "```",
            "",
            f"TVM's XGBModel and the GNNs train and are scored on it with `tvm.dataset: datasets/{card['name']}` "
            "in the config (the default config does; docs/tvm.md). The labels are this machine's.",
            "",
        ]
    return [
        "## Use it",
        "",
        "```python",
        "from featurize.schema import read_dataset",
        f"tables = read_dataset('datasets/{card['name']}')  # {{table name: polars.DataFrame}}",
        "```",
        "",
        f"Train and evaluate on it by setting `models.dataset: datasets/{card['name']}` in the config "
        "(the default config does). The labels are this machine's: another machine's run times differ, their "
        "ranking within a program much less.",
        "",
    ]


def _featurizer_words(card: dict) -> str:
    """`` (Adams2019's own 259, the loop-nest reader's 202)``, where the card knows its featurizers."""
    by = card.get("schedules_by_featurizer") or {}
    if set(by) <= {"adams2019", "tvm_per_store"}:
        return ""
    names = {"adams2019": "Adams2019's own", "loopnest": "the loop-nest reader's", "tvm_per_store": "TVM's"}
    return " (" + ", ".join(f"{names.get(k, k)} {n}" for k, n in by.items()) + ")"


def _sampler_weights_lines(w: dict | None) -> list[str]:
    """The card's section on a cost model trained on the dataset and shipped beside it."""
    if not w:
        return []
    return [
        "## Sampler weights shipped with it",
        "",
        f"`{w['file']}` ({w['bytes']:,} bytes, SHA-256 `{w['sha256']}`): {w['what']}",
        "",
        "Rebuilt by:",
        "",
        "```",
        *w["commands"],
        "```",
        "",
    ]
