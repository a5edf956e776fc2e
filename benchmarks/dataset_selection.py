"""The models' picks on a dataset's programs against Halide's default pick, from its own labels.

``benchmarks/zoo_selection.py`` draws and times candidates for the zoo; this reads a dataset
already built, whose mix included Halide's default pick (``sampling.beam_search`` enabled: the
sampler ``adams2019_beam``), on programs the models never trained on (a dataset of this
machine with other generator seeds, say). Every program of ``--origins`` is held out (the split
in ``--work-dir``) and scored by each seed of each model under ``--models-dir`` (``perfgraph
evaluate --no-strict``, into ``<run>/on_<dataset name>/`` as the workflow's ``on_default``), and
each model's top-1 and best-of-top-5 picks are set against Halide's pick by the dataset's own
labels (:func:`models.selection.selection`, as the report's section: geometric means over
programs with 95% bootstrap intervals, the worst program, the oracle). No compiling or timing:
it can run beside other work, and it asks whether the zoo's figures hold for other programs.

    python benchmarks/dataset_selection.py --dataset results/mydata --models-dir results/models \\
        --out results/bench/dataset_selection.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from featurize import schema  # noqa: E402
from models.constants import MODEL_NAMES  # noqa: E402
from models.evaluate import evaluate, seed_run_dirs  # noqa: E402
from models.selection import HALIDE_DEFAULT, reference_times, selection  # noqa: E402
from models.split import write_split  # noqa: E402


def dataset_selection(
    dataset: Path, models_dir: Path, models: list[str], n_seeds: int, origins: tuple[str, ...], work: Path
) -> dict:
    """Each model's pick speedups over Halide's default pick on ``dataset``'s programs of
    ``origins``: every run scores them into ``<run>/on_<dataset name>/`` (as the workflow's
    ``on_default``), then :func:`models.selection.selection`."""
    refs = reference_times(dataset, origins)
    if refs[f"{HALIDE_DEFAULT}_s"].is_not_null().sum() == 0:
        raise schema.UserError(f"{dataset}: no program of origin {'/'.join(origins)} has Halide's default pick "
                               f"({HALIDE_DEFAULT}) timed; build it with sampling.beam_search enabled")  # fmt: skip
    work.mkdir(parents=True, exist_ok=True)
    split_path = work / "split.parquet"
    write_split(dataset, split_path, all_held_out=True)
    splits = tuple(sorted({"zoo" if o == "zoo" else "test" for o in origins}))  # as models.split.held_out
    sub = f"on_{dataset.name}"
    for name in models:
        for run in (d for d in seed_run_dirs(models_dir / name, n_seeds) if d.is_dir()):
            evaluate(dataset, split_path, run, splits=splits, strict=False, out_dir=run / sub)
    out = selection(models_dir, models, dataset, sub, n_seeds, origins)
    for name, summary in out["models"].items():
        top1 = summary["top1"]
        if top1["n_programs"]:
            print(f"{name}: top-1 {top1['geomean']:.2f}x [{top1['lo']:.2f}, {top1['hi']:.2f}] (worst "
                  f"{top1['min']:.2f}x), best of top-5 {summary['top5']['geomean']:.2f}x, tuned "
                  f"{summary['tuned']['geomean']:.2f}x, oracle "
                  f"{summary['oracle']['geomean']:.2f}x ({top1['n_programs']} programs, {summary['runs']} runs)",
                  file=sys.stderr)  # fmt: skip
    return {**out, "origins": list(origins)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, help="a dataset whose mix drew Halide's default pick")
    ap.add_argument("--models-dir", default="results/models")
    ap.add_argument("--models", nargs="+", default=list(MODEL_NAMES))
    ap.add_argument("--seeds", type=int, default=3, help="training runs per model to score with")
    ap.add_argument("--origins", nargs="+", default=["random"], choices=["random", "zoo", "user"])
    ap.add_argument("--work-dir", default="results/_work/dataset_selection")
    ap.add_argument("--out", default="results/bench/dataset_selection.json")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    result = dataset_selection(Path(args.dataset), Path(args.models_dir), args.models, args.seeds,
                               tuple(args.origins), Path(args.work_dir))  # fmt: skip
    result["wall_s"] = time.perf_counter() - t0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(schema.run_reporting_user_errors(main))
