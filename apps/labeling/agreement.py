"""Inter-labeler agreement: Cohen's kappa for a pair of labelers, Fleiss' kappa for more.

Plain functions over plain data, so they are easy to check against published examples.
"""

from collections import Counter, defaultdict
from itertools import combinations

from apps.core.boxes import match


def cohen_kappa(a, b):
    """Cohen's kappa of two equally long label sequences; None when there is nothing to compare."""
    n = len(a)
    if n == 0 or n != len(b):
        return None
    po = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    if pe >= 1.0:
        return 1.0 if po >= 1.0 else 0.0
    return (po - pe) / (1 - pe)


def fleiss_kappa(table):
    """Fleiss' kappa of a count table (one row per item, one column per category, every row summing
    to the same number of raters). Returns (kappa, per-category kappas) or (None, {}) if undefined."""
    rows = [list(r) for r in table if sum(r) > 0]
    if not rows:
        return None, {}
    n = sum(rows[0])
    if n < 2 or any(sum(r) != n for r in rows):
        return None, {}
    N, k = len(rows), len(rows[0])
    p = [sum(r[j] for r in rows) / (N * n) for j in range(k)]
    P = [(sum(x * x for x in r) - n) / (n * (n - 1)) for r in rows]
    Pbar, Pe = sum(P) / N, sum(x * x for x in p)
    kappa = None if Pe >= 1.0 else (Pbar - Pe) / (1 - Pe)
    per = {}
    for j in range(k):
        if 0 < p[j] < 1:
            per[j] = 1 - sum(r[j] * (n - r[j]) for r in rows) / (N * n * (n - 1) * p[j] * (1 - p[j]))
    return kappa, per


def agreement_summary(labels_by_item, classes):
    """``labels_by_item``: {item_id: {labeler: class name}} for items with two or more labels.

    Returns {"items", "method", "overall", "per_class": {name: kappa}, "pairs": [{a, b, items, kappa}]}.
    Two labelers: Cohen's kappa (per class: one-vs-rest Cohen's). Three or more: Fleiss' kappa on
    the items with the most common number of labels, and Cohen's kappa for every pair."""
    items = {i: v for i, v in labels_by_item.items() if len(v) >= 2}
    labelers = sorted({u for v in items.values() for u in v})
    pairs = []
    for a, b in combinations(labelers, 2):
        both = [(v[a], v[b]) for v in items.values() if a in v and b in v]
        if both:
            pairs.append(
                {"a": a, "b": b, "items": len(both), "kappa": cohen_kappa([x for x, _ in both], [y for _, y in both])}
            )
    out = {"items": len(items), "labelers": labelers, "pairs": pairs, "per_class": {}, "overall": None, "method": None}
    if not items:
        return out
    names = list(classes) or sorted({c for v in items.values() for c in v.values()})
    names += sorted({c for v in items.values() for c in v.values()} - set(names))
    if len(labelers) == 2:
        a, b = labelers
        both = [(v[a], v[b]) for v in items.values() if a in v and b in v]
        xs, ys = [x for x, _ in both], [y for _, y in both]
        out["method"] = "Cohen's kappa"
        out["overall"] = cohen_kappa(xs, ys)
        for c in names:
            if c in xs or c in ys:
                out["per_class"][c] = cohen_kappa([x == c for x in xs], [y == c for y in ys])
    else:
        counts = Counter(len(v) for v in items.values())
        n = max(counts, key=lambda m: (counts[m], m))
        table = []
        for v in items.values():
            if len(v) == n:
                tally = Counter(v.values())
                table.append([tally.get(c, 0) for c in names])
        kappa, per = fleiss_kappa(table)
        out["method"] = f"Fleiss' kappa ({n} labels per item, {len(table)} items)"
        out["overall"] = kappa
        out["per_class"] = {names[j]: k for j, k in per.items()}
    return out


BOX_MATCH_IOU = 0.5  # two boxes agree when they overlap at least this much (the usual detection bar)


def box_pair(a, b):
    """Two labelers' boxes on one item: {"matched", "mean_iou", "f1"}. Boxes are matched one to one
    by overlap (same class); ``f1`` counts the matches at IoU ≥ 0.5 against both sets' sizes, and
    two empty sets agree (1.0)."""
    if not a and not b:
        return {"matched": 0, "mean_iou": None, "f1": 1.0}
    pairs = match(a, b)
    good = sum(1 for _, _, o in pairs if o >= BOX_MATCH_IOU)
    return {
        "matched": len(pairs),
        "mean_iou": round(sum(o for _, _, o in pairs) / len(pairs), 3) if pairs else 0.0,
        "f1": round(2 * good / (len(a) + len(b)), 3),
    }


def box_agreement(boxes_by_item):
    """``boxes_by_item``: {item_id: {labeler: [boxes]}}; the items two or more labelers annotated and
    at least one drew a box on. Returns {"items", "f1", "mean_iou", "pairs": [{a, b, items, f1,
    mean_iou}]}: the means over every pair of labelers on every such item."""
    items = {i: v for i, v in boxes_by_item.items() if len(v) >= 2 and any(v.values())}
    per_pair, all_f1, all_iou = {}, [], []
    for v in items.values():
        for a, b in combinations(sorted(v), 2):
            m = box_pair(v[a], v[b])
            per_pair.setdefault((a, b), []).append(m)
            all_f1.append(m["f1"])
            if m["mean_iou"] is not None:
                all_iou.append(m["mean_iou"])
    mean = lambda xs: round(sum(xs) / len(xs), 3) if xs else None  # noqa: E731
    return {
        "items": len(items),
        "f1": mean(all_f1),
        "mean_iou": mean(all_iou),
        "pairs": [
            {
                "a": a,
                "b": b,
                "items": len(ms),
                "f1": mean([m["f1"] for m in ms]),
                "mean_iou": mean([m["mean_iou"] for m in ms if m["mean_iou"] is not None]),
            }
            for (a, b), ms in sorted(per_pair.items())
        ],
    }


def kappa_words(k):
    """Landis & Koch's words for a kappa, so a number reads at a glance."""
    if k is None:
        return "—"
    for limit, word in ((0, "poor"), (0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if k <= limit:
            return word
    return "almost perfect"


def group_labels(rows):
    """[(item_id, labeler, class)] → {item_id: {labeler: class}}."""
    out = defaultdict(dict)
    for item_id, user, cls in rows:
        out[item_id][user] = cls
    return dict(out)
