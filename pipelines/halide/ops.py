"""The stage vocabulary: deep-learning and imaging operators as Halide Funcs.

Activations are 3-D float32 tensors indexed ``(x, y, c)`` (width, height,
channels), as in Halide's own apps. Each operator adds one or more named Funcs
to a :class:`ProgramBuilder` and returns the name of the tensor it produced;
weights are ``ImageParam`` inputs named after the stage (``conv3_w``). Input
indices are clamped (repeat-edge), so every intermediate Func is defined
everywhere and stencils need no padding stage. Reductions are written as
explicit update definitions (not ``hl.sum``), so that every Func, and hence
every node of the program graph, has the name the spec gave it.

A program is described by a JSON-able *spec* (see :func:`build_program`): the
random generator, the zoo and tests all write specs, and one builder turns a
spec into Halide, so the same spec always gives the same program.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import halide as hl

from featurize.schema import UserError

x, y, c = hl.Var("x"), hl.Var("y"), hl.Var("c")
F32 = hl.Float(32)
NEG_INF = F32.min()

#: Every operator kind the builder knows, with the number of tensor operands.
OP_ARITY = {
    "conv2d": 1,
    "depthwise_conv2d": 1,
    "max_pool": 1,
    "avg_pool": 1,
    "fully_connected": 1,
    "matmul": 2,
    "unary": 1,
    "binary": 2,
    "bias": 1,
    "affine_norm": 1,
    "softmax": 1,
    "upsample": 1,
    "downsample": 1,
    "transpose": 1,
    "stencil": 1,
    "scale": 1,
}

UNARY_FNS = ("relu", "tanh", "exp", "sigmoid", "relu6")
BINARY_FNS = ("add", "sub", "mul", "max")


class SpecError(UserError):
    """A program spec names an unknown operator, operand or attribute."""


@dataclass
class Tensor:
    func: hl.Func
    shape: tuple[int, int, int]


@dataclass
class Program:
    """A built Halide program: its pipeline and what perfgraph needs to know about it."""

    name: str
    pipeline: hl.Pipeline
    outputs: list[hl.Func]
    output_shapes: list[tuple[int, ...]]
    #: Func name -> stage vocabulary kind (what the generator or zoo meant it to be).
    op_kinds: dict[str, str] = field(default_factory=dict)
    #: Multiply-accumulates of one run, an estimate of its work.
    macs: int = 0
    #: Input ImageParams (activations and weights) by name, with their extents.
    inputs: dict[str, tuple[hl.ImageParam, tuple[int, ...]]] = field(default_factory=dict)


class ProgramBuilder:
    """Accumulates tensors, weight inputs and Funcs while a spec is built."""

    def __init__(self) -> None:
        self.tensors: dict[str, Tensor] = {}
        self.params: dict[str, hl.ImageParam] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.op_kinds: dict[str, str] = {}
        self.macs = 0

    # -- inputs ---------------------------------------------------------------
    def input(self, name: str, shape) -> str:
        """An activation input: an ImageParam read through clamped indices."""
        shape = tuple(int(s) for s in shape)
        param = self._param(name, shape)
        f = hl.Func(f"{name}_clamped")
        # Keyed by the name asked for: Halide appends "$N" to a name already used in this process.
        f[x, y, c] = param[
            hl.clamp(x, 0, shape[0] - 1), hl.clamp(y, 0, shape[1] - 1), hl.clamp(c, 0, shape[2] - 1)
        ]
        self.op_kinds[f"{name}_clamped"] = "input"
        self.tensors[name] = Tensor(f, shape)
        return name

    def _param(self, name: str, shape) -> hl.ImageParam:
        if name in self.params or name in self.tensors:
            raise SpecError(f"duplicate name {name!r}")
        p = hl.ImageParam(F32, len(shape), name)
        p.set_estimates([(0, int(s)) for s in shape])
        self.params[name] = p
        self.shapes[name] = tuple(int(s) for s in shape)
        return p

    def _weights(self, name: str, shape):
        """A weight input, indexed with every coordinate clamped into its extent."""
        p = self._param(name, shape)

        def read(*idx):
            return p[tuple(hl.clamp(i, 0, s - 1) for i, s in zip(idx, shape))]

        return read

    def _new(self, name: str, kind: str) -> hl.Func:
        if name in self.tensors or name in self.params:
            raise SpecError(f"duplicate name {name!r}")
        f = hl.Func(name)
        self.op_kinds[name] = kind
        return f

    def _emit(self, name: str, f: hl.Func, shape) -> str:
        self.tensors[name] = Tensor(f, tuple(int(s) for s in shape))
        return name

    # -- operators ------------------------------------------------------------
    def conv2d(self, name, a, k=3, cout=8, form="rdom"):
        """2-D convolution over all input channels, 'same' size output.

        ``form="rdom"`` reduces over one RDom spanning (kx, ky, ci); ``form="unrolled"``
        writes the kx, ky taps out in the expression and reduces over ci only.
        """
        t = self.tensors[a]
        w, h, cin = t.shape
        wt = self._weights(f"{name}_w", (k, k, cin, cout))
        f = self._new(name, "conv2d")
        o = k // 2
        if form == "rdom":
            r = hl.RDom([(0, k), (0, k), (0, cin)], f"{name}_r")
            f[x, y, c] = 0.0
            f[x, y, c] += t.func[x + r.x - o, y + r.y - o, r.z] * wt(r.x, r.y, r.z, c)
        elif form == "unrolled":
            r = hl.RDom([(0, cin)], f"{name}_r")
            taps = [t.func[x + i - o, y + j - o, r.x] * wt(i, j, r.x, c) for j in range(k) for i in range(k)]
            f[x, y, c] = 0.0
            f[x, y, c] += _add_all(taps)
        else:
            raise SpecError(f"{name}: conv2d form must be 'rdom' or 'unrolled', not {form!r}")
        self.macs += w * h * cout * cin * k * k
        return self._emit(name, f, (w, h, cout))

    def depthwise_conv2d(self, name, a, k=3):
        t = self.tensors[a]
        w, h, ch = t.shape
        wt = self._weights(f"{name}_w", (k, k, ch))
        f = self._new(name, "depthwise_conv2d")
        r = hl.RDom([(0, k), (0, k)], f"{name}_r")
        o = k // 2
        f[x, y, c] = 0.0
        f[x, y, c] += t.func[x + r.x - o, y + r.y - o, c] * wt(r.x, r.y, c)
        self.macs += w * h * ch * k * k
        return self._emit(name, f, t.shape)

    def _pool(self, name, a, k, stride, kind):
        t = self.tensors[a]
        w, h, ch = t.shape
        f = self._new(name, kind)
        r = hl.RDom([(0, k), (0, k)], f"{name}_r")
        tap = t.func[x * stride + r.x, y * stride + r.y, c]
        if kind == "max_pool":
            f[x, y, c] = NEG_INF
            f[x, y, c] = hl.max(f[x, y, c], tap)
        else:
            f[x, y, c] = 0.0
            f[x, y, c] += tap / float(k * k)
        shape = (max(1, w // stride), max(1, h // stride), ch)
        self.macs += shape[0] * shape[1] * ch * k * k
        return self._emit(name, f, shape)

    def max_pool(self, name, a, k=2, stride=2):
        return self._pool(name, a, k, stride, "max_pool")

    def avg_pool(self, name, a, k=2, stride=2):
        return self._pool(name, a, k, stride, "avg_pool")

    def fully_connected(self, name, a, cout=32):
        """out(o, y, c) = sum_i in(i, y, c) * W(o, i): a dense layer applied to every row."""
        t = self.tensors[a]
        w, h, ch = t.shape
        wt = self._weights(f"{name}_w", (cout, w))
        f = self._new(name, "fully_connected")
        r = hl.RDom([(0, w)], f"{name}_r")
        f[x, y, c] = 0.0
        f[x, y, c] += t.func[r.x, y, c] * wt(x, r.x)
        self.macs += cout * h * ch * w
        return self._emit(name, f, (cout, h, ch))

    def matmul(self, name, a, b):
        """Batched matmul over c: out(j, i, c) = sum_k a(k, i, c) * b(j, k, c)."""
        ta, tb = self.tensors[a], self.tensors[b]
        kdim, m, batch = ta.shape
        n, kb, batch_b = tb.shape
        if kdim != kb or batch != batch_b:
            raise SpecError(f"{name}: matmul shapes {ta.shape} and {tb.shape} do not fit")
        f = self._new(name, "matmul")
        r = hl.RDom([(0, kdim)], f"{name}_r")
        f[x, y, c] = 0.0
        f[x, y, c] += ta.func[r.x, y, c] * tb.func[x, r.x, c]
        self.macs += n * m * batch * kdim
        return self._emit(name, f, (n, m, batch))

    def unary(self, name, a, fn="relu"):
        t = self.tensors[a]
        v = t.func[x, y, c]
        exprs = {
            "relu": lambda: hl.max(v, 0.0),
            "relu6": lambda: hl.clamp(v, 0.0, 6.0),
            "tanh": lambda: hl.tanh(v),
            "exp": lambda: hl.exp(hl.min(v, 30.0)),
            "sigmoid": lambda: 1.0 / (1.0 + hl.exp(-v)),
        }
        if fn not in exprs:
            raise SpecError(f"{name}: unknown unary fn {fn!r} (one of {UNARY_FNS})")
        f = self._new(name, "unary")
        f[x, y, c] = exprs[fn]()
        self.macs += math.prod(t.shape)
        return self._emit(name, f, t.shape)

    def binary(self, name, a, b, fn="add"):
        ta, tb = self.tensors[a], self.tensors[b]
        if ta.shape != tb.shape:
            raise SpecError(f"{name}: binary operands have shapes {ta.shape} and {tb.shape}")
        u, v = ta.func[x, y, c], tb.func[x, y, c]
        exprs = {"add": u + v, "sub": u - v, "mul": u * v, "max": hl.max(u, v)}
        if fn not in exprs:
            raise SpecError(f"{name}: unknown binary fn {fn!r} (one of {BINARY_FNS})")
        f = self._new(name, "binary")
        f[x, y, c] = exprs[fn]
        self.macs += math.prod(ta.shape)
        return self._emit(name, f, ta.shape)

    def bias(self, name, a):
        t = self.tensors[a]
        b = self._weights(f"{name}_b", (t.shape[2],))
        f = self._new(name, "bias")
        f[x, y, c] = t.func[x, y, c] + b(c)
        self.macs += math.prod(t.shape)
        return self._emit(name, f, t.shape)

    def affine_norm(self, name, a):
        """Inference-time batch norm: x * scale(c) + shift(c), both per channel."""
        t = self.tensors[a]
        p = self._weights(f"{name}_p", (t.shape[2], 2))
        f = self._new(name, "affine_norm")
        f[x, y, c] = t.func[x, y, c] * p(c, 0) + p(c, 1)
        self.macs += 2 * math.prod(t.shape)
        return self._emit(name, f, t.shape)

    def softmax(self, name, a, axis="c"):
        """Softmax along ``axis`` ("c" or "x"), in four stages: max, exp, sum, normalize."""
        t = self.tensors[a]
        if axis not in ("c", "x"):
            raise SpecError(f"{name}: softmax axis must be 'c' or 'x', not {axis!r}")
        n = t.shape[2] if axis == "c" else t.shape[0]
        r = hl.RDom([(0, n)], f"{name}_r")
        # The reduced tensors are 2-D: (x, y) for a channel softmax, (y, c) along x.
        u, v = (x, y) if axis == "c" else (y, c)

        def full(rv):
            return t.func[u, v, rv] if axis == "c" else t.func[rv, u, v]

        mx = self._new(f"{name}_max", "softmax")
        mx[u, v] = NEG_INF
        mx[u, v] = hl.max(mx[u, v], full(r.x))
        ex = self._new(f"{name}_exp", "softmax")
        ex[x, y, c] = hl.exp(t.func[x, y, c] - (mx[x, y] if axis == "c" else mx[y, c]))
        sm = self._new(f"{name}_sum", "softmax")
        sm[u, v] = 0.0
        sm[u, v] += ex[u, v, r.x] if axis == "c" else ex[r.x, u, v]
        f = self._new(name, "softmax")
        f[x, y, c] = ex[x, y, c] / (sm[x, y] if axis == "c" else sm[y, c])
        self.macs += 4 * math.prod(t.shape)
        return self._emit(name, f, t.shape)

    def upsample(self, name, a, factor=2):
        """Nearest-neighbour upsampling of x and y by an integer factor."""
        t = self.tensors[a]
        f = self._new(name, "upsample")
        f[x, y, c] = t.func[x / factor, y / factor, c]
        shape = (t.shape[0] * factor, t.shape[1] * factor, t.shape[2])
        self.macs += math.prod(shape)
        return self._emit(name, f, shape)

    def downsample(self, name, a, factor=2):
        """Box-filtered downsampling of x and y by an integer factor."""
        t = self.tensors[a]
        f = self._new(name, "downsample")
        taps = [t.func[x * factor + i, y * factor + j, c] for j in range(factor) for i in range(factor)]
        f[x, y, c] = _add_all(taps) / float(factor * factor)
        shape = (max(1, t.shape[0] // factor), max(1, t.shape[1] // factor), t.shape[2])
        self.macs += math.prod(shape) * factor * factor
        return self._emit(name, f, shape)

    def stencil(self, name, a, axis="x", weights=(1.0, 2.0, 1.0)):
        """A 1-D stencil along x or y with constant taps, centred (blurs, Sobel halves)."""
        t = self.tensors[a]
        if axis not in ("x", "y"):
            raise SpecError(f"{name}: stencil axis must be 'x' or 'y', not {axis!r}")
        o = len(weights) // 2
        f = self._new(name, "stencil")
        taps = [
            hl.f32(wi) * (t.func[x + i - o, y, c] if axis == "x" else t.func[x, y + i - o, c])
            for i, wi in enumerate(weights)
            if wi != 0
        ]
        f[x, y, c] = _add_all(taps)
        self.macs += math.prod(t.shape) * len(taps)
        return self._emit(name, f, t.shape)

    def scale(self, name, a, mul=1.0, add=0.0):
        """out = mul * in + add, with constants."""
        t = self.tensors[a]
        f = self._new(name, "scale")
        f[x, y, c] = t.func[x, y, c] * hl.f32(mul) + hl.f32(add)
        self.macs += math.prod(t.shape)
        return self._emit(name, f, t.shape)

    def transpose(self, name, a):
        t = self.tensors[a]
        f = self._new(name, "transpose")
        f[x, y, c] = t.func[y, x, c]
        self.macs += math.prod(t.shape)
        return self._emit(name, f, (t.shape[1], t.shape[0], t.shape[2]))


def _add_all(terms):
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def build_program(spec: dict) -> Program:
    """Turn a program spec into Halide Funcs with estimates set.

    A spec is ``{"name": str, "inputs": [{"name", "shape"}], "stages": [{"name",
    "op", "args": [tensor names], "attrs": {...}}], "outputs": [tensor names]}``.
    """
    b = ProgramBuilder()
    for inp in spec["inputs"]:
        b.input(inp["name"], inp["shape"])
    for st in spec["stages"]:
        op, name, args = st["op"], st["name"], st.get("args", [])
        if op not in OP_ARITY:
            raise SpecError(f"stage {name!r}: unknown op {op!r}")
        if len(args) != OP_ARITY[op]:
            raise SpecError(f"stage {name!r}: {op} takes {OP_ARITY[op]} operands, got {len(args)}")
        for a in args:
            if a not in b.tensors:
                raise SpecError(f"stage {name!r}: operand {a!r} is not defined before it")
        getattr(b, op)(name, *args, **st.get("attrs", {}))
    outputs, shapes = [], []
    for out in spec["outputs"]:
        t = b.tensors[out]
        t.func.set_estimates([(0, s) for s in t.shape])
        outputs.append(t.func)
        shapes.append(t.shape)
    return Program(
        name=spec["name"],
        pipeline=hl.Pipeline(outputs),
        outputs=outputs,
        output_shapes=shapes,
        op_kinds=b.op_kinds,
        macs=b.macs,
        inputs={n: (p, b.shapes[n]) for n, p in b.params.items()},
    )
