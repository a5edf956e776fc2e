"""Vector counts of the schedule Halide applies, not of the state it featurized.

Adams2019 featurizes a stage from its search state: a stage whose innermost pure
loop is narrower than the vector width (say 8 points of ``x`` on a 16-lane target)
gets ``num_vectors == 0`` and every point in ``num_scalars``. The schedule it then
applies still vectorizes that stage at the full width -- ``.split(x, x, xi, 16,
TailStrategy::GuardWithIf).vectorize(xi)`` or ``RoundUp`` -- so the generated code runs
one (partly masked) vector per row, not a row of scalars. On a target with masked
vector loads and stores (AVX-512) that is about as cheap as a full vector, and a
model reading Halide's counts learns to shun such schedules. Measured on a Zen 4 host:
on the ResNet block, Halide's beam-32 pick (1.33 ms, the best but one of 20 candidates)
is featurized with its convolutions wholly scalar, and every model trained on Halide's
counts picked a 2.03 ms schedule instead. 12-14% of the (schedule, stage) rows of the
local and reference datasets are such stages. Without masked vectors (AVX2) the tail is
not one vector and Halide's counts are the better description: models trained on the
reference dataset's AVX2 labels ranked its test programs worse with the correction
(gatv2's Kendall tau 0.638 -> 0.616, pooled_xgb's 0.579 -> 0.512), so it is applied
only for labels from a target with masked vectors (:func:`has_masked_vectors`).

:func:`applied_vector_counts` reads each stage's vector width from the schedule text
(the ``.vectorize(v)`` of its block and the factor of the split that made ``v``) and,
for a stage Halide counted as wholly scalar but whose text vectorizes it, turns the
scalars into ``ceil(innermost_pure_loop_extent / width)`` vectors per innermost row.
Stages Halide already counted as vectorized, and inlined stages (no block of their
own), keep Halide's counts. The raw tables are never rewritten: the models apply this
on load when their config asks for it (``vector_counts: auto``, applied for labels of a
target with masked vectors, or ``applied``); Adams2019 keeps Halide's counts, which is
what Halide computes during its own search.
"""

from __future__ import annotations

import re

import polars as pl

__all__ = ["applied_vector_counts", "has_masked_vectors", "stage_vector_widths"]

# A stage's block starts with an unindented line naming the Func (Halide appends a
# uniquifying "_<n>" to it) and optionally an update: "conv1_1.update(0)".
_BLOCK = re.compile(r"^(\w+)(\.update\(\d+\))?$")
_SPLIT = re.compile(r"\.split\(\w+, \w+, (\w+), (\d+)")
_VECTORIZE = re.compile(r"\.vectorize\((\w+)(?:, (\d+))?\)")
_DECLARATION = ("Func ", "Var ", "RVar ")


def has_masked_vectors(halide_target: str | None) -> bool:
    """Whether code for ``halide_target`` (the machines table's ``halide_target``) runs a
    masked vector tail as one vector: AVX-512 on x86, SVE on ARM."""
    features = (halide_target or "").split("-")
    return any(f.startswith("avx512") or f in ("sve", "sve2") for f in features)


def stage_vector_widths(schedule_text: str | None) -> dict[str, int]:
    """``{stage name as written in the text: vector width}`` of every stage with a
    block in an Adams2019 schedule text; width 1 for a block that does not vectorize."""
    widths: dict[str, int] = {}
    name: str | None = None
    body: list[str] = []

    def close() -> None:
        if name is None:
            return
        text = "".join(body)
        factors = {inner: int(f) for inner, f in _SPLIT.findall(text)}
        width = 1
        for var, explicit in _VECTORIZE.findall(text):
            width = int(explicit) if explicit else factors.get(var, 1)
        widths[name] = width

    for line in (schedule_text or "").splitlines():
        head = line.rstrip().rstrip(";")
        m = _BLOCK.match(head) if line[:1] not in ("", " ", "\t") and not line.startswith(_DECLARATION) else None
        if m:
            close()
            name, body = m.group(1) + (m.group(2) or ""), []
        elif name is not None:
            body.append(line)
    close()
    return widths


def _node_name(text_name: str, funcs: set[str]) -> str:
    """The node name of a text stage: the Func as written, else without Halide's
    uniquifying ``_<n>`` suffix (``conv1_1.update(0)`` -> ``conv1.update(0)``)."""
    func, dot, update = text_name.partition(".")
    if func not in funcs:
        func = re.sub(r"_\d+$", "", func)
    return func + dot + update


def applied_vector_counts(nsf: pl.DataFrame, nodes: pl.DataFrame, schedules: pl.DataFrame) -> pl.DataFrame:
    """``nsf`` (node_schedule_features rows, any order, kept) with ``sf_num_vectors`` and
    ``sf_num_scalars`` of the applied schedule (see the module docstring).

    Args:
        nsf (pl.DataFrame): Rows with ``program_id, schedule_id, node_id`` and the
            ``sf_*`` columns.
        nodes (pl.DataFrame): ``program_id, node_id, name, func`` of the same programs.
        schedules (pl.DataFrame): ``program_id, schedule_id, schedule_text``.
    """
    funcs_of: dict[str, set[str]] = {}
    for pid, func in nodes.select("program_id", "func").unique().iter_rows():
        funcs_of.setdefault(pid, set()).add(func)
    wanted = nsf.select("program_id", "schedule_id").unique()
    texts = schedules.join(wanted, on=["program_id", "schedule_id"], how="semi")
    rows = [
        (pid, sid, _node_name(stage, funcs_of.get(pid, set())), width)
        for pid, sid, text in texts.select("program_id", "schedule_id", "schedule_text").iter_rows()
        for stage, width in stage_vector_widths(text).items()
    ]
    widths = pl.DataFrame(
        rows, schema={"program_id": pl.String, "schedule_id": pl.String, "name": pl.String, "width": pl.Int64},
        orient="row",
    ).unique(["program_id", "schedule_id", "name"], keep="first", maintain_order=True)
    names = nodes.select("program_id", pl.col("node_id").cast(nsf.schema["node_id"]), "name")

    extent = pl.col("sf_innermost_pure_loop_extent")
    width = pl.col("_width").cast(pl.Float64)
    masked = (width > 1) & (extent > 0) & (pl.col("sf_num_vectors") == 0) & (pl.col("sf_num_scalars") > 0)
    rows_per_stage = pl.col("sf_num_scalars").cast(pl.Float64) / extent
    out = (
        nsf.with_row_index("_row")
        .join(names, on=["program_id", "node_id"], how="left")
        .join(widths.rename({"width": "_width"}), on=["program_id", "schedule_id", "name"], how="left")
        .with_columns(
            pl.when(masked).then(rows_per_stage * (extent / width).ceil())
            .otherwise(pl.col("sf_num_vectors")).cast(nsf.schema["sf_num_vectors"]).alias("sf_num_vectors"),
            pl.when(masked).then(0.0)
            .otherwise(pl.col("sf_num_scalars")).cast(nsf.schema["sf_num_scalars"]).alias("sf_num_scalars"),
        )  # fmt: skip
        .sort("_row")
    )
    return out.select(nsf.columns)
