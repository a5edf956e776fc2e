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

Specs come from :mod:`pipelines.tvm.generator` (seeded random, origin ``random``) and
:mod:`pipelines.tvm.zoo` (layers of real networks, origin ``zoo``). Only ``tvm.te`` and
``tvm.tirx`` are imported, and only when a workload is built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from featurize.schema import UserError

UNARY_FNS = ("relu", "relu6", "sigmoid", "tanh", "exp")
BINARY_FNS = ("add", "mul", "max")


class TVMSpecError(UserError):
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


def out_size(size: int, k: int, stride: int, pad: int) -> int:
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
    src = _padded_input(te, tvm, data, pad, kinds)
    oh = out_size(size, k, stride, pad)
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


def _padded_input(te, tvm, data, pad: int, kinds: dict):
    """A convolution's input, zero-padded by ``pad`` (a ``boundary`` stage in ``kinds``) if any."""
    if not pad:
        return data
    kinds["pad"] = "boundary"
    return _pad(te, tvm, data, pad, "pad")


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
    src = _padded_input(te, tvm, data, pad, kinds)
    oh = out_size(size, k, stride, pad)
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
    oh = out_size(size, k, stride, pad)
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
