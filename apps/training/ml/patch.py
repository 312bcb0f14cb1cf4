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

import keras
import numpy as np

from . import search
from .config import TrainConfig
from .evaluate import binary_curves, traced


def extractor(cfg: TrainConfig, weights_path):
    """Raw 0..255 images [N, S, S, C] → patch features [N, h, w, D] at stride 8 (a Keras model)."""
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
    scaled = BackboneInput(backbones.CATALOGUE[cfg.backbone].scale, name="backbone_input")(x)
    fine, coarse = taps(scaled, training=False)
    fine = layers.AveragePooling2D(3, 1, padding="same", name="fine_local")(fine)
    coarse = layers.AveragePooling2D(3, 1, padding="same", name="coarse_local")(coarse)
    coarse = layers.UpSampling2D(2, interpolation="bilinear", name="coarse_up")(coarse)
    return keras.Model(inputs, layers.Concatenate(name="patch_features")([fine, coarse]), name="patch_extractor")


def head(depth, num_outputs, *, top_k, dropout, mean, std, name="patch_head"):
    """Patch features → one score per class channel (pooled over the top-k patches)."""
    from keras import layers

    from .layers import TopKMean

    inp = keras.Input((None, None, depth), name="patch_features")
    x = layers.Normalization(mean=mean, variance=np.square(std), name="standardize")(inp)
    x = layers.Conv2D(64, 1, activation="relu", name="patch_hidden")(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    x = layers.Conv2D(num_outputs, 1, name="patch_scores", dtype="float32")(x)
    return keras.Model(inp, TopKMean(top_k, name="top_k_mean")(x), name=name)


def extract(model, ds, *, on_batch=None, should_stop=None):
    """(features float16 [N, h, w, D], labels) over ``ds``; None when stopped. The features go
    straight into one preallocated array when the dataset knows its length (no second copy at the
    end: at 7,000 images they are gigabytes)."""
    batches = int(ds.cardinality()) if hasattr(ds, "cardinality") else -1
    out, labels, filled = None, [], 0
    chunks = []
    last = 0.0
    run = traced(model)
    for i, (x, y) in enumerate(ds):
        f = np.asarray(run(x), dtype=np.float16)
        if batches > 0 and out is None:
            out = np.empty((batches * len(f),) + f.shape[1:], np.float16)  # every batch but the last is full
        if out is not None:
            out[filled : filled + len(f)] = f
        else:
            chunks.append(f)
        filled += len(f)
        labels.append(np.asarray(y))
        now = time.monotonic()
        if now - last > 1.0:
            last = now
            if on_batch:
                on_batch(0, i + 1)
            if should_stop and should_stop():
                return None
    if not labels:
        return np.zeros((0,)), np.zeros((0,), np.int64)
    feats = out[:filled] if out is not None else np.concatenate(chunks)
    return feats, np.concatenate(labels).astype(np.int64)


def best_threshold(scores, positive, *, prior=None):
    """The cut on validation scores with the best accuracy (midway between neighbours; ties: the middle).

    ``prior``: the cut the model was trained towards (0 for a classifier's logits). Where it is one of
    the best cuts it is kept: a small validation split moves the threshold only as far as its errors
    demand (two validation images would otherwise put the cut midway between them)."""
    s = np.sort(np.unique(scores))
    if prior is not None and ((scores >= prior) == positive).mean() >= max(
        ((scores >= c) == positive).mean() for c in np.concatenate([s, [np.inf]])
    ):
        return float(prior)
    if len(s) < 2:
        return 0.0 if prior is None else float(prior)
    cuts = np.concatenate([[s[0] - 1e-3], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-3]])
    accs = np.array([((scores >= c) == positive).mean() for c in cuts])
    best = np.flatnonzero(accs == accs.max())
    return float(cuts[best[len(best) // 2]])


def fit_patch_model(
    cfg: TrainConfig,
    datasets,
    train_labels,
    classes,
    *,
    weights_path,
    class_weight=None,
    on_epoch=None,
    on_batch=None,
    should_stop=None,
    log=print,
):
    """Extract features once, fit the candidate(s) ``cfg.architecture`` names on them, keep the one the
    validation split prefers. Returns a dict with the full ``model`` (raw images → class
    probabilities), ``history``, ``cancelled``, ``best_epoch``, ``threshold`` and ``search`` (each
    candidate's validation figures and which won, why)."""

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
        log(
            f"patch features of the {name} split: {out[0].shape[0]} images × {out[0].shape[1]}×{out[0].shape[2]} "
            f"patches × {out[0].shape[3]} ({time.monotonic() - started:.0f} s)"
        )
    xtr, ytr = extracted["train"]
    xval, yval = extracted.get("val", (None, None))
    if xval is not None:
        xval = xval.astype(np.float32)  # small: converted once for every candidate's predictions
    binary = k == 2
    positive = None
    if binary:
        counts = np.bincount(np.asarray(train_labels), minlength=2)
        positive = int(np.argmin(counts)) if counts[0] != counts[1] else 1
    wanted = {"patch_mil": ["classifier"], "patch_anomaly": ["anomaly"], "patch_auto": ["classifier", "anomaly"]}[
        cfg.architecture
    ]
    if not binary and "anomaly" in wanted:
        if wanted == ["anomaly"]:
            raise ValueError("the anomaly detector needs exactly two classes (normal and defective)")
        wanted = ["classifier"]
    candidates = []
    for kind in wanted:
        began = time.monotonic()
        if kind == "classifier":
            c = _fit_classifier(cfg, xtr, ytr, xval, yval, k, positive, class_weight, on_epoch, should_stop, log)
        else:
            c = _fit_anomaly(cfg, xtr, ytr, xval, yval, positive, on_epoch if wanted == ["anomaly"] else None)
        if c is None:
            return {"cancelled": True, "history": {}, "model": None}
        c["seconds"] = round(time.monotonic() - began, 1)
        candidates.append(c)
        log(f"candidate {c['title']}: " + search.figures(c))
    if len(candidates) == 2 and binary and xval is not None and len(xval):
        c = _combined(candidates[0], candidates[1], yval == positive)
        candidates.append(c)
        log(f"candidate {c['title']}: " + search.figures(c))
    winner, why = search.choose(candidates, None if yval is None else len(yval))
    if len(candidates) > 1:
        log("recipe search: " + why)
    found = search.summary(candidates, winner, why)
    scores = winner["score_model"](ext.outputs[0])
    if binary:
        probs = ThresholdedBinary(winner["threshold"], positive, winner.get("scale", 1.0), name="probs")(scores)
    else:
        probs = keras.layers.Activation("softmax", dtype="float32", name="probs")(scores)
    model = keras.Model(ext.inputs[0], probs, name=f"patch_{winner['kind']}_{cfg.backbone}")
    view = ext.get_layer("object_crop").output if cfg.crop == "object" else ext.inputs[0]
    heat = keras.Model(ext.inputs[0], [probs, view, winner["map_model"](ext.outputs[0])], name="patch_heatmap")
    log(
        f"{winner['title']} kept, {time.monotonic() - started:.0f} s since extraction began"
        + (f"; decision threshold {winner['threshold']:+.4g} on the validation split" if binary else "")
    )
    return {
        "cancelled": False,
        "history": winner["history"],
        "model": model,
        "best_epoch": winner["best_epoch"],
        "threshold": winner["threshold"],
        "params": winner["params"],
        "search": found,
        "heatmap_model": heat,
    }


def _object_crop(model):
    """The ``ObjectCrop`` layer inside ``model`` (nested models searched too), or None."""
    from .layers import ObjectCrop

    for layer in model.layers:
        if isinstance(layer, ObjectCrop):
            return layer
        if isinstance(layer, keras.Model):
            found = _object_crop(layer)
            if found is not None:
                return found
    return None


def predict_with_heatmaps(heat_model, ds, *, width=384):
    """One pass of ``heat_model`` (raw images → [probabilities, what the model saw, patch scores])
    over ``ds``: (y_true, probabilities, one PNG per image, one map per image, one geometry per
    image), in ``ds`` order. The PNG shows the object crop in grey and its patch scores in red,
    scaled between the 80th and 99.5th percentile of all the images' patch scores, so that images
    compare. The map is the image's patch scores scaled to 0..1 on their own; its geometry says where
    it lies on the photograph (the crop's transform: ``localize.to_photo``). Each view is shrunk to
    the PNG's size as its batch comes, so a large test split is never held at full resolution."""
    import tensorflow as tf

    from .explain import overlay_png, upsample

    crop = _object_crop(heat_model)
    size = int(heat_model.inputs[0].shape[1])
    ys, probs, greys, maps, geometries = [], [], [], [], []
    run = traced(heat_model)
    for x, y in ds:
        p, v, m = run(x)
        h = max(1, round(width * v.shape[1] / v.shape[2]))
        greys.append(np.asarray(tf.image.resize(v, (h, width), antialias=True)).mean(-1))
        maps.append(np.asarray(m, np.float32)[..., :1])
        probs.append(np.asarray(p, np.float64))
        ys.append(np.asarray(y))
        for img in x:
            geometries.append(
                None
                if crop is None
                else {
                    "coeffs": [float(c) for c in np.asarray(crop.transform(img)[0])],
                    "crop": (crop.width, crop.height),
                    "input": size,
                }
            )
    if not ys:
        return np.zeros(0, np.int64), np.zeros((0, heat_model.outputs[0].shape[-1])), [], [], []
    maps = np.concatenate(maps)
    lo, hi = np.percentile(maps, 80), np.percentile(maps, 99.5)
    out, own = [], []
    for grey, m in zip((g for batch in greys for g in batch), maps):
        heat = np.clip((upsample(m[..., 0], grey.shape) - lo) / max(hi - lo, 1e-6), 0, 1)
        out.append(overlay_png(grey, heat))
        a = m[..., 0]
        own.append((a - a.min()) / max(float(a.max() - a.min()), 1e-9))
    return np.concatenate(ys).astype(np.int64), np.concatenate(probs), out, own, geometries


def _val_figures(val_scores, positive_mask, threshold):
    if val_scores is None or not len(val_scores):
        return None, None
    acc = float(((val_scores >= threshold) == positive_mask).mean())
    return acc, binary_curves(positive_mask, val_scores)["roc_auc"]


def _fit_classifier(cfg, xtr, ytr, xval, yval, k, positive, class_weight, on_epoch, should_stop, log=print):
    """The patch classifier: ``cfg.head_ensemble`` heads trained on every class's labeled images, each
    from its own initial weights and batch order, their scores averaged. One head's test accuracy
    moves by a few images with its seed on a 72-image test split; the average moves less."""

    from . import fit as fitmod
    from .builders import make_optimizer

    binary = positive is not None
    members = max(1, int(cfg.head_ensemble))
    mean, std = channel_stats(xtr)
    inv = (1.0 / std).astype(np.float32)
    xval_std = None if xval is None else (xval - mean) * inv
    if binary:
        ytr_fit = (ytr == positive).astype(np.float32)
        yval_fit = None if yval is None else (yval == positive).astype(np.float32)
        weights = None if class_weight is None else {0: class_weight[1 - positive], 1: class_weight[positive]}
    else:
        ytr_fit, yval_fit = ytr, yval
        weights = class_weight
    budget = cfg.head_samples // members if cfg.head_samples else 0  # the maps budget is the ensemble's
    nets, fitted_nets, history, best_epochs = [], [], {}, []
    done_epochs = 0
    for m in range(members):
        keras.utils.set_random_seed(cfg.seed + m)  # each member its own initial weights and dropout
        net = head(
            xtr.shape[-1],
            1 if binary else k,
            top_k=cfg.top_k,
            dropout=cfg.dropout,
            mean=mean,
            std=std,
            name=f"patch_head_{m}" if members > 1 else "patch_head",
        )
        # Trained without its standardizing layer, on maps standardized as each batch is made (the
        # same numbers; Keras' Normalization over every patch took most of a training step on the
        # CPU). The full head shares the trained layers, so what is saved standardizes raw features.
        fitted = keras.Model(net.get_layer("standardize").output, net.output, name=f"{net.name}_standardized")
        if binary:
            loss = keras.losses.BinaryCrossentropy(from_logits=True)
            metrics = [keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)]
        else:
            loss, metrics = keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]
        fitted.compile(optimizer=make_optimizer(cfg), loss=loss, metrics=metrics)
        # The object crop puts every part the same way round; its mirror image about the axis is the
        # same part seen from the other side, so the head also sees each training map upside down.
        batches = MapBatches(
            xtr,
            ytr_fit,
            batch_size=cfg.batch_size,
            mirror=cfg.augmentation != "none",
            class_weight=weights,
            seed=cfg.seed + m,
            shift=mean,
            scale=inv,
        )
        epochs = cfg.epochs
        if budget and len(batches.order) * epochs > budget:
            epochs = max(1, budget // len(batches.order))
            if m == 0:
                log(
                    f"patch classifier: {epochs} epochs of {len(batches.order)} maps per head instead of "
                    f"{cfg.epochs} (at most {cfg.head_samples} maps through the {members} head(s))"
                )

        def reported(epoch, metrics_, seconds, _offset=done_epochs):
            if on_epoch:
                on_epoch(_offset + epoch, metrics_, seconds)  # the heads' epochs follow each other

        best = BestOnValidation(xval_std, yval_fit, binary)
        portal = fitmod.PortalCallback(on_epoch=reported, should_stop=should_stop)
        callbacks = [best, portal] if xval is not None else [portal]
        h = fitted.fit(
            batches,
            epochs=epochs,
            validation_data=None if xval is None else (xval_std, yval_fit),
            callbacks=callbacks,
            verbose=0,
        ).history
        if portal.cancelled:
            return None
        if best.weights is not None:
            fitted.set_weights(best.weights)
        for key, values in h.items():
            history.setdefault(key, []).extend(values)
        done_epochs += len(next(iter(h.values()), []))
        best_epochs.append(best.epoch)
        nets.append(net)
        fitted_nets.append(fitted)
        if members > 1:
            log(f"patch classifier: head {m + 1} of {members} trained (best epoch {best.epoch})")
    net = nets[0] if members == 1 else _averaged(nets, "patch_head_ensemble")
    maps = [keras.Model(n.inputs, n.get_layer("patch_scores").output) for n in nets]
    map_model = maps[0] if members == 1 else _averaged(maps, "patch_scores_ensemble")

    def val_scores(x):
        return np.mean([np.asarray(f.predict(x, verbose=0)) for f in fitted_nets], axis=0)

    threshold, acc, area, tta, chosen = 0.0, None, None, False, None
    if xval is not None and len(xval):
        plain = val_scores(xval_std)
        options = [(False, plain)]
        if cfg.tta and cfg.augmentation != "none":  # trained on mirrored maps too: try averaging both views
            options.append((True, (plain + val_scores(xval_std[:, ::-1])) / 2))
        best_key = None
        for with_tta, out in options:
            if binary:
                cut = best_threshold(out[:, 0], yval == positive)
                a, u = _val_figures(out[:, 0], yval == positive, cut)
            else:
                cut, a, u = 0.0, float((out.argmax(-1) == yval).mean()), None
            key = (a, u or 0.0)
            if best_key is None or key > best_key:  # test-time augmentation only where validation says it helps
                best_key, threshold, acc, area, tta = key, cut, a, u, with_tta
                chosen = out[:, 0] if binary else None
    score_model = mirrored(net) if tta else net
    return {
        "kind": "classifier",
        "title": "the patch classifier"
        + (f" ({members} heads averaged)" if members > 1 else "")
        + (" with mirror TTA" if tta else ""),
        "score_model": score_model,
        "map_model": map_model,
        "threshold": threshold,
        "val_accuracy": acc,
        "val_auc": area,
        "history": history,
        "best_epoch": best_epochs[0],
        "params": int(sum(n.count_params() for n in nets)),
        "tta": tta,
        "val_scores": chosen,
    }


def _averaged(models, name):
    """One model: the same input to every model of ``models``, their outputs averaged."""
    inp = keras.Input(models[0].inputs[0].shape[1:], name="patch_features")
    return keras.Model(inp, keras.layers.Average(name="average")([m_(inp) for m_ in models]), name=name)


def channel_stats(x, *, chunk=256):
    """Per-channel mean and standard deviation (+1e-3) of float16 patch maps [N, h, w, D], a chunk of
    images at a time in float64 (never a float32 copy of the whole set)."""
    d = x.shape[-1]
    total, sq, n = np.zeros(d), np.zeros(d), 0
    for i in range(0, len(x), chunk):
        part = x[i : i + chunk].reshape(-1, d).astype(np.float64)
        total += part.sum(0)
        sq += np.square(part).sum(0)
        n += len(part)
    mean = total / max(n, 1)
    return mean.astype(np.float32), (np.sqrt(np.maximum(sq / max(n, 1) - mean**2, 0)) + 1e-3).astype(np.float32)


class MapBatches(keras.utils.PyDataset):
    """Training batches of the head from float16 patch maps: each map once as it is and, with
    ``mirror``, once mirrored about the object's axis, shuffled anew every epoch; each batch turned
    into float32 when it is served (and standardized, given ``shift`` and ``scale``), with its class
    weights as sample weights. The maps stay float16
    in memory: the whole set in float32, mirrored, would be four times their size."""

    def __init__(self, x, y, *, batch_size, mirror, class_weight=None, seed=0, shift=None, scale=None):
        super().__init__()
        self.x, self.y, self.batch_size, self.mirror = x, np.asarray(y), int(batch_size), bool(mirror)
        self.shift, self.scale = shift, scale  # served as (x - shift) * scale, when given
        self.weight = None
        if class_weight:
            self.weight = np.array([class_weight.get(int(c), 1.0) for c in self.y.astype(np.int64)], np.float32)
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.x) * (2 if self.mirror else 1))

    def __len__(self):
        return -(-len(self.order) // self.batch_size)

    def __getitem__(self, i):
        picked = np.sort(self.order[i * self.batch_size : (i + 1) * self.batch_size])
        n = len(self.x)
        plain, flipped = picked[picked < n], picked[picked >= n] - n
        xs = [self.x[plain].astype(np.float32)]
        if len(flipped):
            xs.append(self.x[flipped][:, ::-1].astype(np.float32))
        rows = np.concatenate([plain, flipped])
        xb = np.concatenate(xs)
        if self.shift is not None:
            xb -= self.shift
            xb *= self.scale
        out = (xb, self.y[rows])
        return out + (self.weight[rows],) if self.weight is not None else out

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.order))


