"""The Parquet graph tables of a perfgraph dataset: their schemas, writer and reader.

Every reader and writer of dataset tables goes through this module. A dataset is
one directory holding one Parquet file per table (``programs.parquet``, ...).
Each file carries, in its Arrow schema metadata:

* ``perfgraph.schema_version``: :data:`SCHEMA_VERSION`; readers refuse any other.
* ``perfgraph.table``: the table's name, so a file renamed by hand is caught.
* ``perfgraph.feature_docs``: JSON ``{column: description}`` for feature columns,
  so a consumer never has to guess what a column means.

Writes are atomic: the file is written under a temporary name in the same
directory, fsynced, then renamed over the target. An interrupted run leaves no
truncated file that looks valid.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Mapping

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from featurize.tvm import features as tvm_features
from featurize.halide.features import (
    PIPELINE_FEATURE_DOCS,
    PIPELINE_FEATURE_NAMES,
    SCHEDULE_FEATURE_DOCS,
    SCHEDULE_FEATURE_NAMES,
)

#: Bump on any change to a table's columns or their meaning.
SCHEMA_VERSION = 5
#: Older versions this perfgraph still reads: version 3 differs only in the machines table
#: (4 added the machine facts) and the predictions table (4 added its machine), version 4 only
#: in the schedules' featurizer (5 added it), so a dataset shared before then needs no rebuild.
READABLE_VERSIONS = ("3", "4", "5")

#: What computed a schedule's features (``schedules.featurizer``; empty: none did).
FEATURIZERS = {
    "adams2019": "Halide's Adams2019 autoscheduler, from its search state (its own schedules only)",
    "loopnest": "perfgraph's loop-nest reader (featurize.halide.loopnest), from the Stmt any schedule lowers to",
    "tvm_per_store": "TVM MetaSchedule's PerStoreFeature",
}

META_VERSION = b"perfgraph.schema_version"
META_TABLE = b"perfgraph.table"
META_DOCS = b"perfgraph.feature_docs"
META_TVM_LAYOUT = b"perfgraph.tvm_feature_layout"

#: Column prefixes of the Adams2019 feature columns.
PIPELINE_PREFIX = "pf_"
SCHEDULE_PREFIX = "sf_"
PIPELINE_COLUMNS = tuple(PIPELINE_PREFIX + n for n in PIPELINE_FEATURE_NAMES)
SCHEDULE_COLUMNS = tuple(SCHEDULE_PREFIX + n for n in SCHEDULE_FEATURE_NAMES)
#: TVM's PerStoreFeature columns (``psf_*``, 164 of them).
STORE_COLUMNS = tvm_features.STORE_COLUMNS

#: Access-pattern kinds of an edge, derived from the autoscheduler's load Jacobians.
EDGE_KINDS = (
    "pointwise",  # identity Jacobian, one load
    "stencil",  # identity Jacobian, several loads at constant offsets
    "transpose",  # permutation of the producer's dimensions
    "broadcast",  # the consumer iterates a dimension the producer lacks
    "reduction",  # the consumer's reduction domain walks the producer
    "downsample",  # integer stride > 1 (e.g. 2x in, 1x out)
    "upsample",  # fractional stride (e.g. x / 2)
    "gather",  # data-dependent or non-affine index
    "update",  # a Func's pure definition feeding its own update definition
)

#: Outcome of compiling and timing one schedule.
STATUSES = ("ok", "compile_error", "runtime_error", "crash", "timeout")


def _docs(prefix: str, names, docs: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name in names:
        base = name.split(".")[0]
        out[prefix + name] = docs.get(base, docs.get(name, ""))
    return out


FEATURE_DOCS: dict[str, dict[str, str]] = {
    "nodes": _docs(PIPELINE_PREFIX, PIPELINE_FEATURE_NAMES, PIPELINE_FEATURE_DOCS),
    "node_schedule_features": _docs(SCHEDULE_PREFIX, SCHEDULE_FEATURE_NAMES, SCHEDULE_FEATURE_DOCS),
    "tvm_store_features": tvm_features.STORE_FEATURE_DOCS,
    "tvm_node_features": tvm_features.STORE_FEATURE_DOCS,
}

_STR = pa.string()
_I32 = pa.int32()
_I64 = pa.int64()
_F32 = pa.float32()
_F64 = pa.float64()

#: table name -> Arrow schema (without metadata). Column order is the file's order.
TABLES: dict[str, pa.Schema] = {
    "programs": pa.schema(
        [
            ("program_id", _STR),
            ("compiler", _STR),  # halide | tvm
            ("origin", _STR),  # random | zoo | user
            ("generator_seed", _I64),  # null unless origin == random
            ("generator_params", _STR),  # JSON
            ("source", _STR),  # zoo name, user file, or generator module
            ("description", _STR),
            ("n_nodes", _I32),
            ("n_edges", _I32),
            ("n_inputs", _I32),
            ("output_shape", _STR),  # JSON list of extents
        ]
    ),
    "nodes": pa.schema(
        [
            ("program_id", _STR),
            ("node_id", _I32),  # 0..n_nodes-1, in the autoscheduler's featurization order
            ("name", _STR),  # stage name, e.g. "conv3" or "conv3.update(0)"
            ("func", _STR),
            ("stage_index", _I32),  # 0 = pure definition, k = update k-1
            ("op_kind", _STR),  # stage vocabulary kind, or "boundary"/"other"
            ("is_output", pa.bool_()),
            ("n_loop_dims", _I32),
            ("n_reduction_dims", _I32),
        ]
        + [(c, _F32) for c in PIPELINE_COLUMNS]
    ),
    "edges": pa.schema(
        [
            ("program_id", _STR),
            ("src", _I32),
            ("dst", _I32),
            ("kind", _STR),  # one of EDGE_KINDS
            ("n_loads", _I32),  # loads of src by dst (sum of Jacobian multiplicities)
            ("n_jacobians", _I32),  # distinct load Jacobians
            ("producer_dims", _I32),
            ("consumer_loop_dims", _I32),
            ("max_stride", _F32),  # largest |coefficient| in any Jacobian
            ("footprint_halo", _I32),  # sum over dims of the constant widening of the footprint
        ]
    ),
    "schedules": pa.schema(
        [
            ("program_id", _STR),
            ("schedule_id", _STR),  # sha256 of the normalized schedule text, 16 hex digits
            ("sampler", _STR),
            ("sampler_params", _STR),  # JSON
            ("autoscheduler", _STR),
            ("has_featurization", pa.bool_()),
            ("featurizer", _STR),  # a key of FEATURIZERS; empty where there are no features (since version 5)
            ("schedule_text", _STR),
            ("n_duplicates", _I32),  # how many later draws produced this same schedule
        ]
    ),
    "node_schedule_features": pa.schema(
        [
            ("program_id", _STR),
            ("schedule_id", _STR),
            ("node_id", _I32),
        ]
        + [(c, _F32) for c in SCHEDULE_COLUMNS]
    ),
    "measurements": pa.schema(
        [
            ("program_id", _STR),
            ("schedule_id", _STR),
            ("machine_id", _STR),
            ("timing_pass", _I32),  # 1 = the label, 2 = the later drift re-time
            ("status", _STR),  # one of STATUSES
            ("error", _STR),
            ("compile_time_s", _F64),
            # The label: the protocol's aggregate over the good windows (pipelines.protocol).
            ("runtime_s", _F64),
            ("label_method", _STR),  # min | median | calibrated
            # Over the good windows (one per round, each the window's fastest sample):
            ("runtime_min_s", _F64),
            ("runtime_median_s", _F64),
            ("runtime_p10_s", _F64),
            ("runtime_p90_s", _F64),
            ("runtime_rel_spread", _F64),  # max / min - 1
            ("n_windows", _I32),  # windows timed, slow and failed ones included
            ("n_good_windows", _I32),  # windows the label is made of
            ("n_slow_windows", _I32),  # flagged by the calibration kernel, then re-measured
            ("calibration_s", _F64),  # median calibration-kernel time beside the good windows
            ("input_bytes", _I64),  # inputs as sized by the pipeline's bounds query
            ("output_checksum", _F64),
            ("measured_at", _STR),  # ISO 8601 UTC
        ]
    ),
    # One row per timing window: a candidate timed once in one round, with the calibration
    # kernel's time right before it (the machine-speed series). Labels can be re-aggregated
    # from these without re-timing (featurize.noise.labels).
    "timing_samples": pa.schema(
        [
            ("program_id", _STR),
            ("schedule_id", _STR),
            ("machine_id", _STR),
            ("timing_pass", _I32),
            ("round", _I32),  # 1..rounds, then extra rounds that replace slow windows
            ("position", _I32),  # place in the round's shuffled order
            ("started_s", _F64),  # seconds since the timing job started
            ("status", _STR),  # one of STATUSES
            ("error", _STR),
            ("window_min_s", _F64),  # fastest sample of the window, seconds per run
            ("window_median_s", _F64),
            ("n_runs", _I32),
            ("calibration_s", _F64),  # calibration kernel, fastest sample, right before
            ("slow", pa.bool_()),  # calibration > slow_factor x the job's fast calibration
            ("output_checksum", _F64),
            ("input_bytes", _I64),
        ]
    ),
    "machines": pa.schema(
        [
            ("machine_id", _STR),
            ("hostname", _STR),
            ("cpu_model", _STR),
            ("n_cores", _I32),
            ("timing_threads", _I32),  # threads of Halide's / TVM's pool while timing
            ("pinning", _STR),  # cores the timing process may run on ("0-1": all, unpinned)
            ("halide_target", _STR),
            ("versions", _STR),  # JSON {package: version}
            # What a model of several machines reads (models.machine), since schema version 4:
            ("isa", _STR),  # the CPU's code-generation extensions, /proc/cpuinfo names (pipelines.bench.ISA_FLAGS)
            ("vector_bits", _I32),  # widest vector register of the Halide target: 128, 256, 512
            ("l1d_kib", _I32),  # one core's L1 data cache (sysfs; null if not recorded)
            ("l2_kib", _I32),  # one core's L2
            ("l3_kib", _I32),  # L3 as the OS reports it (a VM may show its host's whole L3)
            # The calibration kernel's run time on this machine (median over timing jobs of each
            # job's fast calibration, pass 1): its speed on one fixed piece of work.
            ("calibration_s", _F64),
        ]
    ),
}

#: The machine facts added in schema version 4; version-3 files are read with them null
#: (``vector_bits`` derived from the Halide target), :func:`read_table`.
MACHINE_FACTS_V4 = ("isa", "vector_bits", "l1d_kib", "l2_kib", "l3_kib", "calibration_s")

TABLE_NAMES = tuple(TABLES)

#: The two extra tables of a TVM dataset (``compiler == "tvm"``), beside the eight above.
#: Halide's ``pf_*``/``sf_*`` columns stay null there; TVM's own features live here:
TVM_TABLES: dict[str, pa.Schema] = {
    # One row per (schedule, stored buffer): PerStoreFeature, as MetaSchedule's XGBModel sees it.
    "tvm_store_features": pa.schema(
        [
            ("program_id", _STR),
            ("schedule_id", _STR),
            ("store_index", _I32),  # row order of PerStoreFeature for this schedule (0..)
            ("buffer", _STR),  # the stored buffer's name in the scheduled TIR
            ("node_id", _I32),  # the workload block the buffer derives from; null if none
        ]
        + [(c, _F32) for c in STORE_COLUMNS]
    ),
    # One row per node: iteration extents and the PerStoreFeature of the unscheduled block
    # (the TVM analogue of Halide's schedule-independent pipeline features).
    "tvm_node_features": pa.schema(
        [
            ("program_id", _STR),
            ("node_id", _I32),
            ("buffer", _STR),  # the buffer the block writes
            ("spatial_extent", _I64),  # product of the block's spatial iterator extents
            ("reduction_extent", _I64),  # product of its reduction iterator extents (1 if none)
            ("output_bytes", _I64),
            ("n_reads", _I32),  # distinct buffers the block loads
        ]
        + [(c, _F32) for c in STORE_COLUMNS]  # null if the block has no feature row
    ),
}
TVM_TABLE_NAMES = tuple(TVM_TABLES)

#: Tables that models read and write, next to a dataset (results/<dataset>/split.parquet,
#: results/models/<model>/predictions.parquet).
MODEL_TABLES: dict[str, pa.Schema] = {
    # Which held-out set each program belongs to; every model uses the same split.
    "split": pa.schema([("program_id", _STR), ("split", _STR)]),  # train | val | test | zoo
    # One row per (model, schedule) prediction; run times in seconds.
    "predictions": pa.schema(
        [
            ("model", _STR),
            ("program_id", _STR),
            ("machine_id", _STR),  # whose run times y_true are and y_pred predicts (null: not recorded)
            ("schedule_id", _STR),
            ("split", _STR),
            ("y_true", _F64),
            ("y_pred", _F64),
        ]
    ),
}

#: Intermediate tables of a run (under results/_work), not part of a shared dataset.
WORK_TABLES: dict[str, pa.Schema] = {
    # One row per distinct candidate schedule of a program, after compilation.
    "candidates": pa.schema(
        [f for f in TABLES["schedules"]]
        + [
            ("sample_time_s", _F64),  # autoscheduler time (varies run to run, so not in schedules)
            ("compile_status", _STR),  # ok | compile_error | crash | timeout
            ("compile_error", _STR),
            ("compile_time_s", _F64),
            ("library", _STR),  # shared library, relative to the candidates file
            ("featurization", pa.binary()),  # Adams2019 float32 records, empty if none
        ]
    ),
    # The same for TVM: MetaSchedule trace and PerStoreFeature rows of each candidate.
    "tvm_candidates": pa.schema(
        [f for f in TABLES["schedules"]]
        + [
            ("trace_json", _STR),  # Trace.as_json(), to re-apply the schedule
            ("sample_time_s", _F64),
            ("compile_status", _STR),
            ("compile_error", _STR),
            ("compile_time_s", _F64),
            ("library", _STR),  # shared library, relative to the candidates file
            ("store_buffers", _STR),  # JSON list: the buffer of each PerStoreFeature row
            ("store_nodes", _STR),  # JSON list: node id of each row (null: no workload block)
            ("store_features", pa.binary()),  # float32 [rows, 164], row-major
        ]
    ),
}
TABLES_ALL = {**TABLES, **TVM_TABLES, **MODEL_TABLES, **WORK_TABLES}


class WriteError(OSError):
    """A table or sidecar file could not be written (disk full, permissions, ...)."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


