"""Small Halide generators the tests build as user programs (written to a file per test: Halide's
generator registry is per process, so each test names its own)."""

from __future__ import annotations

import textwrap
from pathlib import Path

SCALED_BLUR = '''
import halide as hl

OP_KINDS = {{"blur_x": "stencil", "blur_y": "stencil"}}


@hl.generator(name="{name}")
class ScaledBlur:
    taps = hl.GeneratorParam(3)

    image = hl.InputBuffer(hl.Float(32), 2)
    gain = hl.InputScalar(hl.Float(32))
    output = hl.OutputBuffer(hl.Float(32), 2)

    def generate(g):
        x, y = hl.Var("x"), hl.Var("y")
        clamped = hl.BoundaryConditions.repeat_edge(g.image)
        blur_x, blur_y = hl.Func("blur_x"), hl.Func("blur_y")
        n = int(g.taps)
        blur_x[x, y] = sum(clamped[x + i - n // 2, y] for i in range(n)) / n
        blur_y[x, y] = sum(blur_x[x, y + i - n // 2] for i in range(n)) / n
        g.output[x, y] = g.gain * blur_y[x, y]
        g.image.set_estimates([(0, 128), (0, 128)])
        {scalar_estimate}
        g.output.set_estimates([(0, 128), (0, 128)])
        if not g.using_autoscheduler():
            blur_x.compute_at(g.output, y).vectorize(x, 8)
            g.output.vectorize(x, 8).parallel(y)
'''


def write_generator(path: Path, name: str, scalar_estimate: bool = True) -> Path:
    """A two-stage blur generator: a GeneratorParam (``taps``), an InputScalar (``gain``) and a
    manual schedule; without ``scalar_estimate`` its scalar input has no estimate."""
    estimate = "g.gain.set_estimate(2.0)" if scalar_estimate else "pass"
    path.write_text(textwrap.dedent(SCALED_BLUR).format(name=name, scalar_estimate=estimate))
    return path
