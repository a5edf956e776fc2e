"""Build the report: ``index.html`` (self-contained), ``summary.md`` and ``figures/*.png``.

:func:`build_report` is the whole stage; ``perfgraph report`` is its command line.
Each section (:mod:`report.sections`) returns its tables, figures and text from the
loaded :class:`report.load.Inputs`; :func:`report.render.render_blocks` renders them, and
a section that fails shows its error while the others are unaffected.
"""

from __future__ import annotations

import logging
import os
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from featurize import schema
from models.constants import EVAL_SPLITS
from report.load import all_predictions, headline_metrics, load_inputs, noise_floor, noise_pairs
from report.render import Section, esc, page, render_blocks
from report.sections import SECTIONS, SectionContext, noise_words, per_program

log = logging.getLogger(__name__)

TITLE = "perfgraph: learned cost models vs. baselines"

@dataclass
class ReportResult:
    """What :func:`build_report` wrote."""

    index_html: Path
    summary_md: Path
    figures: dict[str, Path] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failed_sections: list[str] = field(default_factory=list)


def _build_sections(ctx: SectionContext, strict: bool, result: ReportResult) -> list[Section]:
    """Every section of :data:`SECTIONS`; one that fails shows its error (or raises, ``strict``)."""
    sections = []
    for sid, title, fn in SECTIONS:
        try:
            body = render_blocks(fn(ctx))
        except Exception as exc:  # noqa: BLE001
            if strict:
                raise
            log.error("report section %s failed:\n%s", sid, traceback.format_exc())
            result.failed_sections.append(sid)
            body = f'<p class="warn">this section could not be built: {esc(type(exc).__name__)}: {esc(exc)}</p>'
        sections.append(Section(sid, title, body))
    result.sections = [s.id for s in sections]
    return sections


def _summary_markdown(ctx: SectionContext, stamp: str) -> str:
    """``summary.md``: the headline tables, noise and ratios (the sections' own Markdown)."""
    inp = ctx.inp
    md = [
        "# perfgraph: headline",
        "",
        f"Dataset `{inp.dataset_dir}`, models `{inp.models_dir}`, generated {stamp}. "
        "Metrics are computed per held-out program, then averaged; **bold** is the best model, "
        f"*italic* the timing noise (split-half labels of the same schedules). Full report: `index.html`.",
        "",
        ctx.markdown.get("headline", "no data\n"),
        "### Timing noise",
        "",
        *[f"- {split}: {noise_words(ctx.noise.get(split) or {})}" for split in ("all", *EVAL_SPLITS)],
        "",
        "Split-half: the label from the odd timing rounds vs the even rounds of the same job; drift: a later "
        "re-time vs the labels. Both on the schedules the models are scored on.",
        "",
        "### Error ratios (baseline / best GNN)",
        "",
        ctx.markdown.get("ratios", "no data"),
        "",
        ctx.markdown.get("tvm", ""),
        "",
        ctx.markdown.get("fresh", ""),
        "",
        ctx.markdown.get("machines", ""),
        "",
        ctx.markdown.get("selection", ""),
    ]
    return "\n".join(md)


def _write_figures(figures: dict[str, bytes], fig_dir: Path) -> dict[str, Path]:
    """Each figure as ``fig_dir/<name>.png``; the folder is always made (a Snakemake
    ``directory()`` output), even with no figure."""
    fig_dir.mkdir(exist_ok=True)
    written = {}
    for name, png in figures.items():
        path = fig_dir / f"{name}.png"
        schema.atomic_write_bytes(path, lambda tmp, png=png: Path(tmp).write_bytes(png))
        written[name] = path
    return written


def build_report(
    dataset_dir: str | os.PathLike,
    models_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    config_files: list[str | os.PathLike] = (),
    config: dict[str, Any] | None = None,
    summary_path: str | os.PathLike | None = None,
    split_path: str | os.PathLike | None = None,
    expected_models: list[str] | None = None,
    strict: bool = False,
    draw_figures: bool = True,
    write_figures: bool = True,
    now: datetime | None = None,
) -> ReportResult:
    """Write ``index.html``, ``summary.md`` and ``figures/*.png`` under ``out_dir``.

    Args:
        dataset_dir (str): The dataset directory (``results/<dataset>``).
        models_dir (str): Parent of the model directories (``results/models``).
        out_dir (str): Where the report goes (``results/report``).
        config_files (list[str], optional): Config files used by the run, shown verbatim
            (later ones override earlier ones, as with ``--configfile``).
        config (dict, optional): The effective config (after the schema's defaults),
            shown as YAML; its ``models.names`` lists the models expected.
        summary_path (str, optional): The models' ``summary.json``.
            (default: ``<models_dir>/summary.json`` if present)
        split_path (str, optional): The split table. (default: ``<dataset_dir>/split.parquet``,
            else the one recorded in a model's ``meta.json``)
        expected_models (list[str], optional): Models to list even when missing.
            (default: the config's ``models.names``, else every known model)
        strict (bool, optional): Raise when building a section fails, instead of showing
            the error in that section. (default: :obj:`False`)
        draw_figures (bool, optional): Draw the figures; :obj:`False` gives a quick
            tables-only page. (default: :obj:`True`)
        write_figures (bool, optional): Also write each figure as a PNG file. (default: :obj:`True`)
        now (datetime, optional): The time stamped on the report. (default: now, UTC)

    Returns:
        ReportResult: Paths written, section ids, problems met.
    """
    out_dir = Path(out_dir)
    inp = load_inputs(
        dataset_dir, models_dir, config_files=list(config_files), config=config,
        summary_path=summary_path, split_path=split_path, expected_models=expected_models,
    )
    head = headline_metrics(inp)
    try:
        nf = noise_floor(inp)
    except Exception as exc:  # noqa: BLE001 - a bad measurements table must not stop the report
        if strict:
            raise
        inp.problems.append(f"timing noise: {type(exc).__name__}: {exc}")
        nf = {}
    preds = all_predictions(inp)
    npairs = noise_pairs(inp)
    ctx = SectionContext(inp=inp, headline=head, noise=nf, noise_pairs=npairs, preds=preds,
               per_prog=per_program(preds, npairs), draw=draw_figures)

    result = ReportResult(index_html=out_dir / "index.html", summary_md=out_dir / "summary.md")
    sections = _build_sections(ctx, strict, result)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = (
        f"Predicting the run time of Halide schedules: graph neural networks against Halide's and TVM's cost "
        f"models, retrained on the same data. Dataset <code>{esc(inp.dataset_dir)}</code>, generated {esc(stamp)}."
    )
    footer = (
        f"Written by <code>perfgraph report</code> on {esc(stamp)}. "
        "Reproduces Singh, Hegarty, Leather, Steiner, “A graph neural network-based performance model for deep "
        "learning applications”, MAPS 2022. Self-contained: no script, no network."
    )
    html_text = page(TITLE, subtitle, sections, footer)
    out_dir.mkdir(parents=True, exist_ok=True)
    schema.atomic_write_bytes(result.index_html, lambda tmp: Path(tmp).write_text(html_text, encoding="utf-8"))
    md = _summary_markdown(ctx, stamp)
    schema.atomic_write_bytes(result.summary_md, lambda tmp: Path(tmp).write_text(md, encoding="utf-8"))
    if write_figures:
        result.figures = _write_figures(ctx.figures, out_dir / "figures")
    result.problems = list(inp.problems) + [p for m in inp.models.values() for p in m.problems]
    return result

