"""A worked example of a perfgraph user program (see README, "Use a trained model on your own program").

List it in the config under programs.user: [examples/sharpen.py]
"""

import halide as hl

OP_KINDS = {"blur_x": "stencil", "blur_y": "stencil", "sharpen": "binary"}

def build():
    """A 3x3 box blur and a sharpening step on a 256x256 float image."""
    img = hl.ImageParam(hl.Float(32), 2, "img")
    x, y = hl.Var("x"), hl.Var("y")
    clamped = hl.BoundaryConditions.repeat_edge(img)
    blur_x, blur_y, sharpen = hl.Func("blur_x"), hl.Func("blur_y"), hl.Func("sharpen")
    blur_x[x, y] = (clamped[x - 1, y] + clamped[x, y] + clamped[x + 1, y]) / 3
    blur_y[x, y] = (blur_x[x, y - 1] + blur_x[x, y] + blur_x[x, y + 1]) / 3
    sharpen[x, y] = 2 * clamped[x, y] - blur_y[x, y]
    img.set_estimates([(0, 256), (0, 256)])
    sharpen.set_estimates([(0, 256), (0, 256)])
    return sharpen
