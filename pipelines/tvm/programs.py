"""TVM tensor programs: deep-learning operators and small fused subgraphs in ``tvm.te``.

A program is described by a JSON-able *spec* ``{"kind": ..., "params": {...}}``;
:func:`build_workload` turns it into ``tvm.te`` tensors and
:func:`workload_module` into the ``IRModule`` MetaSchedule schedules. The same spec
always gives the same program: same blocks, names and shapes.

Kinds (batch 1, NCHW activations, float32):

* ``conv2d``: zero padding, 2-D convolution (reduction over ci, kh, kw), optional
  bias and activation;
* ``depthwise_conv2d``: padding, depthwise convolution, optional bias and relu6;
* ``dense``: ``Y = X W^T`` (reduction over k), optional bias and activation;
* ``batch_matmul``: ``C[b] = A[b] B[b]^T``, optional scale (attention scores);
* ``pool``: max or average pooling with padding, or global average pooling;
* ``softmax``: over the last axis, as four blocks (max, exp, sum, divide);
* ``layer_norm``: over the last axis (mean, variance, normalize with gamma/beta);
* ``elementwise``: a fused chain of 2-5 unary/binary/bias ops, sometimes with a
  residual input.

Each block (a ``te.compute``) is named, and :class:`Workload` records its operator
kind in the stage vocabulary of the Halide side (:mod:`pipelines.halide.ops`):
``conv2d``, ``depthwise_conv2d``, ``max_pool``, ``avg_pool``, ``fully_connected``,
``matmul``, ``unary``, ``binary``, ``bias``, ``affine_norm``, ``softmax``, and
``boundary`` for padding.

:func:`random_spec` draws a spec from a seed (origin ``random``); :data:`ZOO` holds
layer shapes of real networks (ResNet-18/50, MobileNet-V2, BERT-base; origin ``zoo``),
the out-of-distribution test set. Only ``tvm.te`` and ``tvm.tirx`` are imported, and
only when a workload is built.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

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
UNARY_FNS = ("relu", "relu6", "sigmoid", "tanh", "exp")
BINARY_FNS = ("add", "mul", "max")


class TVMSpecError(ValueError):
    """A program spec names an unknown kind or has bad parameters."""


@dataclass
class Workload:
    """A TVM program: its tensors (inputs first, then the output) and block labels."""

    name: str
    kind: str
    tensors: list  # te.Tensor: placeholders, then the output
    op_kinds: dict[str, str] = field(default_factory=dict)  # block name -> op kind
    macs: int = 0
    description: str = ""

    @property
    def n_inputs(self) -> int:
        return len(self.tensors) - 1

    @property
    def output_shape(self) -> list[int]:
        return [int(s) for s in self.tensors[-1].shape]


# --------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------


def _te():
    import tvm
    from tvm import te

    return tvm, te


def _activation(te, tvm, x, fn: str, name: str):
    f32 = "float32"
    zero, six, one = tvm.tirx.const(0.0, f32), tvm.tirx.const(6.0, f32), tvm.tirx.const(1.0, f32)
    if fn == "relu":
        body = lambda *i: te.max(x(*i), zero)  # noqa: E731
    elif fn == "relu6":
        body = lambda *i: te.min(te.max(x(*i), zero), six)  # noqa: E731
    elif fn == "sigmoid":
        body = lambda *i: one / (one + te.exp(-x(*i)))  # noqa: E731
    elif fn == "tanh":
        body = lambda *i: te.tanh(x(*i))  # noqa: E731
    elif fn == "exp":
        body = lambda *i: te.exp(x(*i))  # noqa: E731
    else:
        raise TVMSpecError(f"unknown activation {fn!r}")
    return te.compute(x.shape, body, name=name)


def _out_size(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


def _pad(te, tvm, x, pad: int, name: str, value: float = 0.0):
    """Zero (or ``value``) padding of the last two axes of an NCHW tensor."""
    n, c, h, w = (int(s) for s in x.shape)
    fill = tvm.tirx.const(value, "float32")

    def body(b, ch, i, j):
        inside = tvm.tirx.all(i >= pad, i < h + pad, j >= pad, j < w + pad)
        return tvm.tirx.if_then_else(inside, x[b, ch, i - pad, j - pad], fill)

    return te.compute((n, c, h + 2 * pad, w + 2 * pad), body, name=name)


def _conv2d(p: dict, name: str) -> Workload:
    tvm, te = _te()
    ci, co, size, k = p["ci"], p["co"], p["size"], p["k"]
    stride, pad = p.get("stride", 1), p.get("pad", k // 2)
    data = te.placeholder((1, ci, size, size), name="data")
    weight = te.placeholder((co, ci, k, k), name="weight")
    kinds = {}
    src = data
    if pad:
        src = _pad(te, tvm, data, pad, "pad")
        kinds["pad"] = "boundary"
    oh = _out_size(size, k, stride, pad)
    rc, rh, rw = te.reduce_axis((0, ci), "rc"), te.reduce_axis((0, k), "rh"), te.reduce_axis((0, k), "rw")
    out = te.compute(
        (1, co, oh, oh),
        lambda b, f, i, j: te.sum(
            src[b, rc, i * stride + rh, j * stride + rw] * weight[f, rc, rh, rw], axis=[rc, rh, rw]
        ),
        name="conv2d",
    )
    kinds["conv2d"] = "conv2d"
    tensors = [data, weight]
    out = _bias_and_activation(te, tvm, out, p, co, tensors, kinds)
    macs = co * oh * oh * ci * k * k
    desc = f"conv2d {ci}->{co} {k}x{k}/{stride} pad {pad} on {size}x{size}"
    return Workload(name, "conv2d", tensors + [out], kinds, macs, desc)


def _bias_and_activation(te, tvm, out, p: dict, channels: int, tensors: list, kinds: dict):
    """A convolution's optional epilogue: a per-channel bias (its weights appended to
    ``tensors``) and an activation, each a stage recorded in ``kinds``."""
    if p.get("bias"):
        bias = te.placeholder((channels,), name="bias_w")
        tensors.append(bias)
        out = te.compute(out.shape, lambda b, c, i, j: out[b, c, i, j] + bias[c], name="bias")
        kinds["bias"] = "bias"
    if p.get("act"):
        out = _activation(te, tvm, out, p["act"], "act")
        kinds["act"] = "unary"
    return out


def _depthwise_conv2d(p: dict, name: str) -> Workload:
    tvm, te = _te()
    ch, size, k = p["channels"], p["size"], p["k"]
    stride, pad = p.get("stride", 1), p.get("pad", k // 2)
    data = te.placeholder((1, ch, size, size), name="data")
    weight = te.placeholder((ch, 1, k, k), name="weight")
    kinds = {}
    src = data
    if pad:
        src = _pad(te, tvm, data, pad, "pad")
        kinds["pad"] = "boundary"
    oh = _out_size(size, k, stride, pad)
    rh, rw = te.reduce_axis((0, k), "rh"), te.reduce_axis((0, k), "rw")
    out = te.compute(
        (1, ch, oh, oh),
        lambda b, c, i, j: te.sum(src[b, c, i * stride + rh, j * stride + rw] * weight[c, 0, rh, rw], axis=[rh, rw]),
        name="dwconv",
    )
    kinds["dwconv"] = "depthwise_conv2d"
    tensors = [data, weight]
    out = _bias_and_activation(te, tvm, out, p, ch, tensors, kinds)
    macs = ch * oh * oh * k * k
    desc = f"depthwise conv2d {ch}ch {k}x{k}/{stride} on {size}x{size}"
    return Workload(name, "depthwise_conv2d", tensors + [out], kinds, macs, desc)


def _dense(p: dict, name: str) -> Workload:
    tvm, te = _te()
    n, m, k = p["n"], p["m"], p["k"]
    x = te.placeholder((n, k), name="x")
    w = te.placeholder((m, k), name="weight")
    r = te.reduce_axis((0, k), "rk")
    out = te.compute((n, m), lambda i, j: te.sum(x[i, r] * w[j, r], axis=r), name="dense")
    kinds = {"dense": "fully_connected"}
    tensors = [x, w]
    if p.get("bias"):
        bias = te.placeholder((m,), name="bias_w")
        tensors.append(bias)
        out = te.compute(out.shape, lambda i, j: out[i, j] + bias[j], name="bias")
        kinds["bias"] = "bias"
    if p.get("act"):
        out = _activation(te, tvm, out, p["act"], "act")
        kinds["act"] = "unary"
    return Workload(name, "dense", tensors + [out], kinds, n * m * k, f"dense {n}x{k} . {m}x{k}^T")


def _batch_matmul(p: dict, name: str) -> Workload:
    tvm, te = _te()
    b, n, m, k = p["batch"], p["n"], p["m"], p["k"]
    a = te.placeholder((b, n, k), name="a")
    bt = te.placeholder((b, m, k), name="b")
    r = te.reduce_axis((0, k), "rk")
    out = te.compute((b, n, m), lambda z, i, j: te.sum(a[z, i, r] * bt[z, j, r], axis=r), name="batch_matmul")
    kinds = {"batch_matmul": "matmul"}
    if p.get("scale"):
        s = tvm.tirx.const(float(p["scale"]), "float32")
        out = te.compute(out.shape, lambda z, i, j: out[z, i, j] * s, name="scale")
        kinds["scale"] = "unary"
    return Workload(
        name, "batch_matmul", [a, bt, out], kinds, b * n * m * k, f"batch matmul {b}x{n}x{k} . {b}x{m}x{k}^T"
    )


def _pool(p: dict, name: str) -> Workload:
    tvm, te = _te()
    ch, size, mode = p["channels"], p["size"], p["mode"]
    data = te.placeholder((1, ch, size, size), name="data")
    kinds = {}
    if mode == "global_avg":
        rh, rw = te.reduce_axis((0, size), "rh"), te.reduce_axis((0, size), "rw")
        s = te.compute((1, ch, 1, 1), lambda b, c, i, j: te.sum(data[b, c, rh, rw], axis=[rh, rw]), name="pool_sum")
        inv = tvm.tirx.const(1.0 / (size * size), "float32")
        out = te.compute(s.shape, lambda b, c, i, j: s[b, c, i, j] * inv, name="pool_avg")
        kinds.update(pool_sum="avg_pool", pool_avg="avg_pool")
        return Workload(name, "pool", [data, out], kinds, ch * size * size, f"global avg pool {ch}ch {size}x{size}")
    k, stride, pad = p["k"], p["stride"], p.get("pad", 0)
    src = data
    if pad:
        src = _pad(te, tvm, data, pad, "pad", value=-3.0e38 if mode == "max" else 0.0)
        kinds["pad"] = "boundary"
    oh = _out_size(size, k, stride, pad)
    rh, rw = te.reduce_axis((0, k), "rh"), te.reduce_axis((0, k), "rw")
    if mode == "max":
        out = te.compute(
            (1, ch, oh, oh),
            lambda b, c, i, j: te.max(src[b, c, i * stride + rh, j * stride + rw], axis=[rh, rw]),
            name="pool_max",
        )
        kinds["pool_max"] = "max_pool"
    elif mode == "avg":
        s = te.compute(
            (1, ch, oh, oh),
            lambda b, c, i, j: te.sum(src[b, c, i * stride + rh, j * stride + rw], axis=[rh, rw]),
            name="pool_sum",
        )
        inv = tvm.tirx.const(1.0 / (k * k), "float32")
        out = te.compute(s.shape, lambda b, c, i, j: s[b, c, i, j] * inv, name="pool_avg")
        kinds.update(pool_sum="avg_pool", pool_avg="avg_pool")
    else:
        raise TVMSpecError(f"unknown pool mode {mode!r}")
    return Workload(
        name, "pool", [data, out], kinds, ch * oh * oh * k * k, f"{mode} pool {ch}ch {k}x{k}/{stride} on {size}x{size}"
    )


def _softmax(p: dict, name: str) -> Workload:
    tvm, te = _te()
    m, n = p["m"], p["n"]
    x = te.placeholder((m, n), name="x")
    r1, r2 = te.reduce_axis((0, n), "r1"), te.reduce_axis((0, n), "r2")
    mx = te.compute((m,), lambda i: te.max(x[i, r1], axis=r1), name="softmax_max")
    ex = te.compute((m, n), lambda i, j: te.exp(x[i, j] - mx[i]), name="softmax_exp")
    sm = te.compute((m,), lambda i: te.sum(ex[i, r2], axis=r2), name="softmax_sum")
    out = te.compute((m, n), lambda i, j: ex[i, j] / sm[i], name="softmax_norm")
    kinds = {k: "softmax" for k in ("softmax_max", "softmax_exp", "softmax_sum", "softmax_norm")}
    return Workload(name, "softmax", [x, out], kinds, 4 * m * n, f"softmax {m}x{n} over the last axis")


def _layer_norm(p: dict, name: str) -> Workload:
    tvm, te = _te()
    m, n = p["m"], p["n"]
    x = te.placeholder((m, n), name="x")
    gamma, beta = te.placeholder((n,), name="gamma"), te.placeholder((n,), name="beta")
    r1, r2 = te.reduce_axis((0, n), "r1"), te.reduce_axis((0, n), "r2")
    inv_n = tvm.tirx.const(1.0 / n, "float32")
    eps = tvm.tirx.const(1e-5, "float32")
    s = te.compute((m,), lambda i: te.sum(x[i, r1], axis=r1), name="ln_sum")
    sq = te.compute((m,), lambda i: te.sum(x[i, r2] * x[i, r2], axis=r2), name="ln_sqsum")
    out = te.compute(
        (m, n),
        lambda i, j: (
            (x[i, j] - s[i] * inv_n) * te.rsqrt(sq[i] * inv_n - s[i] * inv_n * s[i] * inv_n + eps) * gamma[j] + beta[j]
        ),
        name="ln_norm",
    )
    kinds = {"ln_sum": "affine_norm", "ln_sqsum": "affine_norm", "ln_norm": "affine_norm"}
    return Workload(name, "layer_norm", [x, gamma, beta, out], kinds, 4 * m * n, f"layer norm {m}x{n}")


def _bias_fn(src, b):
    return lambda *idx: src(*idx) + b[idx[1]]


def _binary_fn(te, op: str, src, other):
    if op == "add":
        return lambda *idx: src(*idx) + other(*idx)
    if op == "mul":
        return lambda *idx: src(*idx) * other(*idx)
    return lambda *idx: te.max(src(*idx), other(*idx))


def _elementwise(p: dict, name: str) -> Workload:
    tvm, te = _te()
    shape = tuple(p["shape"])
    x = te.placeholder(shape, name="x")
    tensors = [x]
    kinds: dict[str, str] = {}
    cur = x
    for i, op in enumerate(p["ops"]):
        nm = f"ew{i}_{op}"
        if op in UNARY_FNS:
            cur = _activation(te, tvm, cur, op, nm)
            kinds[nm] = "unary"
        elif op == "bias":
            b = te.placeholder((shape[1],), name=f"bias{i}_w")
            tensors.append(b)
            cur = te.compute(shape, _bias_fn(cur, b), name=nm)
            kinds[nm] = "bias"
        elif op in BINARY_FNS:
            # A residual operand: the input itself, or a second input tensor.
            if p.get("residual") == i:
                other = x
            else:
                other = te.placeholder(shape, name=f"in{i}")
                tensors.append(other)
            cur = te.compute(shape, _binary_fn(te, op, cur, other), name=nm)
            kinds[nm] = "binary"
        else:
            raise TVMSpecError(f"unknown elementwise op {op!r}")
    numel = 1
    for s in shape:
        numel *= s
    return Workload(
        name,
        "elementwise",
        tensors + [cur],
        kinds,
        numel * len(p["ops"]),
        f"elementwise chain {'-'.join(p['ops'])} on {list(shape)}",
    )


_BUILDERS = {
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise_conv2d,
    "dense": _dense,
    "batch_matmul": _batch_matmul,
    "pool": _pool,
    "softmax": _softmax,
    "layer_norm": _layer_norm,
    "elementwise": _elementwise,
}


def build_workload(spec: dict, name: str = "main") -> Workload:
    """The ``tvm.te`` program of a spec."""
    kind = spec.get("kind")
    if kind not in _BUILDERS:
        raise TVMSpecError(f"unknown TVM workload kind {kind!r}; choose from {', '.join(_BUILDERS)}")
    try:
        return _BUILDERS[kind](dict(spec.get("params", {})), name)
    except KeyError as exc:
        raise TVMSpecError(f"{kind}: missing parameter {exc.args[0]!r} in {json.dumps(spec)}") from None


def workload_module(workload: Workload):
    """The ``IRModule`` (one PrimFunc ``main``) MetaSchedule schedules."""
    import tvm
    from tvm import te

    return tvm.IRModule({"main": te.create_prim_func(workload.tensors)})


# --------------------------------------------------------------------------------------
# Random specs
# --------------------------------------------------------------------------------------


def _macs_of(spec: dict) -> int:
    """Work estimate of a spec, without building it (same as Workload.macs)."""
    k, p = spec["kind"], spec["params"]
    if k == "conv2d":
        oh = _out_size(p["size"], p["k"], p["stride"], p["pad"])
        return p["co"] * oh * oh * p["ci"] * p["k"] ** 2
    if k == "depthwise_conv2d":
        oh = _out_size(p["size"], p["k"], p["stride"], p["pad"])
        return p["channels"] * oh * oh * p["k"] ** 2
    if k == "dense":
        return p["n"] * p["m"] * p["k"]
    if k == "batch_matmul":
        return p["batch"] * p["n"] * p["m"] * p["k"]
    if k == "pool":
        if p["mode"] == "global_avg":
            return p["channels"] * p["size"] ** 2
        oh = _out_size(p["size"], p["k"], p["stride"], p.get("pad", 0))
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


# --------------------------------------------------------------------------------------
# The zoo: layer shapes of real networks
# --------------------------------------------------------------------------------------

#: name -> spec. Shapes from the published architectures, batch 1 (BERT: sequence 128).
ZOO: dict[str, dict] = {
    # ResNet-18
    "resnet18_conv3x3_64": {
        "kind": "conv2d",
        "params": {"ci": 64, "co": 64, "size": 56, "k": 3, "stride": 1, "pad": 1, "act": "relu"},
    },
    "resnet18_conv3x3_128_s2": {
        "kind": "conv2d",
        "params": {"ci": 64, "co": 128, "size": 56, "k": 3, "stride": 2, "pad": 1, "act": "relu"},
    },
    "resnet18_conv3x3_256": {
        "kind": "conv2d",
        "params": {"ci": 256, "co": 256, "size": 14, "k": 3, "stride": 1, "pad": 1, "act": "relu"},
    },
    "resnet18_downsample_1x1": {
        "kind": "conv2d",
        "params": {"ci": 128, "co": 256, "size": 28, "k": 1, "stride": 2, "pad": 0},
    },
    "resnet18_maxpool": {
        "kind": "pool",
        "params": {"channels": 64, "size": 112, "mode": "max", "k": 3, "stride": 2, "pad": 1},
    },
    "resnet18_fc": {"kind": "dense", "params": {"n": 1, "m": 1000, "k": 512, "bias": True}},
    # ResNet-50
    "resnet50_conv1x1_reduce": {
        "kind": "conv2d",
        "params": {"ci": 256, "co": 64, "size": 56, "k": 1, "stride": 1, "pad": 0, "bias": True, "act": "relu"},
    },
    "resnet50_conv3x3_128": {
        "kind": "conv2d",
        "params": {"ci": 128, "co": 128, "size": 28, "k": 3, "stride": 1, "pad": 1, "bias": True, "act": "relu"},
    },
    "resnet50_global_pool": {"kind": "pool", "params": {"channels": 2048, "size": 7, "mode": "global_avg"}},
    # MobileNet-V2
    "mobilenetv2_expand_1x1": {
        "kind": "conv2d",
        "params": {"ci": 24, "co": 144, "size": 56, "k": 1, "stride": 1, "pad": 0, "bias": True, "act": "relu6"},
    },
    "mobilenetv2_dwconv_144": {
        "kind": "depthwise_conv2d",
        "params": {"channels": 144, "size": 56, "k": 3, "stride": 1, "pad": 1, "bias": True, "act": "relu6"},
    },
    "mobilenetv2_dwconv_960": {
        "kind": "depthwise_conv2d",
        "params": {"channels": 960, "size": 7, "k": 3, "stride": 1, "pad": 1, "bias": True, "act": "relu6"},
    },
    "mobilenetv2_residual_add": {"kind": "elementwise", "params": {"shape": [1, 32, 28, 28], "ops": ["bias", "add"]}},
    # BERT-base (sequence 128, hidden 768, 12 heads of 64)
    "bert_qkv_dense": {"kind": "dense", "params": {"n": 128, "m": 768, "k": 768, "bias": True}},
    "bert_ffn_dense": {"kind": "dense", "params": {"n": 128, "m": 3072, "k": 768, "bias": True, "act": "tanh"}},
    "bert_attention_scores": {
        "kind": "batch_matmul",
        "params": {"batch": 12, "n": 128, "m": 128, "k": 64, "scale": 0.125},
    },
    "bert_attention_softmax": {"kind": "softmax", "params": {"m": 1536, "n": 128}},
    "bert_layer_norm": {"kind": "layer_norm", "params": {"m": 128, "n": 768}},
}


def program_entry(
    program_id: str, *, seed: int | None = None, params: dict | None = None, zoo: str | None = None
) -> dict:
    """The JSON entry of one TVM program (what ``generate`` writes and ``sample`` reads)."""
    if (seed is None) == (zoo is None):
        raise TVMSpecError("give exactly one of seed and zoo")
    if zoo is not None:
        if zoo not in ZOO:
            raise TVMSpecError(f"unknown TVM zoo program {zoo!r}; choose from {', '.join(ZOO)}")
        return {
            "program_id": program_id,
            "origin": "zoo",
            "source": f"zoo:{zoo}",
            "seed": None,
            "params": {},
            "spec": ZOO[zoo],
        }
    return {
        "program_id": program_id,
        "origin": "random",
        "source": "pipelines.tvm_programs",  # as TVM datasets have always recorded it (now pipelines.tvm.programs)
        "seed": seed,
        "params": params or {},
        "spec": random_spec(seed, params),
    }
