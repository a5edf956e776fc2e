"""Every stage kind compiles and runs, and computes what its docstring says (checked with numpy)."""

from __future__ import annotations

import halide as hl
import numpy as np
import pytest

from pipelines.halide.ops import OP_ARITY, SpecError, build_program

# numpy arrays here are indexed [c, y, x]: Halide's dimension 0 (x) is innermost.


def realize(stages: list[dict], inputs: dict[str, tuple], seed: int = 0):
    """JIT-compile and run a program; return (output, {input name: array})."""
    spec = {
        "name": "t",
        "inputs": [{"name": n, "shape": list(s)} for n, s in inputs.items()],
        "stages": stages,
        "outputs": [stages[-1]["name"]],
    }
    prog = build_program(spec)
    rng = np.random.default_rng(seed)
    values = {}
    for name, (param, shape) in prog.inputs.items():
        values[name] = rng.uniform(-1, 1, size=shape[::-1]).astype(np.float32)
        param.set(hl.Buffer(values[name]))
    out = np.asarray(prog.pipeline.realize(list(prog.output_shapes[0])))
    return out, values


def pad(a: np.ndarray, p: int) -> np.ndarray:
    """Repeat-edge padding of x and y, as the builder's clamped reads do."""
    return np.pad(a, ((0, 0), (p, p), (p, p)), mode="edge")


def st(name, op, args, **attrs):
    return {"name": name, "op": op, "args": args, "attrs": attrs}


@pytest.mark.parametrize("form", ["rdom", "unrolled"])
def test_conv2d(form: str) -> None:
    out, v = realize([st("conv", "conv2d", ["input"], k=3, cout=5, form=form)], {"input": (9, 7, 4)})
    x, w = pad(v["input"], 1), v["conv_w"]  # w[co, ci, ky, kx]
    ref = np.zeros((5, 7, 9), np.float64)
    for ky in range(3):
        for kx in range(3):
            ref += np.einsum("oi,iyx->oyx", w[:, :, ky, kx], x[:, ky : ky + 7, kx : kx + 9])
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_depthwise_conv2d() -> None:
    out, v = realize([st("dw", "depthwise_conv2d", ["input"], k=3)], {"input": (8, 6, 3)})
    x, w = pad(v["input"], 1), v["dw_w"]  # w[c, ky, kx]
    ref = sum(w[:, ky, kx, None, None] * x[:, ky : ky + 6, kx : kx + 8] for ky in range(3) for kx in range(3))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["max_pool", "avg_pool"])
def test_pools(op: str) -> None:
    out, v = realize([st("pool", op, ["input"], k=2, stride=2)], {"input": (8, 6, 3)})
    blocks = v["input"].reshape(3, 3, 2, 4, 2)
    ref = blocks.max(axis=(2, 4)) if op == "max_pool" else blocks.mean(axis=(2, 4))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_fully_connected_and_matmul() -> None:
    out, v = realize([st("fc", "fully_connected", ["input"], cout=6)], {"input": (5, 4, 2)})
    ref = np.einsum("io,cyi->cyo", v["fc_w"], v["input"])  # Halide W(o, i) is numpy [i, o]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    out, v = realize([st("mm", "matmul", ["a", "b"])], {"a": (5, 4, 2), "b": (3, 5, 2)})
    ref = np.einsum("cik,ckj->cij", v["a"], v["b"])  # out(j, i) = sum_k a(k, i) b(j, k)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "fn,ref",
    [
        ("relu", lambda a: np.maximum(a, 0)),
        ("relu6", lambda a: np.clip(a, 0, 6)),
        ("tanh", np.tanh),
        ("exp", np.exp),
        ("sigmoid", lambda a: 1 / (1 + np.exp(-a))),
    ],
)
def test_unary(fn, ref) -> None:
    out, v = realize([st("u", "unary", ["input"], fn=fn)], {"input": (4, 3, 2)})
    np.testing.assert_allclose(out, ref(v["input"]), rtol=1e-5, atol=1e-6)


def test_binary_bias_norm_scale() -> None:
    out, v = realize([st("b", "binary", ["p", "q"], fn="sub")], {"p": (4, 3, 2), "q": (4, 3, 2)})
    np.testing.assert_allclose(out, v["p"] - v["q"], rtol=1e-6)
    out, v = realize([st("b", "bias", ["input"])], {"input": (4, 3, 2)})
    np.testing.assert_allclose(out, v["input"] + v["b_b"][:, None, None], rtol=1e-6)
    out, v = realize([st("n", "affine_norm", ["input"])], {"input": (4, 3, 2)})
    p = v["n_p"]  # p[k, c]: k = 0 scale, 1 shift
    np.testing.assert_allclose(out, v["input"] * p[0][:, None, None] + p[1][:, None, None], rtol=1e-5)
    out, v = realize([st("s", "scale", ["input"], mul=2.0, add=1.0)], {"input": (4, 3, 2)})
    np.testing.assert_allclose(out, 2 * v["input"] + 1, rtol=1e-6)


@pytest.mark.parametrize("axis", ["c", "x"])
def test_softmax(axis: str) -> None:
    out, v = realize([st("sm", "softmax", ["input"], axis=axis)], {"input": (5, 3, 4)})
    ax = 0 if axis == "c" else 2
    e = np.exp(v["input"] - v["input"].max(axis=ax, keepdims=True))
    np.testing.assert_allclose(out, e / e.sum(axis=ax, keepdims=True), rtol=1e-5)


def test_resampling_transpose_stencil() -> None:
    out, v = realize([st("up", "upsample", ["input"], factor=2)], {"input": (3, 2, 2)})
    np.testing.assert_allclose(out, v["input"].repeat(2, axis=1).repeat(2, axis=2))
    out, v = realize([st("down", "downsample", ["input"], factor=2)], {"input": (4, 6, 2)})
    a = v["input"]
    np.testing.assert_allclose(out, (a[:, ::2, ::2] + a[:, ::2, 1::2] + a[:, 1::2, ::2] + a[:, 1::2, 1::2]) / 4, rtol=1e-5)
    out, v = realize([st("t", "transpose", ["input"])], {"input": (4, 3, 2)})
    np.testing.assert_allclose(out, v["input"].transpose(0, 2, 1))
    out, v = realize([st("s", "stencil", ["input"], axis="y", weights=[1, 2, 1])], {"input": (4, 5, 2)})
    a = pad(v["input"], 1)[:, :, 1:-1]
    np.testing.assert_allclose(out, a[:, :-2] + 2 * a[:, 1:-1] + a[:, 2:], rtol=1e-5)


def test_every_op_is_tested() -> None:
    tested = {"conv2d", "depthwise_conv2d", "max_pool", "avg_pool", "fully_connected", "matmul", "unary",
              "binary", "bias", "affine_norm", "scale", "softmax", "upsample", "downsample", "transpose", "stencil"}  # fmt: skip
    assert tested == set(OP_ARITY)


def test_bad_specs_are_named() -> None:
    with pytest.raises(SpecError, match="unknown op 'warp'"):
        build_program({"name": "t", "inputs": [{"name": "input", "shape": [4, 4, 1]}],
                       "stages": [st("w", "warp", ["input"])], "outputs": ["w"]})  # fmt: skip
    with pytest.raises(SpecError, match="operand 'nope'"):
        build_program({"name": "t", "inputs": [{"name": "input", "shape": [4, 4, 1]}],
                       "stages": [st("u", "unary", ["nope"])], "outputs": ["u"]})  # fmt: skip