def mirrored(net):
    """``net`` averaged over the feature maps and their mirror image about the object's axis."""

    from .layers import MirrorRows

    inp = keras.Input(net.inputs[0].shape[1:], name="patch_features_tta")
    out = keras.layers.Average(name="tta_mean")([net(inp), net(MirrorRows(name="mirror")(inp))])
    return keras.Model(inp, out, name="patch_head_tta")


class Rows:
    """The patches of some images of float16 maps [N, h, w, D] as rows [n, D], gathered only when
    indexed: sampling a pool never copies every patch."""

    def __init__(self, maps, images):
        self.maps, self.images = maps.reshape(len(maps), -1, maps.shape[-1]), np.asarray(images)
        self.per_image = self.maps.shape[1]

    def __len__(self):
        return len(self.images) * self.per_image

    def __getitem__(self, flat):
        flat = np.asarray(flat)
        return self.maps[self.images[flat // self.per_image], flat % self.per_image]


def kcenter(x, k, *, seed=0, pool=120_000, dims=64):
    """Greedy k-centre coreset of the rows of ``x`` (an array or ``Rows``; on a random projection,
    from a random pool), as float32."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    picked = rng.choice(len(x), pool, replace=False) if len(x) > pool else np.arange(len(x))
    x = np.asarray(x[picked], np.float32)  # only the pool is ever float32
    k = min(k, len(x))
    proj = tf.constant(x @ (rng.normal(size=(x.shape[1], dims)).astype(np.float32) / np.sqrt(dims)))
    chosen = [int(rng.integers(len(x)))]
    dist = tf.reduce_sum(tf.square(proj - proj[chosen[0]]), 1)
    for _ in range(k - 1):
        i = int(tf.argmax(dist))
        chosen.append(i)
        dist = tf.minimum(dist, tf.reduce_sum(tf.square(proj - proj[i]), 1))
    return x[chosen]


def _fit_anomaly(cfg, xtr, ytr, xval, yval, positive, on_epoch):
    """The anomaly detector: a memory bank of the normal class's training patches (k-centre coreset);
    an image's score is its farthest patch's distance to the bank. Needs no defect labels to train;
    the validation split sets the threshold and the probability scale."""

    from .layers import PatchDistance, TopKMean

    started = time.monotonic()
    bank = kcenter(Rows(xtr, np.flatnonzero(ytr != positive)), cfg.memory_bank, seed=cfg.seed)
    inp = keras.Input((None, None, xtr.shape[-1]), name="patch_features")
    distance = PatchDistance(len(bank), xtr.shape[-1], name="patch_distance")
    score = TopKMean(1, name="worst_patch")(distance(inp))
    net = keras.Model(inp, score, name="anomaly_head")
    distance.bank.assign(bank)
    threshold, scale, acc, area = 0.0, 1.0, None, None
    if xval is not None and len(xval):
        val_scores = np.asarray(net.predict(xval, batch_size=8, verbose=0))[:, 0]
        threshold = best_threshold(val_scores, yval == positive)
        scale = float(np.std(val_scores[yval != positive]) or 1.0)
        acc, area = _val_figures(val_scores, yval == positive, threshold)
    seconds = time.monotonic() - started
    history = {"val_accuracy": [acc or 0.0], "val_auc": [area or 0.0]}
    if on_epoch:
        on_epoch(1, {k: v[0] for k, v in history.items()}, seconds)
    return {
        "kind": "anomaly",
        "title": "the anomaly detector",
        "score_model": net,
        "map_model": keras.Model(inp, distance.output),
        "threshold": threshold,
        "scale": scale,
        "val_accuracy": acc,
        "val_auc": area,
        "history": history,
        "best_epoch": 1,
        "params": int(bank.size),
        "val_scores": val_scores if xval is not None and len(xval) else None,
    }


def _combined(classifier, anomaly, positive_mask):
    """The classifier and the anomaly detector together: each one's score measured from its own
    threshold in spreads of its validation normal images' scores, the two summed; the threshold on
    the sum is tuned on the validation split (0, where both agree, unless validation says otherwise).
    Built from stock Keras layers (Rescaling, Add), so it saves and loads like the other two."""
    from keras import layers

    parts, sums = [], 0.0
    for c in (classifier, anomaly):
        spread = float(np.std(c["val_scores"][~positive_mask]) or 1.0)
        parts.append((1.0 / spread, -c["threshold"] / spread))
        sums = sums + (c["val_scores"] - c["threshold"]) / spread
    threshold = best_threshold(sums, positive_mask, prior=0.0)
    acc, area = _val_figures(sums, positive_mask, threshold)

    def joined(a, b, name):
        inp = keras.Input(a.inputs[0].shape[1:], name="patch_features")
        scaled = [
            layers.Rescaling(scale, offset, name=f"{name}_{i}")(m(inp))
            for i, (m, (scale, offset)) in enumerate(zip((a, b), parts))
        ]
        return keras.Model(inp, layers.Add(name=f"{name}_sum")(scaled), name=name)

    return {
        "kind": "combined",
        "title": "the patch classifier and the anomaly detector together",
        "score_model": joined(classifier["score_model"], anomaly["score_model"], "combined_score"),
        "map_model": joined(classifier["map_model"], anomaly["map_model"], "combined_map"),
        "threshold": threshold,
        "val_accuracy": acc,
        "val_auc": area,
        "history": classifier["history"],
        "best_epoch": classifier["best_epoch"],
        "params": classifier["params"] + anomaly["params"],
        "tta": classifier.get("tta", False),
        "val_scores": sums,
        "seconds": 0.0,
    }


class BestOnValidation(keras.callbacks.Callback):
    """Keeps the head's weights from the epoch with the best validation AUC plus accuracy (binary) or
    accuracy (several classes); the validation split is small, so AUC breaks accuracy's ties."""

    def __init__(self, x, y, binary):
        super().__init__()
        self.x, self.y, self.binary = x, y, binary
        self.best, self.weights, self.epoch = -1.0, None, 0

    def on_epoch_end(self, epoch, logs=None):
        if self.x is None or not len(self.x):
            return
        s = np.asarray(self.model.predict(self.x, verbose=0))
        if self.binary:
            score = binary_curves(self.y > 0.5, s[:, 0])["roc_auc"] + float(((s[:, 0] >= 0) == (self.y > 0.5)).mean())
        else:
            score = float((s.argmax(-1) == self.y).mean())
        if score > self.best:
            self.best, self.weights, self.epoch = score, self.model.get_weights(), epoch + 1
