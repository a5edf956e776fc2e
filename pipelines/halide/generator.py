"""Random deep-learning programs, drawn from a seed.

The generator writes a spec (see :mod:`pipelines.halide.ops`); the same seed and
parameters always give the same spec, hence the same Halide program: same
stages, names, constants and sizes. Programs are DAGs: an operand is sometimes
an older tensor (fan-out), and a branch is merged back by a binary op (skip
connection) whenever a tensor of the same shape is waiting.

The default operators are a network's layers. Image-pipeline operators (1-D stencils and
constant scaling, what blurs, unsharp masks and Harris corners are made of) are drawn only
when ``op_weights`` names them, so a seed under the default parameters keeps its program.
"""

from __future__ import annotations

import random

from pipelines.halide.ops import BINARY_FNS, UNARY_FNS

#: Default generator parameters; the config's ``random_programs.params`` overrides them.
DEFAULT_PARAMS = {
    "min_stages": 3,
    "max_stages": 12,
    "widths": [16, 32, 64],
    "channels": [4, 8, 16],
    "max_channels": 32,
    "p_skip": 0.3,
    "max_macs": 20_000_000,
    "min_macs": 2_000_000,
    "max_redraws": 20,
    "op_weights": {
        "conv2d": 3,
        "depthwise_conv2d": 1,
        "max_pool": 1,
        "avg_pool": 1,
        "fully_connected": 1,
        "matmul": 1,
        "unary": 3,
        "binary": 2,
        "bias": 1,
        "affine_norm": 1,
        "softmax": 1,
        "upsample": 1,
        "downsample": 1,
        "transpose": 1,
    },
}

#: Stage names are a short op name plus the stage's index: conv3, pool4, ...
_SHORT_NAMES = {
    "conv2d": "conv",
    "depthwise_conv2d": "dwconv",
    "max_pool": "maxpool",
    "avg_pool": "avgpool",
    "fully_connected": "fc",
    "matmul": "matmul",
    "unary": "act",
    "binary": "binop",
    "bias": "bias",
    "affine_norm": "norm",
    "softmax": "softmax",
    "upsample": "up",
    "downsample": "down",
    "transpose": "transpose",
    "stencil": "stencil",
    "scale": "scale",
}

#: Taps of the 1-D stencils the generator draws: box and binomial blurs, a Sobel half's
#: difference, a Laplacian.
STENCIL_TAPS = (
    (1 / 3, 1 / 3, 1 / 3),
    (0.25, 0.5, 0.25),
    (-1.0, 0.0, 1.0),
    (-1.0, 2.0, -1.0),
    (0.2, 0.2, 0.2, 0.2, 0.2),
    (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16),
)
#: Multipliers of a drawn ``scale`` stage (Harris' k, halves, unsharp's amount, doubling).
SCALE_MULS = (0.04, 0.5, 1.5, 2.0)

#: How many Funcs each op adds (softmax is four stages).
_FUNCS_PER_OP = {"softmax": 4}


def _macs(op: str, shape, attrs) -> int:
    w, h, ch = shape
    if op == "conv2d":
        return w * h * ch * attrs["cout"] * attrs["k"] ** 2
    if op == "depthwise_conv2d":
        return w * h * ch * attrs["k"] ** 2
    if op == "fully_connected":
        return attrs["cout"] * w * h * ch
    if op == "matmul":
        return w * h * ch * w
    if op == "stencil":
        return w * h * ch * len(attrs["weights"])
    return 4 * w * h * ch


