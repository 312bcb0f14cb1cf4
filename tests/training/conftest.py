import io

import numpy as np
import pytest
from PIL import Image

from tests.factories import make_item, make_version, mark_profiled

TINY = {
    "architecture": "tiny_cnn",
    "image_size": 32,
    "channels": 1,
    "epochs": 1,
    "batch_size": 4,
    "early_stopping": False,
    "augmentation": "none",
}


def tiny_png(i, label):
    """32x32 noise, dark for ``good`` and bright for ``defect``: learnable in an epoch or two."""
    rng = np.random.default_rng(1000 + i)
    arr = rng.integers(0, 80, (32, 32), dtype=np.uint8) + (150 if label == "defect" else 0)
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def make_tiny_version(project):
    def make(n=16, status="ready", splits=None, labels=("good", "defect")):
        splits = splits or (["train"] * 8 + ["val"] * 4 + ["test"] * 4)
        entries = []
        for i in range(n):
            label = labels[i % len(labels)]
            item = make_item(project, data=tiny_png(i, label), name=f"s{i}.png")
            entries.append((item, splits[i % len(splits)], label))
        version = make_version(project, entries, status=status)
        if status == "ready":
            mark_profiled(version)
        return version

    return make


@pytest.fixture
def version(make_tiny_version):
    return make_tiny_version()
