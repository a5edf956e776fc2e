"""``perfgraph``: one command for every stage of the workflow and for using a trained model.

Each stage keeps its own parser beside its code (:mod:`pipelines.halide.cli`,
:mod:`pipelines.tvm.cli`, ``featurize``, ``models``, ``report``); ``perfgraph <stage>``
(or ``python -m pipelines <stage>``) runs the same function with the same flags, so
what a Snakemake rule runs and what a user types by hand are one command. Every error a user can cause (a wrong path, a bad
file, a bad program) is one line on stderr naming the file and the problem, exit code 2.

    perfgraph --help                 # the stages
    perfgraph <stage> --help         # one stage's flags
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """A ``perfgraph`` subcommand: the module whose ``main(argv)`` runs it, and the
    module's own subcommand (``None``: the module has a single command)."""

    module: str
    sub: str | None
    help: str


#: Every subcommand, in the order of the workflow.
STAGES: dict[str, Stage] = {
    "generate": Stage("pipelines.halide.cli", "generate", "write one program entry (random, zoo or user)"),
    "compile": Stage("pipelines.halide.cli", "compile", "sample and compile the candidate schedules of one program"),
    "refine": Stage("pipelines.halide.cli", "refine", "probe-time a program's candidates, then draw more near its fastest"),
    "bench": Stage("pipelines.halide.cli", "bench", "time the compiled candidates of one program"),
    "retime": Stage("pipelines.halide.cli", "retime", "drift pass: re-time a fraction of all candidates, later"),
    "featurize": Stage("featurize.__main__", "build", "join the per-program work directories into the dataset tables"),
    "summary": Stage("featurize.__main__", "summary", "print a dataset's headline figures as JSON"),
    "publish": Stage("featurize.__main__", "publish", "copy a built dataset to datasets/<name> with its card"),
    "merge": Stage("featurize.__main__", "merge", "one dataset from several, to train one model on"),
    "split": Stage("models.__main__", "split", "split programs into train / val / test / zoo"),
    "search": Stage("models.__main__", "search", "hyperparameter search, the same trials for every model"),
    "train": Stage("models.__main__", "train", "train one model"),
    "evaluate": Stage("models.__main__", "evaluate", "score a trained model on the held-out programs"),
    "export-weights": Stage("models.__main__", "export-weights", "write a trained Adams2019 model as Halide's .weights file"),
    "summarize": Stage("models.__main__", "summarize", "gather every model's metrics, the noise and the ratios"),
    "report": Stage("report.__main__", None, "render the comparison report"),
    "adapt": Stage("models.adapt", None, "time programs on this machine within a budget; fine-tune the models on them"),
    "predict": Stage("models.select", "predict", "rank candidate schedules of your program with a trained model"),
    "tune": Stage("models.select", "tune", "rank, then time the top-k and Halide's own picks; write the fastest"),
    "tvm-generate": Stage("pipelines.tvm.cli", "generate", "TVM: write one program entry"),
    "tvm-sample": Stage("pipelines.tvm.cli", "sample", "TVM: sample, build and featurize MetaSchedule schedules"),
    "tvm-bench": Stage("pipelines.tvm.cli", "bench", "TVM: time the built candidates of one program"),
    "tvm-retime": Stage("pipelines.tvm.cli", "retime", "TVM: drift pass"),
    "tvm-featurize": Stage("pipelines.tvm.cli", "featurize", "TVM: write the dataset tables"),
    "tvm-train": Stage("models.tvm.cli", "train", "TVM: train TVM's XGBModel or a GNN on the TVM dataset"),
    "tvm-evaluate": Stage("models.tvm.cli", "evaluate", "TVM: score a model on the TVM dataset"),
    "tvm-summarize": Stage("models.tvm.cli", "summarize", "TVM: gather the TVM side's metrics"),
    "tvm-tune": Stage("models.tvm.cli", "tune", "TVM: MetaSchedule's search guided by a trained model"),
}


def run_timing_stage(args, adapter, inputs) -> None:
    """Run ``bench`` or ``retime`` (the flags of :func:`add_timing_flags`) with a backend's
    timing adapter (:mod:`pipelines.halide.bench`, :mod:`pipelines.tvm.bench`) on
    ``inputs``: one program's candidates for ``bench``, every program's for ``retime``."""
    import json

    from pipelines.protocol import Protocol

    protocol = Protocol.from_config(json.loads(args.timing))
    if args.cmd == "bench":
        adapter.bench_program(inputs, args.out, args.samples, args.machine, protocol, args.calibration_dir)
    else:
        adapter.retime(inputs, args.out, args.samples, protocol, args.fraction, args.calibration_dir)


def name_subcommands(subparsers, module: str) -> None:
    """Make each subcommand of ``module`` say ``perfgraph <stage>`` in its usage line and
    errors (``python -m <module> <sub>`` runs the same parser)."""
    for name, stage in STAGES.items():
        if stage.module == module and stage.sub in subparsers.choices:
            subparsers.choices[stage.sub].prog = f"perfgraph {name}"


def add_timing_flags(bench, retime) -> None:
    """The flags the Halide and the TVM timing stages share (``bench``: time one program's
    candidates; ``retime``: the drift pass over a fraction of all of them)."""
    for t in (bench, retime):
        t.add_argument("--out", required=True, help="measurements table to write")
        t.add_argument("--samples", required=True, help="timing_samples table to write (every window)")
        t.add_argument("--timing", required=True, help="timing protocol (JSON: the config's timing section)")
        t.add_argument("--calibration-dir", default="results/_work/calibration",
                       help="where this machine's calibration kernel is built once")  # fmt: skip
    bench.add_argument("--machine", required=True, help="machine.json to write")
    retime.add_argument("--fraction", type=float, required=True, help="share of the candidates re-timed")


def usage() -> str:
    width = max(map(len, STAGES))
    lines = [__doc__.splitlines()[0], "", "usage: perfgraph <stage> [flags]   (perfgraph <stage> --help)", "", "stages:"]
    lines += [f"  {name:<{width}}  {stage.help}" for name, stage in STAGES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run ``perfgraph <stage> ...``: the stage module's ``main`` with its subcommand."""
    from featurize.schema import USER_ERRORS

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    stage = STAGES.get(name)
    if stage is None:
        print(f"error: unknown stage {name!r}; run perfgraph --help for the list", file=sys.stderr)
        return 2
    module = importlib.import_module(stage.module)
    try:
        return module.main(([stage.sub] if stage.sub else []) + rest) or 0
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
