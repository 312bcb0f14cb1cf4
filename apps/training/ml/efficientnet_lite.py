"""EfficientNet-Lite0 in Keras (no squeeze-excite, ReLU6, fixed stem and head), and loading the
lukemelas-style PyTorch state dict into it (every tensor used exactly once)."""

import numpy as np

# (kernel, stride, expand, out, repeats) of the seven stages; Lite: no squeeze-excite, ReLU6
STAGES = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
]
EPS = 1e-3


def build(input_shape=(224, 224, 3), include_top=True, name="efficientnet_lite0"):
    import keras
    from keras import layers

    def bn(x, n):
        return layers.BatchNormalization(epsilon=EPS, momentum=0.99, name=n)(x)

    inp = keras.Input(input_shape, name="image")
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inp)
    x = layers.ReLU(6.0, name="stem_relu")(bn(x, "stem_bn"))
    cin = 32
    b = 0
    for k, s, e, cout, r in STAGES:
        for i in range(r):
            stride = s if i == 0 else 1
            p = f"block{b}_"
            y = x
            if e != 1:
                y = layers.Conv2D(cin * e, 1, padding="same", use_bias=False, name=p + "expand_conv")(y)
                y = layers.ReLU(6.0, name=p + "expand_relu")(bn(y, p + "expand_bn"))
            y = layers.DepthwiseConv2D(k, strides=stride, padding="same", use_bias=False, name=p + "dwconv")(y)
            y = layers.ReLU(6.0, name=p + "dw_relu")(bn(y, p + "dw_bn"))
            y = layers.Conv2D(cout, 1, padding="same", use_bias=False, name=p + "project_conv")(y)
            y = bn(y, p + "project_bn")
            if stride == 1 and cin == cout:
                y = layers.Add(name=p + "add")([x, y])
            x = y
            cin = cout
            b += 1
    x = layers.Conv2D(1280, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = layers.ReLU(6.0, name="top_relu")(bn(x, "top_bn"))
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(1000, name="predictions")(x)
    return keras.Model(inp, x, name=name)


def _conv(w):  # torch (out, in, kh, kw) -> keras (kh, kw, in, out)
    return np.transpose(w, (2, 3, 1, 0))


def _dw(w):  # torch (c, 1, kh, kw) -> keras (kh, kw, c, 1)
    return np.transpose(w, (2, 3, 0, 1))


def load_state_dict(model, sd):
    """Copy the PyTorch tensors into ``model``; every tensor is used exactly once."""
    used = set()

    def take(key):
        used.add(key)
        return sd[key]

    def set_bn(layer, p):
        model.get_layer(layer).set_weights([take(p + s) for s in (".weight", ".bias", ".running_mean", ".running_var")])
        used.add(p + ".num_batches_tracked")

    model.get_layer("stem_conv").set_weights([_conv(take("_conv_stem.weight"))])
    set_bn("stem_bn", "_bn0")
    b = 0
    for _k, _s, e, _cout, r in STAGES:
        for _i in range(r):
            p, t = f"block{b}_", f"_blocks.{b}."
            if e != 1:
                model.get_layer(p + "expand_conv").set_weights([_conv(take(t + "_expand_conv.weight"))])
                set_bn(p + "expand_bn", t + "_bn0")
            model.get_layer(p + "dwconv").set_weights([_dw(take(t + "_depthwise_conv.weight"))])
            set_bn(p + "dw_bn", t + "_bn1")
            model.get_layer(p + "project_conv").set_weights([_conv(take(t + "_project_conv.weight"))])
            set_bn(p + "project_bn", t + "_bn2")
            b += 1
    model.get_layer("top_conv").set_weights([_conv(take("_conv_head.weight"))])
    set_bn("top_bn", "_bn1")
    try:
        model.get_layer("predictions").set_weights([take("_fc.weight").T, take("_fc.bias")])
    except ValueError:
        used.update({"_fc.weight", "_fc.bias"})
    left = set(sd) - used
    if left:
        raise ValueError(f"unused tensors: {sorted(left)[:5]}")
    return model
