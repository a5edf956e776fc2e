"""Command line of the models stage.

    python -m models split     --dataset D --out F [--train 0.7 --val 0.15 --salt S --seed S]
    python -m models train     --dataset D --split F --model NAME --out DIR [--epochs N --threads T --seed S]
    python -m models evaluate  --dataset D --split F --model-dir DIR [--threads T]
    python -m models summarize --models-dir DIR --dataset D --out F [--split F]

``--out`` of ``train`` is the model's own directory (e.g. ``results/models/gcn``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from models.constants import MODEL_NAMES


def main(argv: list[str] | None = None) -> int:
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

    p = sub.add_parser("train", help="train one model")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--model", required=True, choices=MODEL_NAMES)
    p.add_argument("--out", required=True, help="the model's directory, e.g. results/models/gcn")
    p.add_argument("--epochs", type=int, default=None, help="epoch budget of the GNNs (Adams2019 keeps its own)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument("--config", default=None, help='JSON overrides, e.g. \'{"hidden_channels": 32}\'')
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")

    p = sub.add_parser("evaluate", help="predict the test and zoo programs; write metrics")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-strict", action="store_true", help="allow another dataset or split than training's")

    p = sub.add_parser("summarize", help="gather all models' metrics, the noise floor and the ratios")
    p.add_argument("--models-dir", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--split", default=None)

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )

    if args.cmd == "split":
        from models.split import write_split

        split = write_split(args.dataset, args.out, train=args.train, val=args.val, salt=args.salt, seed=args.seed)
        counts = split.group_by("split").len().sort("split")
        print(json.dumps(dict(zip(counts["split"].to_list(), counts["len"].to_list()))))
    elif args.cmd == "train":
        from models.train import train

        meta = train(
            args.model,
            args.dataset,
            args.split,
            args.out,
            epochs=args.epochs,
            threads=args.threads,
            seed=args.seed,
            device=args.device,
            config=json.loads(args.config) if args.config else None,
            resume=not args.fresh,
        )
        keys = ("model", "epochs_run", "best_epoch", "best_val_loss", "train_wall_s")
        print(json.dumps({k: meta[k] for k in keys} | {"val": meta["metrics"]["val"]}))
    elif args.cmd == "evaluate":
        from models.evaluate import evaluate

        out = evaluate(
            args.dataset,
            args.split,
            args.model_dir,
            device=args.device,
            threads=args.threads,
            strict=not args.no_strict,
        )
        print(json.dumps(out))
    elif args.cmd == "summarize":
        from models.evaluate import summarize

        s = summarize(args.models_dir, args.dataset, args.out, split_path=args.split)
        print(json.dumps({"models": sorted(s["models"]), "ratios": s["ratios"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
