"""Read what the report shows: the dataset, each model's outputs, the summary, the config.

Every reader is defensive: a missing or unreadable file becomes a recorded problem
(shown in the report) and ``None``, never an exception, so one absent model or an
empty split leaves a "no data" note in its section and the rest of the report intact.

Files read (written by :mod:`featurize` and :mod:`models`):

* ``<dataset>/*.parquet`` through :func:`featurize.schema.read_dataset`;
* ``<dataset>/split.parquet`` (table ``split``), if present;
* ``<models>/<model>/metrics.json``: ``{split: {metric: value, n_programs, ...} | null}``;
* ``<models>/<model>/predictions.parquet`` (table ``predictions``, seconds);
* ``<models>/<model>/history.json``: ``[{epoch, train_loss, val_loss, wall_s?}, ...]``;
* ``<models>/<model>/meta.json``: training metadata (config, epochs, wall time, versions);
* ``<models>/summary.json``: every model's metrics, the noise floor, the headline ratios.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from featurize import schema
from models import metrics as metrics_mod
from models.constants import EVAL_SPLITS, GNN_MODELS, MODEL_NAMES

log = logging.getLogger(__name__)

#: The paper's error ratios (baseline / GNN); ``summary.json`` carries the same numbers.
PAPER_RATIOS = {"adams2019": 7.75, "tvm_xgb": 12.0}

#: One line per known model, for the report's legend.
MODEL_DOCS = {
    "gcn": "GCN over the stage graph, sum-pooled, MLP head: the paper's architecture",
    "gine": "GINE convolutions with edge features, residuals, sum of per-stage costs",
    "gatv2": "GATv2 attention with edge features, residuals, sum of per-stage costs",
    "adams2019": "Halide's Adams2019 cost model (baseline), retrained on this data",
    "tvm_xgb": "TVM's XGBModel, per-stage rows summed (baseline), retrained on this data",
    "pooled_xgb": "plain XGBoost on pooled features (sanity reference, not a published model)",
}




def model_kind(name: str) -> str:
    if name in GNN_MODELS:
        return "GNN"
    if name == "adams2019":
        return "baseline (Halide)"
    if name == "tvm_xgb":
        return "baseline (TVM)"
    return "reference"


@dataclass
class ModelRun:
    """One model directory's outputs; any of them may be missing."""

    name: str
    path: Path
    metrics: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None
    history: list[dict[str, Any]] | None = None
    predictions: pl.DataFrame | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.metrics is not None or self.predictions is not None

    def split_metrics(self, split: str) -> dict[str, Any] | None:
        m = (self.metrics or {}).get(split)
        return m if isinstance(m, dict) else None


@dataclass
class Inputs:
    """Everything the report reads."""

    dataset_dir: Path
    models_dir: Path
    tables: dict[str, pl.DataFrame] | None = None
    split: pl.DataFrame | None = None
    split_path: Path | None = None
    models: dict[str, ModelRun] = field(default_factory=dict)
    expected_models: list[str] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    summary_path: Path | None = None
    config_files: list[tuple[str, str | None]] = field(default_factory=list)  # (path, text or None)
    config: dict[str, Any] | None = None  # the effective config, else the files' merge
    config_given: bool = False  # config came from the caller (effective), not from the files
    problems: list[str] = field(default_factory=list)

    @property
    def found_models(self) -> list[ModelRun]:
        return [m for m in self.models.values() if m.found]

    def table(self, name: str) -> pl.DataFrame | None:
        return None if self.tables is None else self.tables.get(name)


def read_json(path: Path, problems: list[str], required: bool = False) -> Any:
    """JSON content of ``path``, or None (noting why in ``problems``)."""
    if not path.exists():
        if required:
            problems.append(f"{path}: not found")
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"{path}: unreadable JSON ({exc})")
        return None


