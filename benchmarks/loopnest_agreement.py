"""How closely the loop-nest featurizer reproduces Adams2019's featurization (issue 32).

For each program (random programs of the reference's kind and zoo programs), Adams2019
schedules it ``--samples`` times (beam 1; the first with the shipped model alone, the others
with ``random_dropout`` 50 and their own seeds), and for each schedule compares, stage by
stage, Halide's own featurization with :func:`featurize.halide.loopnest.schedule_features`
of the same schedule. Writes, per feature, over the stages Halide computes and over those it
inlines: ``n`` (stages where ours is defined), ``exact`` (share equal to relative 1e-6) and
``within_10pct``; and the worst disagreements.

    python benchmarks/loopnest_agreement.py --random 0 1 2 3 4 \\
        --zoo unsharp_mask separable_blur harris_corners resnet_basic_block --samples 3 \\
        --out results/bench/loopnest_agreement.json
"""

from __future__ import annotations

import argparse
import math
import time

from common import write_result

from featurize.halide import loopnest as ln
from featurize.halide.features import SCHEDULE_FEATURE_NAMES, decode_featurization
from featurize.halide.graph import parse_dag_dump
from pipelines.halide.programs import random_entry, zoo_entry
from pipelines.halide.sample import dag_dump

#: The reference dataset's random programs, smaller (a schedule lowers in about a second).
RANDOM_PARAMS = {"max_stages": 8, "widths": [32, 64], "channels": [4, 8], "max_macs": 5_000_000}


def same(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(a))


def agreement(pairs: list[tuple[dict, dict]]) -> dict:
    out = {}
    for name in SCHEDULE_FEATURE_NAMES:
        defined = [(h[name], o[name]) for h, o in pairs if not math.isnan(o[name])]
        if defined:
            out[name] = {"n": len(defined),
                         "exact": sum(same(a, b, 1e-6) for a, b in defined) / len(defined),
                         "within_10pct": sum(same(a, b, 0.1) for a, b in defined) / len(defined)}  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--random", type=int, nargs="*", default=[0, 1, 2, 3, 4], help="generator seeds")
    ap.add_argument("--zoo", nargs="*",
                    default=["unsharp_mask", "separable_blur", "harris_corners", "resnet_basic_block"])
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    entries = [random_entry(f"r{s:05d}", s, RANDOM_PARAMS) for s in args.random] + [zoo_entry(z) for z in args.zoo]
    dags = [parse_dag_dump(dag_dump(e, 1, 300)) for e in entries]
    computed, inlined, worst = [], [], []
    t0 = time.perf_counter()
    for entry, dag in zip(entries, dags):
        for k in range(args.samples):
            params = {"parallelism": 1, "beam_size": 1, "random_dropout": 50 if k else 100, "random_dropout_seed": k}
            lowered = ln.lower_in_child(entry, "Adams2019", params)
            halide = [dict(zip(SCHEDULE_FEATURE_NAMES, r[:39])) for r in decode_featurization(lowered["featurization"])]
            ours = ln.features_from_lowering(lowered, dag, invariant=halide)
            for stage, h, o in zip(dag.featurization_stages(), halide, ours):
                (inlined if o["inlined_calls"] > 0 else computed).append((h, o))
                for name in ln.LOOP_NEST_FEATURES:
                    if not same(h[name], o[name], 1e-6) and not math.isnan(o[name]):
                        worst.append({"program": entry["program_id"], "sample": k, "stage": stage.name,
                                      "feature": name, "halide": h[name], "ours": o[name]})  # fmt: skip
    result = {
        "programs": [e["program_id"] for e in entries],
        "samples_per_program": args.samples,
        "stages": {"computed": len(computed), "inlined": len(inlined)},
        "computed": agreement(computed),
        "inlined": agreement(inlined),
        "disagreements": worst[:200],
        "wall_s": time.perf_counter() - t0,
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
