"""The patch-feature defect classifier: a pretrained backbone, frozen, reads the object at full
resolution (``ObjectCrop``); a small head scores each patch of its stride-8 and stride-16 feature
maps; an image's score is the mean of its k highest patch scores, so one scratch is enough.

Training extracts the patch features of every image once (the slow part, reported batch by batch),
then fits only the head on them, epoch by epoch, with the labeled images of every class: the
defects teach it what to look for, the good ones what to ignore. For two classes the decision
threshold is tuned on the validation split and built into the model (``ThresholdedBinary``), so
evaluation, the gate, serving and the exports apply one rule.
"""
import time

import numpy as np

from .config import TrainConfig


def extractor(cfg: TrainConfig, weights_path):
    """Raw 0..255 images [N, S, S, C] → patch features [N, h, w, D] at stride 8 (a Keras model)."""
    import keras
    from keras import layers

    from . import backbones
    from .layers import BackboneInput, ObjectCrop

    inputs = keras.Input((cfg.image_size, cfg.image_size, cfg.channels), name="image")
    if cfg.crop == "object":
        x = ObjectCrop(cfg.crop_width, cfg.crop_height, name="object_crop")(inputs)
        shape = (cfg.crop_height, cfg.crop_width, 3)
    else:
        x, shape = inputs, (cfg.image_size, cfg.image_size, 3)
    net = backbones.build_backbone(cfg.backbone, shape, weights_path)
    taps = keras.Model(net.inputs, backbones.feature_taps(net, cfg.backbone), name="backbone")
    taps.trainable = False
    scaled = BackboneInput(cfg.backbone, name="backbone_input")(x)
    fine, coarse = taps(scaled, training=False)
    fine = layers.AveragePooling2D(3, 1, padding="same", name="fine_local")(fine)
    coarse = layers.AveragePooling2D(3, 1, padding="same", name="coarse_local")(coarse)
    coarse = layers.UpSampling2D(2, interpolation="bilinear", name="coarse_up")(coarse)
    return keras.Model(inputs, layers.Concatenate(name="patch_features")([fine, coarse]), name="patch_extractor")


