"""Command line of the models stage.

    perfgraph split     --dataset D --out F [--train 0.7 --val 0.15 --salt S --seed S]
    perfgraph search    --dataset D --split F --model NAME --out F --trials N [--epochs N --seed S]
    perfgraph train     --dataset D --split F --model NAME --out DIR [--epochs N --threads T --seed S]
                        [--config JSON | --search F]
    perfgraph evaluate  --dataset D --split F --model-dir DIR [--threads T] [--out-dir DIR --no-strict]
    perfgraph summarize --models-dir DIR --dataset D --out F [--split F] [--fresh-dataset D --fresh-dir NAME]
    perfgraph export-weights --model-dir DIR --out F.weights

``python -m models <sub>`` runs the same. ``--out`` of ``train`` is the model's own directory
(e.g. ``results/models/gcn``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from featurize.schema import UserError
from models.constants import MODEL_NAMES, RUNS_HELP, planned_runs


def build_parser() -> argparse.ArgumentParser:
    """The models stage's parser: one subcommand per ``perfgraph`` stage it serves."""
    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("split", help="split programs into train/val/test/zoo")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=float, default=0.7)
    p.add_argument("--val", type=float, default=0.15, help="test gets the rest")
    p.add_argument("--salt", default="")
    p.add_argument("--seed", type=int, default=0, help="models.seed; 0 keeps the split of earlier versions")
    p.add_argument("--held-out", action="store_true",
                   help="every program held out (zoo: zoo, others: test), to score models trained elsewhere")  # fmt: skip
    p.add_argument("--adapt-on", nargs="*", default=[], metavar="ORIGIN",
                   help="with --held-out: programs of these origins (random, zoo, user) are train, what "
                        "perfgraph adapt --data fine-tunes on")  # fmt: skip

    p = sub.add_parser("train", help="train one model")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--model", required=True, choices=MODEL_NAMES)
    p.add_argument("--out", required=True, help="the model's directory, e.g. results/models/gcn")
    p.add_argument("--epochs", type=int, default=None, help="epoch budget of the GNNs (Adams2019 keeps its own)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", type=int, default=1, help=RUNS_HELP)
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument("--config", default=None, help='JSON overrides, e.g. \'{"hidden_channels": 32}\'')
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--search", default=None, metavar="FILE",  # --config or --search, not both
                   help="a search result (perfgraph search): train with the configuration it chose")  # fmt: skip

    p = sub.add_parser("search", help="hyperparameter search: the same number of trials for every model")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--model", required=True, choices=MODEL_NAMES)
    p.add_argument("--out", required=True, help="result JSON, e.g. results/models/search/gcn.json")
    p.add_argument("--trials", type=int, required=True)
    p.add_argument("--epochs", type=int, default=None, help="epoch budget of the GNNs, as for train")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("evaluate", help="predict the test and zoo programs; write metrics")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--model-dir", required=True, nargs="+",
                   help="the model's directory; several (a model's seed runs) are scored in one process")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-strict", action="store_true", help="allow another dataset or split than training's")
    p.add_argument("--out-dir", default=None, nargs="+",
                   help="score on another dataset (e.g. this machine's fresh one): write metrics here (one per "
                        "--model-dir), with that dataset's own labels, instead of into the model's directory")  # fmt: skip

    p = sub.add_parser("summarize", help="gather all models' metrics, the noise floor and the ratios")
    p.add_argument("--models-dir", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--split", default=None)
    p.add_argument("--fresh-dataset", default=None, help="the dataset the models were also scored on (--out-dir)")
    p.add_argument("--fresh-dir", default=None, help="name of those scores' directory in each run directory")
    p.add_argument("--models", nargs="+", default=None, help="model directories to gather (default: every one)")
    p.add_argument("--seeds", type=int, default=None, help="runs per model to average (default: every one)")
    p.add_argument("--selection-dataset", default=None,
                   help="a dataset whose zoo and user programs had every candidate timed: the models' picks there "
                   "against Halide's default pick (models.selection)")  # fmt: skip
    p.add_argument("--selection-dir", default="",
                   help="name of the scores' directory on that dataset in each run directory (default: the run's own)")
    p.add_argument("--adapted-dir", default=None,
                   help="perfgraph adapt's output: its models join the fresh scores and the picks as <model>+adapted")

    p = sub.add_parser("export-weights",
                       help="write a trained Adams2019 model as Halide's .weights file, to guide the sampler")  # fmt: skip
    p.add_argument("--model-dir", required=True, help="a trained adams2019 run, e.g. results/models/adams2019/seed0")
    p.add_argument("--out", required=True, help="the .weights file (a sampler's `weights:` reads it)")

    from pipelines.cli import name_subcommands

    name_subcommands(sub, "models.__main__")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )

    if args.cmd == "split":
        from models.split import write_split

        split = write_split(args.dataset, args.out, train=args.train, val=args.val, salt=args.salt, seed=args.seed,
                            all_held_out=args.held_out, adapt_on=args.adapt_on)  # fmt: skip
        counts = split.group_by("split").len().sort("split")
        print(json.dumps(dict(zip(counts["split"].to_list(), counts["len"].to_list()))))
    elif args.cmd == "search":
        from models.search import search

        res = search(args.model, args.dataset, args.split, args.out, trials=args.trials, seed=args.seed,
                     epochs=args.epochs, threads=args.threads)  # fmt: skip
        print(json.dumps({"model": res["model"], "chosen": res["chosen"]}))
    elif args.cmd == "train":
        from models.train import train

        overrides = json.loads(args.config) if args.config else None
        if args.search and overrides:
            parser.error("give --config or --search, not both")
        if args.search:
            from models.search import chosen_configs

            overrides = chosen_configs([args.search])[args.model]
        for out, seed in planned_runs(args.out, args.seed, args.runs):
            meta = train(
                args.model,
                args.dataset,
                args.split,
                out,
                epochs=args.epochs,
                threads=args.threads,
                seed=seed,
                device=args.device,
                config=overrides,
                resume=not args.fresh,
            )
            keys = ("model", "epochs_run", "best_epoch", "best_val_loss", "train_wall_s")
            print(json.dumps({k: meta[k] for k in keys} | {"val": meta["metrics"]["val"]}), flush=True)
    elif args.cmd == "evaluate":
        from models.evaluate import evaluate

        if args.out_dir is not None and len(args.out_dir) != len(args.model_dir):
            raise UserError(f"--out-dir: {len(args.out_dir)} directories for {len(args.model_dir)} --model-dir")
        for k, model_dir in enumerate(args.model_dir):
            out = evaluate(
                args.dataset,
                args.split,
                model_dir,
                device=args.device,
                threads=args.threads,
                strict=not args.no_strict,
                out_dir=None if args.out_dir is None else args.out_dir[k],
            )
            print(json.dumps({"model_dir": model_dir, **out}))
    elif args.cmd == "export-weights":
        from models.halide.adams2019 import export_halide_weights
        from models.registry import TrainedModel

        trained = TrainedModel(args.model_dir)
        if trained.name != "adams2019":
            raise UserError(f"{args.model_dir}: a {trained.name} model; only adams2019 has Halide's weights format")
        print(export_halide_weights(trained.model, args.out))
    elif args.cmd == "summarize":
        from models.evaluate import summarize

        s = summarize(args.models_dir, args.dataset, args.out, split_path=args.split,
                      fresh_dataset=args.fresh_dataset, fresh_dir=args.fresh_dir, models=args.models,
                      n_seeds=args.seeds, selection_dataset=args.selection_dataset,
                      selection_dir=args.selection_dir, adapted_dir=args.adapted_dir)  # fmt: skip
        print(json.dumps({"models": sorted(s["models"]), "ratios": s["ratios"]}))
    return 0


if __name__ == "__main__":
    from featurize.schema import run_reporting_user_errors

    sys.exit(run_reporting_user_errors(main))