class UserError(ValueError):
    """Bad input a user gave (a file, a program, a spec, a model directory, a setting):
    every ``perfgraph`` command reports it as one line naming the file and the problem,
    exit code 2 (:data:`USER_ERRORS`). Each kind of bad input subclasses it."""


#: Every error a user can cause on either backend: bad input (:class:`UserError` and its kinds:
#: a wrong table, work directory, program, spec, model directory or setting) or a path that
#: cannot be read or written. ``perfgraph`` reports each as one line, exit code 2.
USER_ERRORS = (UserError, OSError)


def run_reporting_user_errors(main, argv=None) -> int:
    """Run a command's ``main``; an error a user can cause is one line on stderr, exit code 2."""
    try:
        return main(argv)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


class SchemaError(UserError):
    """A table file is missing, unreadable, of another schema version or shape."""


def _with_metadata(table_name: str) -> pa.Schema:
    meta = {
        META_VERSION: str(SCHEMA_VERSION).encode(),
        META_TABLE: table_name.encode(),
    }
    if table_name in FEATURE_DOCS:
        meta[META_DOCS] = json.dumps(FEATURE_DOCS[table_name]).encode()
    if table_name.startswith("tvm_"):
        meta[META_TVM_LAYOUT] = json.dumps(tvm_features.LAYOUT_PARAMS).encode()
    return TABLES_ALL[table_name].with_metadata(meta)


