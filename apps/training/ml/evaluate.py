"""Held-out evaluation in plain numpy: accuracy, per-class and macro precision/recall/F1, the
confusion matrix, ROC and PR curves for two classes, and every prediction (for the gallery)."""

import numpy as np


def traced(model):
    """``model``'s inference as a traced TensorFlow function. A Keras model called eagerly batch by
    batch spends about as long in Python as in the network (the patch extractor: 74 against 33 ms an
    image on 2 CPU cores); traced, it runs as one graph. Retraced once for a smaller last batch."""
    import tensorflow as tf

    return tf.function(lambda x: model(x, training=False), reduce_retracing=True)


def predict(model, ds):
    """(y_true, probabilities) over an unshuffled dataset, in its order."""
    ys, ps = [], []
    run = traced(model)
    for x, y in ds:
        ps.append(np.asarray(run(x), dtype=np.float64))
        ys.append(np.asarray(y))
    if not ys:
        return np.zeros(0, dtype=np.int64), np.zeros((0, model.output_shape[-1]))
    return np.concatenate(ys).astype(np.int64), np.concatenate(ps)


def confusion(y_true, y_pred, k):
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def _div(a, b):
    return float(a) / float(b) if b else 0.0


def classification_metrics(y_true, probs, classes):
    """Everything the evaluation page and the registry read, as plain JSON-able values.

    ``confusion_matrix[i][j]`` counts true class i predicted as j, in ``classes`` order.
    """
    k = len(classes)
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    cm = confusion(y_true, y_pred, k)
    per_class = {}
    for i, name in enumerate(classes):
        tp = cm[i, i]
        precision = _div(tp, cm[:, i].sum())
        recall = _div(tp, cm[i, :].sum())
        f1 = _div(2 * precision * recall, precision + recall)
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(cm[i, :].sum())}
    present = [c for c in classes if per_class[c]["support"] > 0] or list(classes)
    out = {
        "n": int(len(y_true)),
        "accuracy": _div(np.trace(cm), cm.sum()),
        "macro_precision": float(np.mean([per_class[c]["precision"] for c in present])),
        "macro_recall": float(np.mean([per_class[c]["recall"] for c in present])),
        "macro_f1": float(np.mean([per_class[c]["f1"] for c in present])),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "classes": list(classes),
    }
    if k == 2 and len(y_true):
        # The positive class is the rarer one in the test split (the defect, usually).
        counts = np.bincount(y_true, minlength=2)
        pos = int(np.argmin(counts)) if counts[0] != counts[1] else 1
        out["curves"] = binary_curves(y_true == pos, probs[:, pos])
        out["curves"]["positive_class"] = classes[pos]
        out["roc_auc"] = out["curves"]["roc_auc"]
        out["average_precision"] = out["curves"]["average_precision"]
    return out


def binary_curves(is_pos, score):
    """ROC (fpr, tpr) and precision-recall points over every threshold, with AUC and AP."""
    is_pos = np.asarray(is_pos, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(-score, kind="mergesort")
    score, is_pos = score[order], is_pos[order]
    distinct = np.where(np.diff(score))[0]
    idx = np.r_[distinct, len(score) - 1]
    tps = np.cumsum(is_pos)[idx].astype(float)
    fps = (idx + 1 - tps).astype(float)
    P, N = float(is_pos.sum()), float((~is_pos).sum())
    tpr = np.r_[0.0, tps / P] if P else np.r_[0.0, np.zeros_like(tps)]
    fpr = np.r_[0.0, fps / N] if N else np.r_[0.0, np.zeros_like(fps)]
    thresholds = np.r_[np.inf, score[idx]]
    precision = np.r_[1.0, tps / np.maximum(tps + fps, 1)]
    recall = tpr.copy()
    auc = float(np.trapezoid(tpr, fpr)) if P and N else 0.0
    ap = float(np.sum(np.diff(recall) * precision[1:])) if P else 0.0
    return {
        "roc": {
            "fpr": fpr.tolist(),
            "tpr": tpr.tolist(),
            "thresholds": [None if np.isinf(t) else float(t) for t in thresholds],
        },
        "pr": {"precision": precision.tolist(), "recall": recall.tolist()},
        "roc_auc": auc,
        "average_precision": ap,
    }


def predictions_list(y_true, probs):
    """One row per test sample, in dataset order: true, predicted, confidence, all probabilities."""
    rows = []
    for t, p in zip(y_true.tolist(), probs):
        pred = int(np.argmax(p))
        rows.append(
            {"true": int(t), "pred": pred, "confidence": float(p[pred]), "probs": [round(float(v), 6) for v in p]}
        )
    return rows


_LATENCY_NAMES = {"p95_latency_ms", "p95_latency", "latency_p95", "latency_p95_ms", "p95_ms", "latency_ms_p95"}
_MACRO = {"recall": "macro_recall", "precision": "macro_precision", "f1": "macro_f1", "f1_score": "macro_f1"}


def metric_lookup(metrics: dict, name: str):
    """The value a scope target names, read from an evaluation's metrics (or None when it has none).

    ``accuracy``, ``macro_f1`` and other stored keys as they are; ``recall``, ``precision``, ``f1``
    alone are the macro averages; a class-specific target is written ``recall(defect)``,
    ``recall[defect]``, ``recall:defect``, ``recall of defect``, ``defect recall`` or ``defect_recall``;
    ``p95_latency_ms`` (and its spellings) reads ``metrics["p95_latency_ms"]``, which the promotion
    gate measures. Names are matched without case."""
    import re

    metrics = metrics or {}
    key = re.sub(r"[\s\-]+", "_", (name or "").strip().lower())
    if key in _LATENCY_NAMES:
        key = "p95_latency_ms"
    value = metrics.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if key in _MACRO:
        return metric_lookup(metrics, _MACRO[key])
    per_class = {str(c).lower(): v for c, v in (metrics.get("per_class") or {}).items()}
    for stat in ("recall", "precision", "f1"):
        for pattern in (
            rf"^{stat}\s*[\(\[:]\s*(.+?)\s*[\)\]]?$",
            rf"^{stat}_of_(.+)$",
            rf"^(.+)_{stat}$",
            rf"^{stat}_(.+)$",
        ):
            m = re.match(pattern, key)
            if m and m.group(1).strip("_ ") in per_class:
                v = per_class[m.group(1).strip("_ ")].get(stat)
                return float(v) if isinstance(v, (int, float)) else None
    return None


def metric_needs_latency(name: str) -> bool:
    import re

    return re.sub(r"[\s\-]+", "_", (name or "").strip().lower()) in _LATENCY_NAMES
