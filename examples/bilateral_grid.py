"""A worked example of a Halide generator as a perfgraph program: a bilateral filter on a
bilateral grid (Chen, Paris, Durand 2007), with a GeneratorParam, a scalar input and a
hand-written CPU schedule.

    perfgraph tune examples/bilateral_grid.py --model results/models/gatv2
    perfgraph tune examples/bilateral_grid.py -p s_sigma=16 --model results/models/gatv2

perfgraph builds it with an autoscheduler named, so the schedule under ``else:`` below is
skipped while candidates are drawn; ``tune`` then builds it once more without one and times
that schedule as the ``manual`` pick. List it in a config under programs.user as
``examples/bilateral_grid.py`` (or ``{source: examples/bilateral_grid.py, generator_params:
{s_sigma: 16}}``).
"""

import halide as hl

OP_KINDS = {"blur_z": "stencil", "blur_x": "stencil", "blur_y": "stencil"}

#: The estimates the autoschedulers plan for: a 768x512 grey image, range sigma 0.1.
WIDTH, HEIGHT, R_SIGMA = 768, 512, 0.1


@hl.generator(name="perfgraph_bilateral_grid")
class BilateralGrid:
    s_sigma = hl.GeneratorParam(8)  # the grid's spatial cell, in pixels

    image = hl.InputBuffer(hl.Float(32), 2)
    r_sigma = hl.InputScalar(hl.Float(32))  # the grid's range cell, in intensity
    output = hl.OutputBuffer(hl.Float(32), 2)

    def generate(g):
        x, y, z, c = hl.Var("x"), hl.Var("y"), hl.Var("z"), hl.Var("c")
        s = int(g.s_sigma)
        clamped = hl.BoundaryConditions.repeat_edge(g.image)

        # Splat: each grid cell sums the intensities (c = 0) and the counts (c = 1) of its
        # s x s pixels, binned by intensity.
        r = hl.RDom([(0, s), (0, s)])
        pixel = hl.clamp(clamped[x * s + r.x - s // 2, y * s + r.y - s // 2], 0.0, 1.0)
        bin_of = hl.cast(hl.Int(32), pixel / g.r_sigma + 0.5)
        histogram = hl.Func("histogram")
        histogram[x, y, z, c] = 0.0
        histogram[x, y, bin_of, c] += hl.select(c == 0, pixel, 1.0)

        # Blur the grid: a 5-tap binomial in each of its three dimensions.
        def binomial(f):
            return f(-2) + 4.0 * f(-1) + 6.0 * f(0) + 4.0 * f(1) + f(2)

        blur_z, blur_x, blur_y = hl.Func("blur_z"), hl.Func("blur_x"), hl.Func("blur_y")
        blur_z[x, y, z, c] = binomial(lambda d: histogram[x, y, z + d, c])
        blur_x[x, y, z, c] = binomial(lambda d: blur_z[x + d, y, z, c])
        blur_y[x, y, z, c] = binomial(lambda d: blur_x[x, y + d, z, c])

        # Slice: trilinear interpolation of the blurred grid at each pixel, then normalize.
        value = hl.clamp(g.image[x, y], 0.0, 1.0)
        zv = value / g.r_sigma
        zi = hl.cast(hl.Int(32), zv)
        zf = zv - zi
        xf = hl.cast(hl.Float(32), x % s) / s
        yf = hl.cast(hl.Float(32), y % s) / s
        xi, yi = x / s, y / s

        def at(dx, dy, dz):
            return blur_y[xi + dx, yi + dy, zi + dz, c]

        interpolated = hl.Func("interpolated")
        interpolated[x, y, c] = hl.lerp(
            hl.lerp(hl.lerp(at(0, 0, 0), at(1, 0, 0), xf), hl.lerp(at(0, 1, 0), at(1, 1, 0), xf), yf),
            hl.lerp(hl.lerp(at(0, 0, 1), at(1, 0, 1), xf), hl.lerp(at(0, 1, 1), at(1, 1, 1), xf), yf),
            zf,
        )
        g.output[x, y] = interpolated[x, y, 0] / interpolated[x, y, 1]

        g.image.set_estimates([(0, WIDTH), (0, HEIGHT)])
        g.r_sigma.set_estimate(R_SIGMA)
        g.output.set_estimates([(0, WIDTH), (0, HEIGHT)])

        if g.using_autoscheduler():
            return
        # The hand-written CPU schedule: the grid's stages computed whole, each parallel over
        # its slowest dimension and vectorized along x; the splat computed per row of blur_z.
        vec = g.natural_vector_size(hl.Float(32))
        blur_z.compute_root().reorder(c, z, x, y).parallel(y).vectorize(x, vec)
        histogram.compute_at(blur_z, y)
        histogram.update().reorder(c, r.x, r.y, x, y)
        blur_x.compute_root().reorder(c, x, y, z).parallel(z).vectorize(x, vec)
        blur_y.compute_root().reorder(c, x, y, z).parallel(z).vectorize(x, vec)
        g.output.compute_root().parallel(y).vectorize(x, vec)