def load_model(name: str, path: Path) -> ModelRun:
    run = ModelRun(name=name, path=path)
    if not path.is_dir():
        run.problems.append(f"{path}: no such model directory")
        return run
    run.metrics = read_json(path / "metrics.json", run.problems, required=True)
    if run.metrics is not None and not isinstance(run.metrics, dict):
        run.problems.append(f"{path / 'metrics.json'}: expected an object {{split: metrics}}")
        run.metrics = None
    run.meta = read_json(path / "meta.json", run.problems)
    hist = read_json(path / "history.json", run.problems)
    if isinstance(hist, dict):  # tolerate {"history": [...]} or {"train": [...], ...}
        hist = hist.get("history", hist.get("epochs"))
    run.history = hist if isinstance(hist, list) else None
    pred_path = path / "predictions.parquet"
    if pred_path.exists():
        try:
            run.predictions = schema.read_table(pred_path, "predictions")
        except schema.SchemaError as exc:
            run.problems.append(str(exc))
    else:
        run.problems.append(f"{pred_path}: not found")
    return run


def _model_names(models_dir: Path, expected: list[str]) -> list[str]:
    """Expected models first (in order), then any other model directory found."""
    found = sorted(p.name for p in models_dir.iterdir() if p.is_dir()) if models_dir.is_dir() else []
    extra = [n for n in found if n not in expected and ((models_dir / n / "metrics.json").exists())]
    return list(expected) + extra


def expected_from_config(config: dict[str, Any] | None) -> list[str]:
    names = ((config or {}).get("models") or {}).get("names")
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    return list(MODEL_NAMES)


def load_config_files(paths: list[str | os.PathLike]) -> tuple[list[tuple[str, str | None]], dict[str, Any] | None]:
    """Text of each config file, and their merge (later files override earlier keys)."""
    import yaml

    files, merged, seen = [], None, set()
    for p in paths:
        p = Path(p)
        if p.resolve() in seen:  # Snakemake lists a file given both by configfile: and --configfile twice
            continue
        seen.add(p.resolve())
        try:
            text = p.read_text()
        except OSError:
            files.append((str(p), None))
            continue
        files.append((str(p), text))
        try:
            data = yaml.safe_load(text)  # JSON is YAML too
        except yaml.YAMLError:
            data = None
        if isinstance(data, dict):
            merged = _merge(merged or {}, data)
    return files, merged


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_inputs(
    dataset_dir: str | os.PathLike,
    models_dir: str | os.PathLike,
    *,
    config_files: list[str | os.PathLike] = (),
    config: dict[str, Any] | None = None,
    summary_path: str | os.PathLike | None = None,
    split_path: str | os.PathLike | None = None,
    expected_models: list[str] | None = None,
) -> Inputs:
    """Read everything; problems are collected in ``Inputs.problems`` and per model."""
    inp = Inputs(dataset_dir=Path(dataset_dir), models_dir=Path(models_dir))
    inp.config_files, merged = load_config_files(list(config_files))
    for path, text in inp.config_files:
        if text is None:
            inp.problems.append(f"{path}: config file not readable")
    inp.config = config if config is not None else merged
    inp.config_given = config is not None

    try:
        inp.tables = schema.read_dataset(inp.dataset_dir)
    except schema.SchemaError as exc:
        inp.problems.append(f"dataset: {exc}")

    # The split: explicit, next to the dataset, or the one the models recorded.
    candidates = [Path(split_path)] if split_path else [schema.table_path(inp.dataset_dir, "split")]
    inp.expected_models = list(expected_models) if expected_models else expected_from_config(inp.config)
    for name in _model_names(inp.models_dir, inp.expected_models):
        inp.models[name] = load_model(name, inp.models_dir / name)
    if not split_path:
        for run in inp.models.values():
            if run.meta and run.meta.get("split"):
                candidates.append(Path(run.meta["split"]))
    for cand in candidates:
        if cand.exists():
            try:
                inp.split = schema.read_table(cand, "split")
                inp.split_path = cand
                break
            except schema.SchemaError as exc:
                inp.problems.append(str(exc))
    if inp.split is None and split_path:
        inp.problems.append(f"{split_path}: split table not found")

    sp = Path(summary_path) if summary_path else inp.models_dir / "summary.json"
    summary = read_json(sp, inp.problems, required=summary_path is not None)
    if summary is not None and not isinstance(summary, dict):
        inp.problems.append(f"{sp}: expected a JSON object")
        summary = None
    inp.summary, inp.summary_path = summary, (sp if summary is not None else None)
    return inp


