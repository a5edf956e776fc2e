"""A tiny fixed dataset and fake model outputs for the report tests, written through
:mod:`featurize.schema` exactly as the real stages write them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl

from featurize import schema
from models import metrics as metrics_mod

SAMPLERS = ("adams2019_dropout", "adams2019_dropout", "adams2019_dropout", "adams2019_dropout",
            "adams2019_beam", "mullapudi2016", "li2018")
#: Programs: id -> (origin, split).
PROGRAMS = {
    "r00000": ("random", "train"),
    "r00001": ("random", "train"),
    "r00002": ("random", "train"),
    "r00003": ("random", "val"),
    "r00004": ("random", "test"),
    "r00005": ("random", "test"),
    "user_sharpen": ("user", "test"),
    "zoo_blur": ("zoo", "zoo"),
    "zoo_resnet": ("zoo", "zoo"),
}
#: Fake models: name -> log-space prediction noise (lower = better model).
FAKE_MODELS = {"gcn": 0.35, "gine": 0.15, "adams2019": 0.6, "tvm_xgb": 0.9, "pooled_xgb": 0.5}


def make_dataset(path: Path, seed: int = 0) -> Path:
    """Write a small, fixed, complete dataset plus its split table."""
    rng = np.random.default_rng(seed)
    programs, nodes, edges, schedules, nsf, meas, samples = [], [], [], [], [], [], []
    for p, (pid, (origin, _)) in enumerate(PROGRAMS.items()):
        n = 3 + p % 4
        programs.append({"program_id": pid, "compiler": "halide", "origin": origin,
                         "generator_seed": p if origin == "random" else None, "generator_params": "{}",
                         "source": "test", "description": f"program {pid}", "n_nodes": n, "n_edges": n - 1,
                         "n_inputs": 1, "output_shape": "[[64, 64]]"})
        for v in range(n):
            nodes.append({"program_id": pid, "node_id": v, "name": f"f{v}", "func": f"f{v}", "stage_index": 0,
                          "op_kind": ["conv2d", "relu", "pool", "stencil"][v % 4], "is_output": v == 0,
                          "n_loop_dims": 3, "n_reduction_dims": int(v % 4 == 0)})
        for v in range(n - 1):
            edges.append({"program_id": pid, "src": v + 1, "dst": v, "kind": ["pointwise", "stencil"][v % 2],
                          "n_loads": 1, "n_jacobians": 1, "producer_dims": 3, "consumer_loop_dims": 3,
                          "max_stride": 1.0, "footprint_halo": 0})
        base = 10.0 ** rng.uniform(-4.5, -1.5)
        for s, sampler in enumerate(SAMPLERS):
            sid = f"{p:02x}{s:014x}"
            feat = sampler.startswith("adams2019")
            schedules.append({"program_id": pid, "schedule_id": sid, "sampler": sampler, "sampler_params": "{}",
                              "autoscheduler": sampler.split("_")[0], "has_featurization": feat,
                              "schedule_text": f"// schedule {s}", "n_duplicates": 0})
            if feat:
                for v in range(n):
                    nsf.append({"program_id": pid, "schedule_id": sid, "node_id": v})
            status = "ok"
            if s == 3 and p % 3 == 0:
                status = "timeout"
            elif s == 6 and p % 4 == 1:
                status = "compile_error"
            elif s == 2 and p == 8:
                status = "crash"
            t = base * math.exp(rng.uniform(0, 2.5)) if status == "ok" else None
            meas.append(_meas(pid, sid, 1, status, t, "" if status == "ok" else f"{status}: something failed\nline 2"))
            if status == "ok":
                samples += _windows(pid, sid, t, rng)
            if status == "ok" and s % 2 == 0:  # the noise-floor re-time
                meas.append(_meas(pid, sid, 2, "ok", t * math.exp(rng.normal(0, 0.03)), ""))
    versions = {"halide": "21.0.0", "polars": pl.__version__, "python": "3.11.7", "snakemake": "9.27.1"}
    machines = [{"machine_id": "m0", "hostname": "testhost", "cpu_model": "Test CPU @ 3GHz", "n_cores": 2,
                 "timing_threads": 2, "halide_target": "x86-64-linux-avx2", "versions": json.dumps(versions)}]
    path.mkdir(parents=True, exist_ok=True)
    for name, rows in [("programs", programs), ("nodes", nodes), ("edges", edges), ("schedules", schedules),
                       ("node_schedule_features", nsf), ("measurements", meas), ("timing_samples", samples),
                       ("machines", machines)]:
        for r in rows:
            for c in schema.TABLES[name].names:
                r.setdefault(c, 0.0 if c.startswith(("pf_", "sf_")) else None)
        schema.write_table(name, schema.from_rows(name, rows), schema.table_path(path, name))
    split = pl.DataFrame({"program_id": list(PROGRAMS), "split": [s for _, s in PROGRAMS.values()]})
    schema.write_table("split", split, schema.table_path(path, "split"))
    return path


def _meas(pid: str, sid: str, k: int, status: str, t: float | None, error: str) -> dict:
    return {"program_id": pid, "schedule_id": sid, "machine_id": "m0", "timing_pass": k, "status": status,
            "error": error, "compile_time_s": 1.0, "runtime_s": t, "label_method": "min", "n_windows": 5 if t else 1,
            "n_good_windows": 5 if t else 0, "n_slow_windows": 0, "runtime_min_s": t, "runtime_median_s": t and t * 1.01,
            "runtime_p10_s": t, "runtime_p90_s": t and t * 1.02, "runtime_rel_spread": 0.03 if t else None,
            "calibration_s": 2e-4, "input_bytes": 1024, "output_checksum": 1.0,
            "measured_at": f"2026-01-01T0{k}:{sum(map(ord, pid)) % 60:02d}:00+00:00"}


def _windows(pid: str, sid: str, t: float, rng) -> list[dict]:
    """The protocol's raw windows of one schedule: 4 rounds, the third one slow on some."""
    out = []
    for r in range(1, 5):
        slow = r == 3 and rng.random() < 0.2
        f = (1.6 if slow else 1.0) * math.exp(abs(rng.normal(0, 0.01)))
        out.append({"program_id": pid, "schedule_id": sid, "machine_id": "m0", "timing_pass": 1, "round": r,
                    "position": 0, "started_s": 0.05 * r, "status": "ok", "error": "", "window_min_s": t * f,
                    "window_median_s": t * f * 1.01, "n_runs": 10, "calibration_s": 2e-4 * f, "slow": slow,
                    "output_checksum": 1.0, "input_bytes": 1024})  # fmt: skip
    return out


