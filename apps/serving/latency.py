"""The candidate's latency before promotion, measured the way serving answers: the version loaded
into a serving engine (``load_version``: hash-checked, safe-mode, its batcher), then each test-split
image sent alone through decode → resize → batcher, as one client at a time would. The promotion
gate calls this through ``apps.registry.gate.register_latency_probe`` (serving registers it)."""

import time

import numpy as np
from django.core.files.storage import default_storage

from .engine import load_version
from .inputs import RawInput, decode_input

MAX_IMAGES = 200  # enough for a stable p95; a larger test split is sampled evenly


def latency_probe(version):
    entries = list(
        version.dataset_version.entries.filter(split="test").select_related("item__blob").order_by("item_id")
    )
    if not entries:
        return {"error": f"dataset version v{version.dataset_version.number} has no test images to time"}
    if len(entries) > MAX_IMAGES:
        entries = [entries[i] for i in np.linspace(0, len(entries) - 1, MAX_IMAGES).astype(int)]
    raws = []
    for e in entries:
        with default_storage.open(e.item.blob.path, "rb") as fh:
            raws.append(RawInput(0, e.item.original_name, fh.read()))
    loaded = load_version(version, max_wait_ms=0)
    try:
        spec = loaded.spec()
        warm = decode_input(raws[0])
        loaded.batcher.submit([warm.array(**spec)])[0].result()
        times = []
        for raw in raws:
            t0 = time.perf_counter()
            d = decode_input(raw)
            loaded.batcher.submit([d.array(**spec)])[0].result()
            times.append((time.perf_counter() - t0) * 1000.0)
            d.image.close()
    finally:
        loaded.batcher.close()
    return {
        "n": len(times),
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p95_ms": round(float(np.percentile(times, 95)), 3),
        "max_ms": round(max(times), 3),
    }