# --- Derived numbers ---------------------------------------------------------------------


def headline_metrics(inp: Inputs) -> dict[str, dict[str, dict[str, Any] | None]]:
    """``{model: {split: metrics | None}}``: the summary's numbers, else each metrics.json."""
    out: dict[str, dict[str, dict[str, Any] | None]] = {}
    summ = (inp.summary or {}).get("models") or {}
    for name, run in inp.models.items():
        src = summ.get(name) if isinstance(summ.get(name), dict) else run.metrics
        if src is None:
            continue
        out[name] = {s: (src.get(s) if isinstance(src.get(s), dict) else None) for s in EVAL_SPLITS}
    return out


def _noise_tables(inp: Inputs) -> dict[str, pl.DataFrame] | None:
    tables = {n: inp.table(n) for n in metrics_mod.NOISE_TABLES}
    return None if any(t is None for t in tables.values()) else tables


def noise_floor(inp: Inputs) -> dict[str, dict[str, Any] | None]:
    """``{split: metrics}`` of the timing noise (split-half metrics, with ``split_half`` and
    ``drift`` agreement): the summary's, else computed (:func:`models.metrics.noise_floor`)."""
    nf = (inp.summary or {}).get("noise_floor")
    if isinstance(nf, dict) and nf:
        return {k: v for k, v in nf.items() if isinstance(v, dict)}
    tables = _noise_tables(inp)
    if tables is None:
        return {}
    out: dict[str, dict[str, Any] | None] = {"all": metrics_mod.noise_floor(tables)}
    if inp.split is not None:
        for name in sorted(set(inp.split["split"].to_list())):
            pids = inp.split.filter(pl.col("split") == name)["program_id"].to_list()
            out[name] = metrics_mod.noise_floor(tables, programs=pids)
    return out


def noise_pairs(inp: Inputs) -> pl.DataFrame:
    """Per scored schedule: ``program_id, schedule_id, split, y_true`` (label from the odd
    timing rounds) and ``y_pred`` (from the even rounds), seconds: the noise as a "model"."""
    empty = pl.DataFrame(
        schema={"program_id": pl.String, "schedule_id": pl.String, "split": pl.String,
                "y_true": pl.Float64, "y_pred": pl.Float64}
    )
    tables = _noise_tables(inp)
    if tables is None or tables["timing_samples"].height == 0:
        return empty
    pairs = metrics_mod.noise_pairs(tables, machine_id=(inp.summary or {}).get("machine_id"))
    if pairs.height == 0:
        return empty
    if inp.split is not None:
        pairs = pairs.join(inp.split, on="program_id", how="left")
    else:
        pairs = pairs.with_columns(pl.lit(None, dtype=pl.String).alias("split"))
    return pairs.select(empty.columns).sort("program_id", "schedule_id")


def ratios(inp: Inputs, headline: dict[str, dict[str, dict[str, Any] | None]]) -> dict[str, dict[str, Any]]:
    """``{split: {"best_gnn": name, baseline: {...ratios}}}``: the summary's, else computed
    the same way from the held-out metrics (:func:`models.metrics.headline_ratios`)."""
    r = (inp.summary or {}).get("ratios")
    if isinstance(r, dict) and r:
        return r
    return metrics_mod.headline_ratios(headline)


def paper_ratios(inp: Inputs) -> dict[str, float]:
    pr = (inp.summary or {}).get("paper_ratios")
    return pr if isinstance(pr, dict) and pr else dict(PAPER_RATIOS)


def all_predictions(inp: Inputs) -> pl.DataFrame:
    """Every found model's predictions in one frame (``model`` column first)."""
    frames = [m.predictions for m in inp.models.values() if m.predictions is not None and m.predictions.height]
    if not frames:
        return pl.DataFrame(schema=schema.polars_schema("predictions"))
    return pl.concat(frames, how="vertical_relaxed")
