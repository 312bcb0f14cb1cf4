"""Bounding boxes {x, y, w, h, class?} in image pixels: overlap, matching two sets of them, and how
one set changed into another. Every stage that keeps boxes uses these (versions, their diffs,
labelers' agreement, localization scores)."""


def iou(a, b):
    """Intersection over union of two boxes (0 when they do not touch)."""
    ix = max(0.0, min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"]))
    iy = max(0.0, min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"]))
    inter = ix * iy
    union = a["w"] * a["h"] + b["w"] * b["h"] - inter
    return inter / union if union > 0 else 0.0


def match(before, after, *, same_class=True):
    """Pairs (i, j, iou) of boxes of ``before`` and ``after``, best overlap first, each box in at most
    one pair, only boxes that overlap (and, with ``same_class``, carry the same class)."""
    pairs = sorted(
        (
            (iou(a, b), i, j)
            for i, a in enumerate(before)
            for j, b in enumerate(after)
            if not same_class or a.get("class", "") == b.get("class", "")
        ),
        reverse=True,
    )
    used_i, used_j, out = set(), set(), []
    for overlap, i, j in pairs:
        if overlap <= 0 or i in used_i or j in used_j:
            continue
        used_i.add(i)
        used_j.add(j)
        out.append((i, j, overlap))
    return sorted(out)


def changes(before, after):
    """How ``after`` differs from ``before``: {"added", "moved", "removed"} box lists (a moved box is
    {"from", "to", "iou"}); boxes that did not change are not listed."""
    pairs = match(before, after)
    moved = [
        {"from": before[i], "to": after[j], "iou": round(o, 3)}
        for i, j, o in pairs
        if _coords(before[i]) != _coords(after[j])
    ]
    return {
        "added": [b for j, b in enumerate(after) if j not in {p[1] for p in pairs}],
        "moved": moved,
        "removed": [a for i, a in enumerate(before) if i not in {p[0] for p in pairs}],
    }


def _coords(box):
    return (box["x"], box["y"], box["w"], box["h"])
