"""Keras layers the portal's own recipes put inside a model, registered so that a saved ``.keras``
file loads with ``safe_mode=True`` wherever this module is imported (training, the gate, serving,
monitoring; a bundle ships it as ``portal_layers.py`` beside its server). Only Keras and TensorFlow
are imported here, so the file works on its own.

- ``ObjectCrop``: the part found on a uniform background, turned so its principal axis lies
  horizontally with its heavier end on the left, scaled to fill a fixed rectangle: a full-resolution
  view of the object whatever its angle, done inside the model so that serving sends raw photographs.
- ``TopKMean``: the mean of the k highest values of a score map (an image is defective when a few of
  its patches are).
- ``ThresholdedBinary``: one logit → two class probabilities, shifted so that 0.5 falls at the decision
  threshold tuned on the validation split (evaluation, the gate, serving and exports use one rule).
"""

import keras
import tensorflow as tf

PACKAGE = "mlportal"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ObjectCrop(keras.layers.Layer):
    def __init__(self, width=768, height=224, threshold=40.0, margin=0.08, pool=4, **kwargs):
        super().__init__(**kwargs)
        self.width, self.height = int(width), int(height)
        self.threshold, self.margin, self.pool = float(threshold), float(margin), int(pool)

    def get_config(self):
        return {
            **super().get_config(),
            "width": self.width,
            "height": self.height,
            "threshold": self.threshold,
            "margin": self.margin,
            "pool": self.pool,
        }

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def call(self, images):
        return tf.map_fn(
            self._one, images, fn_output_signature=tf.TensorSpec([self.height, self.width, None], images.dtype)
        )

    def transform(self, img):
        """(8 projective coefficients mapping output to input pixels, background level) for one image."""
        pool = self.pool
        H, W = tf.shape(img)[0], tf.shape(img)[1]
        g = tf.reduce_mean(img, -1)
        border = tf.concat(
            [
                tf.reshape(g[:4], [-1]),
                tf.reshape(g[-4:], [-1]),
                tf.reshape(g[:, :4], [-1]),
                tf.reshape(g[:, -4:], [-1]),
            ],
            0,
        )
        bg = tf.sort(border)[tf.size(border) // 2]
        small = tf.nn.avg_pool2d(g[None, :, :, None], pool, pool, "VALID")[0, :, :, 0]
        m = tf.cast(tf.abs(small - bg) > self.threshold, tf.float32)
        total = tf.reduce_sum(m)
        sh = tf.shape(small)
        ys = (tf.cast(tf.range(sh[0]), tf.float32) + 0.5) * pool
        xs = (tf.cast(tf.range(sh[1]), tf.float32) + 0.5) * pool
        Y, X = tf.meshgrid(ys, xs, indexing="ij")
        safe = tf.maximum(total, 1.0)
        cy, cx = tf.reduce_sum(m * Y) / safe, tf.reduce_sum(m * X) / safe
        dy, dx = Y - cy, X - cx
        mu20, mu02 = tf.reduce_sum(m * dx * dx) / safe, tf.reduce_sum(m * dy * dy) / safe
        mu11 = tf.reduce_sum(m * dx * dy) / safe
        theta = 0.5 * tf.atan2(2 * mu11, mu20 - mu02)
        c, s = tf.cos(theta), tf.sin(theta)
        along = dx * c + dy * s
        lo = tf.reduce_min(tf.where(m > 0, along, 1e9))
        hi = tf.reduce_max(tf.where(m > 0, along, -1e9))
        third = (hi - lo) / 3
        left = tf.reduce_sum(m * tf.cast(along < lo + third, tf.float32))
        right = tf.reduce_sum(m * tf.cast(along > hi - third, tf.float32))
        mid = (lo + hi) / 2
        ccx, ccy = cx + mid * c, cy + mid * s
        flip = tf.where(right > left, -1.0, 1.0)  # the heavier end to the left
        c, s = c * flip, s * flip
        fw, fh = float(self.width), float(self.height)
        found = total > 8
        scale = tf.where(found, (hi - lo + pool) * (1 + 2 * self.margin) / fw, tf.cast(W, tf.float32) / fw)
        c, s = tf.where(found, c, 1.0), tf.where(found, s, 0.0)
        ccx = tf.where(found, ccx, tf.cast(W, tf.float32) / 2)
        ccy = tf.where(found, ccy, tf.cast(H, tf.float32) / 2)
        a0, a1, b0, b1 = scale * c, -scale * s, scale * s, scale * c
        a2 = ccx - (a0 * fw / 2 + a1 * fh / 2)
        b2 = ccy - (b0 * fw / 2 + b1 * fh / 2)
        return tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0]), bg

    def _one(self, img):
        t, bg = self.transform(img)
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=img[None],
            transforms=t[None],
            output_shape=[self.height, self.width],
            fill_value=bg,
            interpolation="BILINEAR",
            fill_mode="CONSTANT",
        )
        return out[0]


