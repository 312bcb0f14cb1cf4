"""How well a run's heatmaps point at the labelers' boxes (on the test images that carry boxes).

- **Pointing game** (Zhang et al., 2016): the share of images whose heatmap peak falls inside one of
  its boxes.
- **Localization IoU**: the mean, over those images, of the IoU between the heatmap above half its
  peak and the boxes, counted on points spread evenly over the map (each carried to the photograph).

Where a map lies on the photograph (its *geometry*): a classifier's map covers the whole photograph
(the model sees it squashed to a square), so a point's place scales with each axis; a patch recipe's
map covers the object crop (``layers.ObjectCrop``: a rotated, scaled rectangle around the screw), so
a point goes through the crop's affine transform to the model's square input, then to the photograph.
Box area outside the crop is not counted in the IoU (the crop holds the object the boxes mark).
"""

import numpy as np
from PIL import Image

THRESHOLD = 0.5  # of the map's peak
GRID = 64


def to_photo(u, v, geometry, size):
    """Points of the map (``u``, ``v`` in 0..1 across its width and height) → photograph pixels.
    ``geometry``: None (the map covers the photograph) or {"coeffs": the crop's 8 projective
    coefficients (output → input pixels), "crop": (width, height) of the crop, "input": the model's
    square input size}."""
    width, height = size
    if geometry is None:
        return u * width, v * height
    a0, a1, a2, b0, b1, b2, c0, c1 = geometry["coeffs"]
    cw, ch = geometry["crop"]
    x, y = u * cw, v * ch
    k = c0 * x + c1 * y + 1.0
    xi, yi = (a0 * x + a1 * y + a2) / k, (b0 * x + b1 * y + b2) / k
    s = float(geometry["input"])
    return xi / s * width, yi / s * height


def _inside(x, y, boxes):
    hit = np.zeros(np.shape(x), bool)
    for b in boxes:
        hit |= (x >= b["x"]) & (x <= b["x"] + b["w"]) & (y >= b["y"]) & (y <= b["y"] + b["h"])
    return hit


def _score(m, boxes, size, geometry, grid):
    m = np.asarray(m, np.float32)
    r, c = np.unravel_index(int(np.argmax(m)), m.shape)
    px, py = to_photo((c + 0.5) / m.shape[1], (r + 0.5) / m.shape[0], geometry, size)
    pointed = bool(_inside(np.array(px), np.array(py), boxes))
    heat = np.asarray(Image.fromarray(m, mode="F").resize((grid, grid), Image.BILINEAR))
    hot = heat >= THRESHOLD * max(float(heat.max()), 1e-9)
    u, v = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid)
    boxed = _inside(*to_photo(u, v, geometry, size), boxes)
    union = np.logical_or(hot, boxed).sum()
    return pointed, float(np.logical_and(hot, boxed).sum() / union) if union else 0.0


def localization_scores(maps, boxes, sizes, geometries=None, *, grid=GRID):
    """``maps`` [h, w] (higher: more looked at) per test image, ``boxes`` (lists of {x, y, w, h} in
    pixels), ``sizes`` ((width, height)) and ``geometries`` (see ``to_photo``; None: whole
    photograph) per test image, in one order. Images without boxes are not scored. Returns
    {"images", "pointing_game", "localization_iou", "threshold"}, or None when no image has both."""
    geometries = geometries or [None] * len(maps)
    scored = [(m, b, s, g) for m, b, s, g in zip(maps, boxes, sizes, geometries) if m is not None and b]
    if not scored:
        return None
    results = [_score(m, b, s, g, grid) for m, b, s, g in scored]
    return {
        "images": len(scored),
        "pointing_game": round(sum(p for p, _ in results) / len(results), 4),
        "localization_iou": round(float(np.mean([i for _, i in results])), 4),
        "threshold": THRESHOLD,
    }
