"""Where a classifier looked: Grad-CAM on its last convolutional features.

For the built-in CNNs, the pretrained backbones and fine-tuned uploads alike, the map is the
features of the last layer whose output is still an image ([N, h, w, D]), weighted by the gradient
of the predicted class's probability averaged over the map, summed and clipped at zero (Selvaraju
et al., 2017), then scaled to 0..1 per image. The patch recipes draw their own patch-score maps
(``patch.predict_with_heatmaps``); both are painted the same way (``overlay_png``).
"""

import io

import keras
import numpy as np
import tensorflow as tf
from PIL import Image


class NotExplainable(ValueError):
    """A model with no image-shaped features to explain (a plain dense network)."""


def feature_tensor(model):
    """The output, in ``model``'s own graph, of its last layer that still has image shape. A nested
    model (a backbone, an uploaded base) counts as one layer: its call in this graph is read from
    its inbound node, not from its own graph."""
    for layer in reversed(model.layers):
        nodes = getattr(layer, "_inbound_nodes", None) or []
        if not nodes or isinstance(layer, keras.layers.InputLayer):
            continue
        outputs = nodes[-1].output_tensors
        if len(outputs) == 1 and len(outputs[0].shape) == 4:
            return outputs[0]
    raise NotExplainable(f"{model.name} has no layer with image-shaped output to explain.")


def _split(model):
    """(features, head): ``features(x)`` the image features, ``head(features)`` the probabilities,
    two halves of ``model``'s graph (the gradient is taken at the seam: a functional model's
    intermediate output is not the tensor its later layers read). Where the image features sit
    inside a nested model (a fine-tuned upload's base that ends in a vector; the recipe search's
    small CNN behind its ``Resizing``), the halves are cut inside it: what comes before it in
    ``model`` feeds it, and what comes after it (the portal's fine-tuning head: pooling, ``logits``,
    ``probs``) is applied to its output."""
    try:
        t = feature_tensor(model)
        return keras.Model(model.inputs, t), keras.Model(t, model.outputs[0])
    except NotExplainable:
        base = next((layer for layer in reversed(model.layers) if isinstance(layer, keras.Model)), None)
        if base is None:
            raise
    node = base._inbound_nodes[-1]
    before = keras.Model(model.inputs, node.input_tensors[0])
    t = feature_tensor(base)
    inner_features, inner_head = keras.Model(base.inputs, t), keras.Model(t, base.outputs[0])
    if node.output_tensors[0] is model.outputs[0]:
        return (lambda x, training=False: inner_features(before(x, training=False), training=False)), inner_head
    if not {"logits", "probs"} <= {layer.name for layer in model.layers}:
        raise NotExplainable(f"{model.name}: nothing known follows its nested {base.name}.")
    logits, probs = model.get_layer("logits"), model.get_layer("probs")

    def head(feats, training=False):
        out = inner_head(feats, training=training)
        if len(out.shape) == 4:
            out = tf.reduce_mean(out, axis=(1, 2))
        return probs(logits(out))

    return (lambda x, training=False: inner_features(before(x, training=False), training=False)), head


def gradcam_fn(model):
    """A traced function: raw images [N, S, S, C] → (probabilities [N, K], maps [N, h, w] in 0..1)
    for the class each image is predicted as."""
    features, head = _split(model)

    @tf.function(reduce_retracing=True)
    def run(x):
        feats = tf.cast(features(x, training=False), tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(feats)
            probs = head(feats, training=False)
            score = tf.gather(tf.cast(probs, tf.float32), tf.argmax(probs, -1), batch_dims=1)
        grads = tape.gradient(score, feats)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * feats, -1))
        cam = cam / (tf.reduce_max(cam, axis=(1, 2), keepdims=True) + 1e-9)
        return probs, cam

    return run


def overlay_png(grey, heat, *, optimize=True):
    """A grey image [H, W] (0..255) with ``heat`` [H, W] (0..1) painted red over it, as PNG bytes
    (``optimize``: smaller, for what is stored; a served answer takes the quick encoding)."""
    rgb = np.stack([grey * (1 - heat) + 255 * heat, grey * (1 - heat), grey * (1 - heat)], -1)
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(
        buf, format="PNG", **({"optimize": True} if optimize else {"compress_level": 1})
    )
    return buf.getvalue()


def upsample(m, shape):
    """A map [h, w] resized (bilinear) to ``shape`` (H, W)."""
    return np.asarray(tf.image.resize(np.asarray(m, np.float32)[..., None], shape, method="bilinear"))[..., 0]


def predict_with_gradcam(model, ds, *, width=256):
    """One pass over ``ds`` (unshuffled): (y_true, probabilities, PNG per image, map per image). The
    PNG is the model's input in grey at ``width`` px with its Grad-CAM in red; the map is the raw
    [h, w] Grad-CAM in 0..1 (the model's input is the whole image squashed to a square, so the map's
    cells cover the photograph evenly: the localization score reads it so)."""
    run = gradcam_fn(model)
    ys, probs, pngs, maps = [], [], [], []
    for x, y in ds:
        p, cams = run(x)
        small = np.asarray(tf.image.resize(x, (width, width), antialias=True)).mean(-1)
        for grey, cam in zip(small, np.asarray(cams)):
            maps.append(cam)
            pngs.append(overlay_png(grey, np.clip(upsample(cam, grey.shape), 0, 1)))
        probs.append(np.asarray(p, np.float64))
        ys.append(np.asarray(y))
    if not ys:
        return np.zeros(0, np.int64), np.zeros((0, model.outputs[0].shape[-1])), [], []
    return np.concatenate(ys).astype(np.int64), np.concatenate(probs), pngs, maps


def _patch_map_tensor(model):
    """The patch-score map [N, h, w, 1] a patch recipe's score is pooled from (the input of its
    ``TopKMean``), or None for a classifier."""
    for layer in reversed(model.layers):
        if type(layer).__name__ == "TopKMean" and getattr(layer, "_inbound_nodes", None):
            return layer._inbound_nodes[-1].input_tensors[0]
    return None


def explain_fn(model):
    """A function: raw images [N, S, S, C] → maps [N, h, w] in 0..1 per image, where ``model`` looked:
    a patch recipe's own patch-score map (the anomaly detector's distances, the classifier head's
    scores), else Grad-CAM for the predicted class."""
    patch = _patch_map_tensor(model)
    if patch is not None:
        mapper = keras.Model(model.inputs, patch)

        @tf.function(reduce_retracing=True)
        def run(x):
            m = tf.cast(mapper(x, training=False), tf.float32)[..., 0]
            lo = tf.reduce_min(m, axis=(1, 2), keepdims=True)
            hi = tf.reduce_max(m, axis=(1, 2), keepdims=True)
            return (m - lo) / (hi - lo + 1e-9)

        return lambda x: np.asarray(run(x))
    cam = gradcam_fn(model)
    return lambda x: np.asarray(cam(x)[1])


def heatmap_pngs(x, maps, *, width=256):
    """PNG per image: the model's input [N, S, S, C] in grey at ``width`` px, its map in red."""
    small = np.asarray(tf.image.resize(np.asarray(x, np.float32), (width, width), antialias=True)).mean(-1)
    return [overlay_png(grey, np.clip(upsample(m, grey.shape), 0, 1), optimize=False) for grey, m in zip(small, maps)]