def labels(dataset: Path) -> pl.DataFrame:
    """What the evaluator predicts: featurized schedules with an ok pass-1 time, with their split."""
    data = schema.read_dataset(dataset, tables=("schedules", "measurements"))
    split = schema.read_table(schema.table_path(dataset, "split"), "split")
    y = (
        data["measurements"].filter((pl.col("timing_pass") == 1) & (pl.col("status") == "ok"))
        .group_by("program_id", "schedule_id").agg(pl.col("runtime_s").median().alias("y_true"))
    )
    feat = data["schedules"].filter(pl.col("has_featurization")).select("program_id", "schedule_id")
    return feat.join(y, on=["program_id", "schedule_id"]).join(split, on="program_id").sort("program_id", "schedule_id")


def make_models(models_dir: Path, dataset: Path, names: dict[str, float] = FAKE_MODELS,
                splits: tuple[str, ...] = ("test", "zoo"), summary: bool = True) -> Path:
    """Write metrics.json, predictions.parquet, history.json and meta.json per model, and
    a summary.json in the format of :func:`models.evaluate.summarize`."""
    lab = labels(dataset).filter(pl.col("split").is_in(list(splits)))
    results = {}
    for i, (name, sigma) in enumerate(names.items()):
        rng = np.random.default_rng(100 + i)
        d = models_dir / name
        pred = lab.with_columns(
            pl.lit(name).alias("model"),
            (pl.col("y_true") * np.exp(rng.normal(0.1, sigma, lab.height))).alias("y_pred"),
            pl.lit("m0").alias("machine_id"),
        ).select("model", "program_id", "machine_id", "schedule_id", "split", "y_true", "y_pred")
        schema.write_table("predictions", pred, d / "predictions.parquet")
        m = {}
        for s in ("test", "zoo"):
            f = pred.filter(pl.col("split") == s)
            m[s] = metrics_mod.compute_metrics(f) if f.height else None
        schema.write_json(m, d / "metrics.json")
        results[name] = m
        xgb = name.endswith("xgb")
        n_ep = 30 if xgb else 12
        hist = [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1) + 0.01 * e, "wall_s": 0.1 * e}
                for e in range(n_ep)]
        schema.write_json(hist, d / "history.json")
        meta = {"model": name, "repr": f"{name.upper()}(fake)", "n_params": 1000 + i, "epochs_run": n_ep,
                "best_epoch": n_ep // 2, "stopped_early": xgb, "train_wall_s": 12.5, "device": "cpu",
                "n_train_programs": 3, "n_train_schedules": 15, "n_val_programs": 1, "machine_id": "m0",
                "split": str(schema.table_path(dataset, "split")), "dataset_hash": "fakehash",
                "versions": {"torch": "2.13.0+cpu", "polars": pl.__version__}, "metrics": m}
        schema.write_json(meta, d / "meta.json")
    if summary:
        tables = schema.read_dataset(dataset, tables=metrics_mod.NOISE_TABLES)
        split = schema.read_table(schema.table_path(dataset, "split"), "split")
        noise = {"all": metrics_mod.noise_floor(tables)}
        for s in sorted(set(split["split"].to_list())):
            noise[s] = metrics_mod.noise_floor(tables, programs=split.filter(pl.col("split") == s)["program_id"])
        ratios = metrics_mod.headline_ratios(results)
        schema.write_json({
            "dataset": str(dataset), "dataset_hash": "fakehash", "machine_id": "m0", "models": results,
            "training": {}, "noise_floor": noise, "ratios": ratios, "paper_ratios": {"adams2019": 7.75, "tvm_xgb": 12.0},
            "notes": {"noise_floor": "metrics of the split-half labels on the schedules models are scored on"},
        }, models_dir / "summary.json")
    return models_dir
