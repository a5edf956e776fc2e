"""Hand-written real programs: the out-of-distribution test set.

Each is written in the same spec form as the random programs and built by the
same builder, so it flows through every stage unchanged; the layer shapes are
those of the real networks and image pipelines they are taken from.
"""

from __future__ import annotations


def _st(name, op, args, **attrs):
    return {"name": name, "op": op, "args": list(args), "attrs": attrs}


def resnet_basic_block(w=56, ch=32):
    """ResNet-18 basic block: conv3x3-BN-ReLU-conv3x3-BN, residual add, ReLU."""
    return {
        "name": "resnet_basic_block",
        "inputs": [{"name": "input", "shape": [w, w, ch]}],
        "stages": [
            _st("conv1", "conv2d", ["input"], k=3, cout=ch, form="rdom"),
            _st("bn1", "affine_norm", ["conv1"]),
            _st("relu1", "unary", ["bn1"], fn="relu"),
            _st("conv2", "conv2d", ["relu1"], k=3, cout=ch, form="rdom"),
            _st("bn2", "affine_norm", ["conv2"]),
            _st("residual", "binary", ["bn2", "input"], fn="add"),
            _st("relu2", "unary", ["residual"], fn="relu"),
        ],
        "outputs": ["relu2"],
    }


def mobilenet_v2_block(w=28, ch=32, expand=6):
    """MobileNet-V2 inverted residual: 1x1 expand, depthwise 3x3, 1x1 project, residual."""
    hidden = ch * expand
    return {
        "name": "mobilenet_v2_block",
        "inputs": [{"name": "input", "shape": [w, w, ch]}],
        "stages": [
            _st("expand", "conv2d", ["input"], k=1, cout=hidden, form="rdom"),
            _st("expand_bn", "affine_norm", ["expand"]),
            _st("expand_relu6", "unary", ["expand_bn"], fn="relu6"),
            _st("dw", "depthwise_conv2d", ["expand_relu6"], k=3),
            _st("dw_bn", "affine_norm", ["dw"]),
            _st("dw_relu6", "unary", ["dw_bn"], fn="relu6"),
            _st("project", "conv2d", ["dw_relu6"], k=1, cout=ch, form="unrolled"),
            _st("project_bn", "affine_norm", ["project"]),
            _st("residual", "binary", ["project_bn", "input"], fn="add"),
        ],
        "outputs": ["residual"],
    }


def attention_head(tokens=128, d_model=128, d_head=64):
    """One self-attention head: Q, K, V projections, softmax(Q K^T) V."""
    return {
        "name": "attention_head",
        # (feature, token, batch=1), so a dense layer maps features of every token.
        "inputs": [{"name": "input", "shape": [d_model, tokens, 1]}],
        "stages": [
            _st("q", "fully_connected", ["input"], cout=d_head),
            _st("k", "fully_connected", ["input"], cout=d_head),
            _st("v", "fully_connected", ["input"], cout=d_head),
            _st("q_scaled", "scale", ["q"], mul=d_head**-0.5),
            _st("k_t", "transpose", ["k"]),  # (token, feature)
            _st("scores", "matmul", ["q_scaled", "k_t"]),  # (token_j, token_i)
            _st("probs", "softmax", ["scores"], axis="x"),
            _st("context", "matmul", ["probs", "v"]),  # (feature, token_i)
        ],
        "outputs": ["context"],
    }


def separable_blur(w=1024, ch=3):
    """Halide's classic 3x3 box blur as two 1-D passes."""
    return {
        "name": "separable_blur",
        "inputs": [{"name": "input", "shape": [w, w, ch]}],
        "stages": [
            _st("blur_x", "stencil", ["input"], axis="x", weights=[1 / 3, 1 / 3, 1 / 3]),
            _st("blur_y", "stencil", ["blur_x"], axis="y", weights=[1 / 3, 1 / 3, 1 / 3]),
        ],
        "outputs": ["blur_y"],
    }