def to_arrow(table_name: str, frame: pl.DataFrame | pa.Table) -> pa.Table:
    """Cast ``frame`` to the table's schema (column order, dtypes, metadata).

    Raises :class:`SchemaError` naming the missing or extra columns.
    """
    schema = _with_metadata(table_name)
    table = frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame
    missing = [n for n in schema.names if n not in table.column_names]
    extra = [n for n in table.column_names if n not in schema.names]
    if missing or extra:
        raise SchemaError(f"table {table_name!r}: missing columns {missing}, unexpected columns {extra}")
    return table.select(schema.names).cast(schema)


def polars_schema(table_name: str) -> pl.Schema:
    """The table's columns and their polars dtypes (for frames built column by column)."""
    return pl.from_arrow(TABLES_ALL[table_name].empty_table()).schema


def from_rows(table_name: str, rows: list[dict]) -> pa.Table:
    """Build a table from row dicts, typed by the table's schema."""
    return pa.Table.from_pylist(rows, schema=_with_metadata(table_name))


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp_path)``, fsync, then rename over ``path``; clean up on failure."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); a shared dataset is as readable as any new file.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except OSError as exc:
        raise WriteError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def write_table(table_name: str, frame: pl.DataFrame | pa.Table, path: str | os.PathLike) -> None:
    """Write one table atomically to ``path`` with the schema's metadata."""
    table = to_arrow(table_name, frame)
    atomic_write_bytes(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def write_json(obj, path: str | os.PathLike) -> None:
    """Write JSON atomically (sidecar files: specs, DAGs, metrics)."""

    def _write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.write("\n")

    atomic_write_bytes(path, _write)


def file_version(path: str | os.PathLike) -> int:
    """The schema version a table file was written with."""
    return int((pq.read_schema(path).metadata or {}).get(META_VERSION, b"0").decode())


def read_table(path: str | os.PathLike, table_name: str | None = None) -> pl.DataFrame:
    """Read one table file, checking its schema version and name."""
    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{path}: file not found")
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise SchemaError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    meta = schema.metadata or {}
    if META_VERSION not in meta:
        raise SchemaError(f"{path}: not a perfgraph table (no {META_VERSION.decode()} in its metadata)")
    version = meta[META_VERSION].decode()
    if version not in READABLE_VERSIONS:
        raise SchemaError(
            f"{path}: schema version {version}, but this perfgraph reads version {SCHEMA_VERSION}"
            f" (and {', '.join(v for v in READABLE_VERSIONS if v != str(SCHEMA_VERSION))}); "
            "rebuild the dataset with this version or use the perfgraph that wrote it"
        )
    found = meta.get(META_TABLE, b"").decode()
    if table_name is not None and found != table_name:
        raise SchemaError(f"{path}: holds table {found!r}, expected {table_name!r}")
    expected = list(TABLES_ALL[found].names) if found in TABLES_ALL else []
    if version == "3" and found == "machines":
        expected = [n for n in expected if n not in MACHINE_FACTS_V4]
    if version == "3" and found == "predictions":
        expected = [n for n in expected if n != "machine_id"]
    if version in ("3", "4"):
        expected = [n for n in expected if n != "featurizer"]
    if list(schema.names) != expected:
        raise SchemaError(f"{path}: columns do not match table {found!r} of schema version {version}")
    try:
        frame = pl.from_arrow(pq.read_table(path))
    except Exception as exc:
        raise SchemaError(f"{path}: corrupt Parquet data ({type(exc).__name__}: {exc})") from None
    if version == "3" and found == "machines":
        frame = _machines_from_v3(frame)
    if version == "3" and found == "predictions":
        frame = frame.with_columns(machine_id=pl.lit(None, pl.String)).select(MODEL_TABLES["predictions"].names)
    if version in ("3", "4") and "featurizer" in TABLES_ALL.get(found, pa.schema([])).names:
        frame = _featurizer_from_v4(frame).select(TABLES_ALL[found].names)
    return frame


def _featurizer_from_v4(frame: pl.DataFrame) -> pl.DataFrame:
    """Before version 5 only the autoscheduler's own search featurized a schedule: Adams2019's
    (Halide) or TVM's PerStoreFeature (MetaSchedule)."""
    own = pl.when(pl.col("autoscheduler") == "meta_schedule").then(pl.lit("tvm_per_store")).otherwise(pl.lit("adams2019"))
    return frame.with_columns(featurizer=pl.when(pl.col("has_featurization")).then(own).otherwise(pl.lit("")))


def _machines_from_v3(frame: pl.DataFrame) -> pl.DataFrame:
    """A version-3 machines table with the version-4 facts that its Halide target implies (the
    vector width, and as ISA the target's extensions), the rest null: cache sizes were not
    recorded then, and the calibration speed is in the timing samples
    (:func:`featurize.build.calibration_speed`)."""
    from pipelines.bench import isa_of_target, vector_bits

    facts = pl.from_arrow(TABLES["machines"].empty_table()).select(MACHINE_FACTS_V4)
    frame = pl.concat([frame, facts.clear(frame.height)], how="horizontal")
    target = pl.col("halide_target")
    return frame.with_columns(
        target.map_elements(vector_bits, return_dtype=pl.Int32).alias("vector_bits"),
        target.map_elements(isa_of_target, return_dtype=pl.String).alias("isa"),
    ).select(TABLES["machines"].names)


def table_path(dataset_dir: str | os.PathLike, table_name: str) -> Path:
    return Path(dataset_dir) / f"{table_name}.parquet"


def dataset_table_names(dataset_dir: str | os.PathLike) -> tuple[str, ...]:
    """The tables of a dataset directory: every dataset's, plus the TVM ones where it is a TVM dataset."""
    return TABLE_NAMES + tuple(t for t in TVM_TABLE_NAMES if table_path(dataset_dir, t).exists())


def read_dataset(dataset_dir: str | os.PathLike, tables=TABLE_NAMES) -> dict[str, pl.DataFrame]:
    """Load a dataset directory into polars frames, one per table."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise SchemaError(f"{dataset_dir}: dataset directory not found")
    return {name: read_table(table_path(dataset_dir, name), name) for name in tables}


def feature_docs(path: str | os.PathLike) -> dict[str, str]:
    """The documented meaning of each feature column of a table file."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(META_DOCS, b"{}"))