def _out_shape(op: str, shape, attrs):
    w, h, ch = shape
    if op == "conv2d":
        return (w, h, attrs["cout"])
    if op in ("max_pool", "avg_pool"):
        s = attrs["stride"]
        return (max(1, w // s), max(1, h // s), ch)
    if op == "fully_connected":
        return (attrs["cout"], h, ch)
    if op == "upsample":
        return (w * attrs["factor"], h * attrs["factor"], ch)
    if op == "downsample":
        return (max(1, w // attrs["factor"]), max(1, h // attrs["factor"]), ch)
    if op == "transpose":
        return (h, w, ch)
    return (w, h, ch)  # matmul with a square operand, elementwise ops


def generate_spec(seed: int, params: dict | None = None, name: str | None = None) -> dict:
    """A random program spec for ``seed``; deterministic in (seed, params).

    A draw with less work than ``min_macs`` (a run too short to time well) is
    redrawn from the same random stream, up to ``max_redraws`` times.
    """
    p = {**DEFAULT_PARAMS, **(params or {})}
    rng = random.Random(seed)
    for _ in range(p["max_redraws"]):
        spec, macs = _draw(rng, p)
        if macs >= p["min_macs"]:
            break
    spec["name"] = name or f"random_{seed}"
    return spec


def _draw(rng: random.Random, p: dict) -> tuple[dict, int]:
    width = rng.choice(p["widths"])
    shape0 = (width, width, rng.choice(p["channels"]))
    target_funcs = rng.randint(p["min_stages"], p["max_stages"])
    ops, weights = zip(*sorted(p["op_weights"].items()))

    shapes = {"input": shape0}
    order = ["input"]  # tensors in creation order
    consumed: set[str] = set()
    stages: list[dict] = []
    n_funcs = 0
    macs = 0
    costs: list[int] = []
    while n_funcs < target_funcs:
        idx = len(stages)
        # The primary operand: usually the newest tensor, sometimes an older one (fan-out).
        if len(order) > 1 and rng.random() < p["p_skip"]:
            a = rng.choice(order[:-1])
        else:
            a = order[-1]
        shape = shapes[a]
        op = rng.choices(ops, weights)[0]
        op, attrs, args = _stage_attrs(rng, p, op, a, order, shapes, consumed)
        out = _out_shape(op, shape, attrs)
        cost = _macs(op, shape, attrs)
        if macs + cost > p["max_macs"]:
            # Too much work for one run: fall back to a cheap elementwise stage.
            op, attrs, args, out = "unary", {"fn": rng.choice(UNARY_FNS)}, [a], shape
            cost = _macs(op, shape, attrs)
        name_i = f"{_SHORT_NAMES[op]}{idx}"
        stages.append({"name": name_i, "op": op, "args": args, "attrs": attrs})
        consumed.update(args)
        shapes[name_i] = out
        order.append(name_i)
        n_funcs += _FUNCS_PER_OP.get(op, 1)
        macs += cost
        costs.append(cost)

    # Merge waiting branches of the output's shape back in, so fan-outs end in a join.
    output = order[-1]
    for t in order[1:-1]:
        if n_funcs >= p["max_stages"]:
            break
        if t not in consumed and shapes[t] == shapes[output]:
            n_funcs += 1
            name_i = f"join{len(stages)}"
            stages.append({"name": name_i, "op": "binary", "args": [output, t], "attrs": {"fn": "add"}})
            consumed.update([output, t])
            shapes[name_i] = shapes[output]
            output = name_i
            costs.append(4 * shapes[output][0] * shapes[output][1] * shapes[output][2])
    all_stages = list(stages)
    stages = _prune(stages, output)
    live_macs = sum(cost for st, cost in zip(all_stages, costs) if st in stages)
    spec = {"name": "", "inputs": [{"name": "input", "shape": list(shape0)}], "stages": stages, "outputs": [output]}
    return spec, live_macs


def _stage_attrs(
    rng: random.Random, p: dict, op: str, a: str, order: list[str], shapes: dict, consumed: set[str]
) -> tuple[str, dict, list[str]]:
    """(op, attrs, operands) of a new stage on tensor ``a``: the drawn ``op`` with its
    attributes, or a cheaper op where the shape does not allow it (the same random draws,
    in the same order, as the generator has always made: a seed keeps its program)."""
    shape = shapes[a]
    attrs: dict = {}
    args = [a]
    if op == "conv2d":
        attrs = {
            "k": rng.choice([1, 3, 3, 5]),
            "cout": min(p["max_channels"], rng.choice(p["channels"]) * rng.choice([1, 2])),
            "form": rng.choice(["rdom", "unrolled"]),
        }
    elif op == "depthwise_conv2d":
        attrs = {"k": rng.choice([3, 5])}
    elif op in ("max_pool", "avg_pool"):
        if min(shape[:2]) < 4:
            op, attrs = "unary", {"fn": rng.choice(UNARY_FNS)}
        else:
            attrs = {"k": rng.choice([2, 3]), "stride": rng.choice([1, 2])}
    elif op == "fully_connected":
        attrs = {"cout": rng.choice(p["widths"])}
    elif op == "matmul":
        # a(k, i, c) x b(j, k, c): square activations multiply with their own transpose.
        if shape[0] != shape[1]:
            op, attrs = "transpose", {}
        else:
            partners = [t for t in order if shapes[t] == shape and t != a]
            args = [a, rng.choice(partners) if partners else a]
    elif op == "unary":
        attrs = {"fn": rng.choice(UNARY_FNS)}
    elif op == "binary":
        partners = [t for t in order if shapes[t] == shape and t != a]
        waiting = [t for t in partners if t not in consumed]
        if waiting or partners:
            args = [a, rng.choice(waiting or partners)]
            attrs = {"fn": rng.choice(BINARY_FNS)}
        else:
            op, attrs = "unary", {"fn": rng.choice(UNARY_FNS)}
    elif op == "upsample":
        if max(shape[:2]) * 2 > 2 * max(p["widths"]):
            op, attrs = "downsample", {"factor": 2}
        else:
            attrs = {"factor": 2}
    elif op == "downsample":
        if min(shape[:2]) < 4:
            op, attrs = "upsample", {"factor": 2}
        else:
            attrs = {"factor": 2}
    elif op == "stencil":
        attrs = {"axis": rng.choice(["x", "y"]), "weights": list(rng.choice(STENCIL_TAPS))}
    elif op == "scale":
        attrs = {"mul": rng.choice(SCALE_MULS)}
    return op, attrs, args


def _prune(stages: list[dict], output: str) -> list[dict]:
    """Drop stages the output does not depend on (dead branches)."""
    live = {output}
    for st in reversed(stages):
        if st["name"] in live:
            live.update(st["args"])
    return [st for st in stages if st["name"] in live]
