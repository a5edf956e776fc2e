"""Layer shapes of real networks (ResNet-18/50, MobileNet-V2, BERT-base; origin ``zoo``):
the TVM side's out-of-distribution test set, as specs for :mod:`pipelines.tvm.ops`."""

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