def head(depth, num_outputs, *, top_k, dropout, mean, std):
    """Patch features → one score per class channel (pooled over the top-k patches)."""
    import keras
    from keras import layers

    from .layers import TopKMean

    inp = keras.Input((None, None, depth), name="patch_features")
    x = layers.Normalization(mean=mean, variance=np.square(std), name="standardize")(inp)
    x = layers.Conv2D(64, 1, activation="relu", name="patch_hidden")(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    x = layers.Conv2D(num_outputs, 1, name="patch_scores", dtype="float32")(x)
    return keras.Model(inp, TopKMean(top_k, name="top_k_mean")(x), name="patch_head")


def extract(model, ds, *, on_batch=None, should_stop=None, total=None):
    """(features float16 [N, h, w, D], labels) over ``ds``; None when stopped."""
    feats, labels = [], []
    last = 0.0
    for i, (x, y) in enumerate(ds):
        feats.append(np.asarray(model(x, training=False), dtype=np.float16))
        labels.append(np.asarray(y))
        now = time.monotonic()
        if now - last > 1.0:
            last = now
            if on_batch:
                on_batch(0, i + 1)
            if should_stop and should_stop():
                return None
    if not feats:
        return np.zeros((0,)), np.zeros((0,), np.int64)
    return np.concatenate(feats), np.concatenate(labels).astype(np.int64)


def auc(positive, scores):
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return 0.5
    return float((pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean())


def best_threshold(scores, positive):
    """The cut on validation scores with the best accuracy (midway between neighbours; ties: the middle)."""
    s = np.sort(np.unique(scores))
    if len(s) < 2:
        return 0.0
    cuts = np.concatenate([[s[0] - 1e-3], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-3]])
    accs = np.array([((scores >= c) == positive).mean() for c in cuts])
    best = np.flatnonzero(accs == accs.max())
    return float(cuts[best[len(best) // 2]])


def fit_patch_model(cfg: TrainConfig, datasets, train_labels, classes, *, weights_path, class_weight=None,
                    on_epoch=None, on_batch=None, should_stop=None, log=print):
    """Extract features, fit the head, tune the threshold. Returns a dict with the full ``model`` (raw
    images → class probabilities), ``history``, ``cancelled``, ``best_epoch``, ``threshold``."""
    import keras

    from . import fit as fitmod
    from .layers import ThresholdedBinary

    k = len(classes)
    ext = extractor(cfg, weights_path)
    started = time.monotonic()
    extracted = {}
    for name, ds in datasets.items():
        if ds is None:
            continue
        out = extract(ext, ds, on_batch=on_batch, should_stop=should_stop)
        if out is None:
            return {"cancelled": True, "history": {}, "model": None}
        extracted[name] = out
        log(f"patch features of the {name} split: {out[0].shape[0]} images × {out[0].shape[1]}×{out[0].shape[2]} "
            f"patches × {out[0].shape[3]} ({time.monotonic() - started:.0f} s)")
    xtr, ytr = extracted["train"]
    xval, yval = extracted.get("val", (None, None))
    flat = xtr.reshape(-1, xtr.shape[-1]).astype(np.float32)
    mean, std = flat.mean(0), flat.std(0) + 1e-3
    binary = k == 2
    if binary:
        counts = np.bincount(np.asarray(train_labels), minlength=2)
        positive = int(np.argmin(counts)) if counts[0] != counts[1] else 1
    net = head(xtr.shape[-1], 1 if binary else k, top_k=cfg.top_k, dropout=cfg.dropout, mean=mean, std=std)
    from .builders import make_optimizer

    if binary:
        ytr_fit = (ytr == positive).astype(np.float32)
        yval_fit = None if yval is None else (yval == positive).astype(np.float32)
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
        metrics = [keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)]
        weights = None if class_weight is None else {0: class_weight[1 - positive], 1: class_weight[positive]}
    else:
        ytr_fit, yval_fit = ytr, yval
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = ["accuracy"]
        weights = class_weight
    net.compile(optimizer=make_optimizer(cfg), loss=loss, metrics=metrics)
    # The object crop puts every part the same way round; its mirror image about the axis is the
    # same part seen from the other side, so the head also sees each training map upside down.
    if cfg.augmentation != "none":
        xfit, yfit = np.concatenate([xtr, xtr[:, ::-1]]), np.concatenate([ytr_fit, ytr_fit])
    else:
        xfit, yfit = xtr, ytr_fit
    best = BestOnValidation(xval, yval_fit, binary)
    portal = fitmod.PortalCallback(on_epoch=on_epoch, should_stop=should_stop)
    callbacks = [best, portal] if xval is not None else [portal]
    history = net.fit(xfit.astype(np.float32), yfit, batch_size=cfg.batch_size, epochs=cfg.epochs,
                      validation_data=None if xval is None else (xval.astype(np.float32), yval_fit),
                      class_weight=weights, callbacks=callbacks, verbose=0, shuffle=True).history
    if portal.cancelled:
        return {"cancelled": True, "history": history, "model": None}
    if best.weights is not None:
        net.set_weights(best.weights)
    threshold = 0.0
    inputs = ext.inputs[0]
    scores = net(ext.outputs[0])
    if binary:
        if xval is not None and len(xval):
            val_scores = np.asarray(net.predict(xval.astype(np.float32), verbose=0))[:, 0]
            threshold = best_threshold(val_scores, yval == positive)
        probs = ThresholdedBinary(threshold, positive, name="probs")(scores)
    else:
        probs = keras.layers.Activation("softmax", dtype="float32", name="probs")(scores)
    model = keras.Model(inputs, probs, name=f"patch_{cfg.backbone}")
    log(f"head fitted in {time.monotonic() - started:.0f} s since extraction began; best epoch {best.epoch}"
        + (f"; decision threshold {threshold:+.3f} on the validation split" if binary else ""))
    return {"cancelled": False, "history": history, "model": model, "best_epoch": best.epoch,
            "threshold": threshold, "params": int(net.count_params())}


def _callback_base():
    import keras

    return keras.callbacks.Callback


class BestOnValidation(_callback_base()):
    """Keeps the head's weights from the epoch with the best validation AUC plus accuracy (binary) or
    accuracy (several classes); the validation split is small, so AUC breaks accuracy's ties."""

    def __init__(self, x, y, binary):
        super().__init__()
        self.x = None if x is None else x.astype(np.float32)
        self.y, self.binary = y, binary
        self.best, self.weights, self.epoch = -1.0, None, 0

    def on_epoch_end(self, epoch, logs=None):
        if self.x is None or not len(self.x):
            return
        s = np.asarray(self.model.predict(self.x, verbose=0))
        if self.binary:
            score = auc(self.y > 0.5, s[:, 0]) + float(((s[:, 0] >= 0) == (self.y > 0.5)).mean())
        else:
            score = float((s.argmax(-1) == self.y).mean())
        if score > self.best:
            self.best, self.weights, self.epoch = score, self.model.get_weights(), epoch + 1