def scale_for_backbone(x, scale):
    """0..255 float images (1 or 3 channels) → a backbone's input: "lite" (x − 127) / 128 (EfficientNet-Lite),
    "caffe" BGR with the ImageNet means subtracted (ResNet50), "raw" unchanged (the model scales itself)."""
    if x.shape[-1] == 1:
        x = tf.concat([x, x, x], axis=-1)
    if scale == "lite":
        return (x - 127.0) / 128.0
    if scale == "caffe":
        return x[..., ::-1] - tf.constant([103.939, 116.779, 123.68])
    return x


@keras.saving.register_keras_serializable(package=PACKAGE)
class BackboneInput(keras.layers.Layer):
    """``scale_for_backbone`` as a layer."""

    def __init__(self, scale="lite", **kwargs):
        super().__init__(**kwargs)
        self.scale = str(scale)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)

    def call(self, images):
        return scale_for_backbone(images, self.scale)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MirrorRows(keras.layers.Layer):
    """Feature maps [N, h, w, C] upside down (the object crop's mirror image about its axis)."""

    def call(self, maps):
        return tf.reverse(maps, axis=[1])


@keras.saving.register_keras_serializable(package=PACKAGE)
class TopKMean(keras.layers.Layer):
    def __init__(self, k=10, **kwargs):
        super().__init__(**kwargs)
        self.k = int(k)

    def get_config(self):
        return {**super().get_config(), "k": self.k}

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def call(self, scores):
        """[N, h, w, C] → [N, C]: per channel, the mean of its k highest values."""
        shape = tf.shape(scores)
        flat = tf.transpose(tf.reshape(scores, [shape[0], -1, shape[3]]), [0, 2, 1])
        k = tf.minimum(self.k, tf.shape(flat)[2])
        return tf.reduce_mean(tf.math.top_k(flat, k).values, -1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ThresholdedBinary(keras.layers.Layer):
    """score → two class probabilities: P(``positive``) = sigmoid((score − threshold) / scale)."""

    def __init__(self, threshold=0.0, positive=1, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.threshold, self.positive, self.scale = float(threshold), int(positive), float(scale) or 1.0

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold, "positive": self.positive, "scale": self.scale}

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2)

    def call(self, logit):
        p = tf.sigmoid((tf.cast(logit, tf.float32) - self.threshold) / self.scale)
        pair = [1.0 - p, p] if self.positive == 1 else [p, 1.0 - p]
        return tf.concat(pair, axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PatchDistance(keras.layers.Layer):
    """Patch features [N, h, w, D] → each patch's distance to its nearest neighbour in a memory bank of
    normal patches [N, h, w, 1] (the anomaly detector's score map; the bank is a non-trainable weight)."""

    def __init__(self, bank_size, depth, **kwargs):
        super().__init__(**kwargs)
        self.bank_size, self.depth = int(bank_size), int(depth)
        self.bank = self.add_weight(
            shape=(self.bank_size, self.depth), initializer="zeros", trainable=False, name="bank"
        )

    def get_config(self):
        return {**super().get_config(), "bank_size": self.bank_size, "depth": self.depth}

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)

    def call(self, features):
        shape = tf.shape(features)
        flat = tf.reshape(tf.cast(features, tf.float32), [-1, self.depth])
        bank = tf.cast(self.bank, tf.float32)
        d2 = (
            tf.reduce_sum(flat * flat, 1, keepdims=True)
            - 2.0 * tf.matmul(flat, bank, transpose_b=True)
            + tf.reduce_sum(bank * bank, 1)[None, :]
        )
        nearest = tf.sqrt(tf.maximum(tf.reduce_min(d2, 1), 0.0))
        return tf.reshape(nearest, [shape[0], shape[1], shape[2], 1])
