"""How well a run's heatmaps point at the labelers' boxes (on the test images that carry boxes).

- **Pointing game** (Zhang et al., 2016): the share of images whose heatmap peak falls inside one of
  its boxes.
- **Localization IoU**: the mean, over those images, of the IoU between the heatmap thresholded at
  half its peak and the union of the boxes, both rasterised on one grid over the photograph.

A map's cells cover the whole photograph evenly (the classifiers see the image squashed to a
square), so a cell's centre maps to image pixels by scaling each axis.
"""

import numpy as np
from PIL import Image

THRESHOLD = 0.5  # of the map's peak
GRID = 64


def _peak_inside(m, boxes, width, height):
    r, c = np.unravel_index(int(np.argmax(m)), m.shape)
    x, y = (c + 0.5) / m.shape[1] * width, (r + 0.5) / m.shape[0] * height
    return any(b["x"] <= x <= b["x"] + b["w"] and b["y"] <= y <= b["y"] + b["h"] for b in boxes)


def _mask_iou(m, boxes, width, height, grid):
    heat = np.asarray(Image.fromarray(np.asarray(m, np.float32), mode="F").resize((grid, grid), Image.BILINEAR))
    hot = heat >= THRESHOLD * max(float(heat.max()), 1e-9)
    boxed = np.zeros((grid, grid), bool)
    for b in boxes:
        x0, x1 = int(np.floor(b["x"] / width * grid)), int(np.ceil((b["x"] + b["w"]) / width * grid))
        y0, y1 = int(np.floor(b["y"] / height * grid)), int(np.ceil((b["y"] + b["h"]) / height * grid))
        boxed[max(0, y0) : min(grid, y1), max(0, x0) : min(grid, x1)] = True
    union = np.logical_or(hot, boxed).sum()
    return float(np.logical_and(hot, boxed).sum() / union) if union else 0.0


def localization_scores(maps, boxes, sizes, *, grid=GRID):
    """``maps`` [h, w] in 0..1 per test image, ``boxes`` (lists of {x, y, w, h} in pixels) and
    ``sizes`` ((width, height)) per test image, in one order. Images without boxes are not scored.
    Returns {"images", "pointing_game", "localization_iou", "threshold"}, or None when no image
    has both a map and a box."""
    scored = [(m, b, s) for m, b, s in zip(maps, boxes, sizes) if m is not None and b]
    if not scored:
        return None
    hits = [_peak_inside(m, b, *s) for m, b, s in scored]
    ious = [_mask_iou(m, b, *s, grid) for m, b, s in scored]
    return {
        "images": len(scored),
        "pointing_game": round(sum(hits) / len(hits), 4),
        "localization_iou": round(float(np.mean(ious)), 4),
        "threshold": THRESHOLD,
    }