def unsharp_mask(w=1024, ch=3, amount=1.5):
    """Unsharp mask: a 5-tap Gaussian blur, the detail layer, scaled back in."""
    g = [1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16]
    return {
        "name": "unsharp_mask",
        "inputs": [{"name": "input", "shape": [w, w, ch]}],
        "stages": [
            _st("blur_x", "stencil", ["input"], axis="x", weights=g),
            _st("blur_y", "stencil", ["blur_x"], axis="y", weights=g),
            _st("detail", "binary", ["input", "blur_y"], fn="sub"),
            _st("detail_scaled", "scale", ["detail"], mul=amount),
            _st("sharpened", "binary", ["input", "detail_scaled"], fn="add"),
            _st("clamped", "unary", ["sharpened"], fn="relu"),
        ],
        "outputs": ["clamped"],
    }


def harris_corners(w=768):
    """Harris corner response: Sobel gradients, structure tensor, box filter, det - k tr^2."""
    return {
        "name": "harris_corners",
        "inputs": [{"name": "input", "shape": [w, w, 1]}],
        "stages": [
            _st("sobel_x_h", "stencil", ["input"], axis="x", weights=[-1, 0, 1]),
            _st("ix", "stencil", ["sobel_x_h"], axis="y", weights=[1, 2, 1]),
            _st("sobel_y_h", "stencil", ["input"], axis="x", weights=[1, 2, 1]),
            _st("iy", "stencil", ["sobel_y_h"], axis="y", weights=[-1, 0, 1]),
            _st("ixx", "binary", ["ix", "ix"], fn="mul"),
            _st("iyy", "binary", ["iy", "iy"], fn="mul"),
            _st("ixy", "binary", ["ix", "iy"], fn="mul"),
            _st("sxx_x", "stencil", ["ixx"], axis="x", weights=[1, 1, 1]),
            _st("sxx", "stencil", ["sxx_x"], axis="y", weights=[1, 1, 1]),
            _st("syy_x", "stencil", ["iyy"], axis="x", weights=[1, 1, 1]),
            _st("syy", "stencil", ["syy_x"], axis="y", weights=[1, 1, 1]),
            _st("sxy_x", "stencil", ["ixy"], axis="x", weights=[1, 1, 1]),
            _st("sxy", "stencil", ["sxy_x"], axis="y", weights=[1, 1, 1]),
            _st("det_a", "binary", ["sxx", "syy"], fn="mul"),
            _st("det_b", "binary", ["sxy", "sxy"], fn="mul"),
            _st("det", "binary", ["det_a", "det_b"], fn="sub"),
            _st("trace", "binary", ["sxx", "syy"], fn="add"),
            _st("trace2", "binary", ["trace", "trace"], fn="mul"),
            _st("trace2_k", "scale", ["trace2"], mul=0.04),
            _st("response", "binary", ["det", "trace2_k"], fn="sub"),
        ],
        "outputs": ["response"],
    }


def conv_pool_classifier(w=32, ch=16, classes=10):
    """A LeNet-style tail: conv, ReLU, 2x2 max pool, dense layer, bias, channel softmax."""
    return {
        "name": "conv_pool_classifier",
        "inputs": [{"name": "input", "shape": [w, w, ch]}],
        "stages": [
            _st("conv", "conv2d", ["input"], k=5, cout=32, form="unrolled"),
            _st("relu", "unary", ["conv"], fn="relu"),
            _st("pool", "max_pool", ["relu"], k=2, stride=2),
            _st("fc", "fully_connected", ["pool"], cout=classes),
            _st("fc_bias", "bias", ["fc"]),
            _st("probs", "softmax", ["fc_bias"], axis="c"),
        ],
        "outputs": ["probs"],
    }


#: name -> (spec, description)
ZOO = {
    f.__name__: (f(), (f.__doc__ or "").strip())
    for f in (
        resnet_basic_block,
        mobilenet_v2_block,
        attention_head,
        separable_blur,
        unsharp_mask,
        harris_corners,
        conv_pool_classifier,
    )
}
