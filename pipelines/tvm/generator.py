"""Seeded random TVM tensor-program specs (origin ``random``): a kind drawn by weight,
its shapes from the parameters; redrawn until its work is within bounds. The same seed
and parameters always give the same spec (:mod:`pipelines.tvm.ops` builds it)."""

from __future__ import annotations

import random
from typing import Any

from pipelines.tvm.ops import BINARY_FNS, UNARY_FNS, TVMSpecError, out_size

#: Default random-generator parameters; the config's ``tvm.programs.random.params`` overrides them.
DEFAULT_PARAMS: dict[str, Any] = {
    "max_macs": 20_000_000,  # multiply-accumulates (or elementwise ops) per run, at most
    "min_macs": 200_000,  # programs with less work are redrawn (too fast to time well)
    "max_redraws": 30,
    "sizes": [7, 14, 28, 56],  # spatial sizes (height = width)
    "channels": [16, 32, 64, 96, 128, 256],
    "features": [64, 128, 256, 512, 768, 1024],  # dense / matmul / norm widths
    "kind_weights": {
        "conv2d": 3,
        "depthwise_conv2d": 2,
        "dense": 2,
        "batch_matmul": 1,
        "pool": 1,
        "softmax": 1,
        "layer_norm": 1,
        "elementwise": 2,
    },
}

KINDS = tuple(DEFAULT_PARAMS["kind_weights"])


def _macs_of(spec: dict) -> int:
    """Work estimate of a spec, without building it (same as Workload.macs)."""
    k, p = spec["kind"], spec["params"]
    if k == "conv2d":
        oh = out_size(p["size"], p["k"], p["stride"], p["pad"])
        return p["co"] * oh * oh * p["ci"] * p["k"] ** 2
    if k == "depthwise_conv2d":
        oh = out_size(p["size"], p["k"], p["stride"], p["pad"])
        return p["channels"] * oh * oh * p["k"] ** 2
    if k == "dense":
        return p["n"] * p["m"] * p["k"]
    if k == "batch_matmul":
        return p["batch"] * p["n"] * p["m"] * p["k"]
    if k == "pool":
        if p["mode"] == "global_avg":
            return p["channels"] * p["size"] ** 2
        oh = out_size(p["size"], p["k"], p["stride"], p.get("pad", 0))
        return p["channels"] * oh * oh * p["k"] ** 2
    if k in ("softmax", "layer_norm"):
        return 4 * p["m"] * p["n"]
    if k == "elementwise":
        n = 1
        for s in p["shape"]:
            n *= s
        return n * len(p["ops"])
    raise TVMSpecError(f"unknown kind {k!r}")


def _draw(rng: random.Random, prm: dict) -> dict:
    weights = prm["kind_weights"]
    kinds = [k for k in KINDS if weights.get(k, 0) > 0]
    if not kinds:
        raise TVMSpecError("kind_weights gives every kind weight 0")
    kind = rng.choices(kinds, weights=[weights[k] for k in kinds])[0]
    size = rng.choice(prm["sizes"])
    chans, feats = prm["channels"], prm["features"]
    act = lambda: rng.choice([None, None, "relu", "relu6", "sigmoid", "tanh"])  # noqa: E731
    if kind == "conv2d":
        k = rng.choice([1, 3, 3, 5])
        stride = rng.choice([1, 1, 2]) if size > 7 else 1
        p = {"ci": rng.choice(chans), "co": rng.choice(chans), "size": size, "k": k, "stride": stride, "pad": k // 2,
             "bias": rng.random() < 0.5, "act": act()}  # fmt: skip
    elif kind == "depthwise_conv2d":
        k = rng.choice([3, 3, 5])
        stride = rng.choice([1, 1, 2]) if size > 7 else 1
        p = {"channels": rng.choice(chans), "size": size, "k": k, "stride": stride, "pad": k // 2,
             "bias": rng.random() < 0.5, "act": rng.choice([None, "relu", "relu6"])}  # fmt: skip
    elif kind == "dense":
        p = {"n": rng.choice([1, 8, 16, 32, 64, 128]), "m": rng.choice(feats), "k": rng.choice(feats),
             "bias": rng.random() < 0.5, "act": act()}  # fmt: skip
    elif kind == "batch_matmul":
        p = {"batch": rng.choice([1, 2, 4, 8, 12]), "n": rng.choice([16, 32, 64, 128]),
             "m": rng.choice([16, 32, 64, 128]),
             "k": rng.choice([32, 64, 128]), "scale": rng.choice([None, 0.125])}  # fmt: skip
    elif kind == "pool":
        mode = rng.choice(["max", "max", "avg", "global_avg"])
        p = {"channels": rng.choice(chans), "size": size, "mode": mode}
        if mode != "global_avg":
            k = rng.choice([2, 3])
            p.update(k=k, stride=2, pad=(1 if k == 3 else 0))
    elif kind in ("softmax", "layer_norm"):
        p = {"m": rng.choice([32, 64, 128, 256, 512, 1024]), "n": rng.choice(feats)}
    else:
        n_ops = rng.randint(2, 5)
        ops = [rng.choice(UNARY_FNS + BINARY_FNS + ("bias",)) for _ in range(n_ops)]
        shape = (
            [1, rng.choice(chans), size, size]
            if rng.random() < 0.6
            else [rng.choice([64, 128, 256]), rng.choice(feats)]
        )
        p = {"shape": shape, "ops": ops}
        binary_at = [i for i, o in enumerate(ops) if o in BINARY_FNS and i > 0]
        if binary_at and rng.random() < 0.5:
            p["residual"] = rng.choice(binary_at)
    return {"kind": kind, "params": p}


def random_spec(seed: int, params: dict | None = None) -> dict:
    """A random program spec from ``seed``: the same seed and params give the same spec.

    Draws until the work estimate lies in ``[min_macs, max_macs]`` (at most
    ``max_redraws`` draws; the last draw is kept otherwise).
    """
    prm = {**DEFAULT_PARAMS, **(params or {})}
    prm["kind_weights"] = {**DEFAULT_PARAMS["kind_weights"], **(params or {}).get("kind_weights", {})}
    unknown = set(prm) - set(DEFAULT_PARAMS)
    if unknown:
        raise TVMSpecError(f"unknown TVM generator parameters {sorted(unknown)}")
    bad_kinds = set(prm["kind_weights"]) - set(KINDS)
    if bad_kinds:
        raise TVMSpecError(f"unknown kinds in kind_weights: {sorted(bad_kinds)}")
    rng = random.Random(f"perfgraph-tvm:{seed}")
    spec = None
    for _ in range(max(1, prm["max_redraws"])):
        spec = _draw(rng, prm)
        if prm["min_macs"] <= _macs_of(spec) <= prm["max_macs"]:
            break
    return spec
