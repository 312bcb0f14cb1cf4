"""How long a run will take, said before launch: from the project's own finished runs of the same
recipe when there are any (seconds per image and epoch, scaled to this run's images, epochs and input
size), else from the portal's reference rates measured on a 2-core CPU machine (docs/benchmarks.md).
Stored on the run at launch, so that its page compares the estimate with the real time."""

import statistics

from .ml.config import PATCH_RECIPES

# Reference seconds per training image and epoch on 2 CPU cores at 128 px (bench/default_recipe.py:
# small_cnn 242 s for 70 epochs of 336 images), scaled by the pixel count; the patch recipes' cost is
# per image of every split (features once, ~0.1 s per 1024 px photograph) plus ~0.0025 s per training
# image and head epoch (bench/default_recipe.py: ~80 s per seed for 480 images, 30 epochs).
REFERENCE_PER_IMAGE_EPOCH = {"tiny_cnn": 0.001, "small_cnn": 0.0103, "medium_cnn": 0.03, "finetune": 0.03}
PATCH_PER_IMAGE, PATCH_PER_IMAGE_EPOCH = 0.1, 0.0025


def _work(config, n_train, n_all):
    """The run's size in the units its rate is in: image-epochs (CNNs) or images (patch recipes)."""
    if config.get("architecture") in PATCH_RECIPES:
        return n_all
    side = float(config.get("image_size") or 128)
    return n_train * int(config.get("epochs") or 1) * (side / 128.0) ** 2


def split_sizes(counts):
    """(training images, images in every split) from a dataset version's ``counts`` {split: {label: n}}."""
    counts = counts or {}
    return (
        sum((counts.get("train") or {}).values()),
        sum(sum(v.values()) for v in counts.values() if isinstance(v, dict)),
    )


def estimate_for_version(project, version, config):
    """(seconds, basis) of a run of ``config`` on ``version``."""
    return estimate_seconds(project, config, *split_sizes(version.counts))


def estimate_seconds(project, config, n_train, n_all):
    """(seconds, basis): the expected wall time of a run of ``config`` on ``n_train`` training images
    (``n_all`` in every split), and what the figure rests on."""
    from .models import TrainingRun

    arch = config.get("architecture")
    earlier = (
        TrainingRun.objects.filter(
            project=project, status="succeeded", config__architecture=arch, training_seconds__gt=0
        )
        .select_related("dataset_version")
        .order_by("-finished_at")[:5]
    )
    rates = []
    for r in earlier:
        train, every = split_sizes(r.dataset_version.counts)
        cfg = dict(r.config or {})
        if arch not in PATCH_RECIPES:
            cfg["epochs"] = r.epochs_run or cfg.get("epochs")
        work = _work(cfg, train, every)
        if work:
            rates.append(r.training_seconds / work)
    work = _work(config, n_train, n_all)
    if rates:
        seconds = statistics.median(rates) * work
        return seconds, f"from {len(rates)} earlier {arch} run{'s' if len(rates) > 1 else ''} of this project"
    if arch in PATCH_RECIPES:
        seconds = PATCH_PER_IMAGE * n_all + PATCH_PER_IMAGE_EPOCH * n_train * int(config.get("epochs") or 1)
    else:
        seconds = REFERENCE_PER_IMAGE_EPOCH.get(arch, 0.03) * work
    return seconds, "from the portal's reference rates on a 2-core CPU (no earlier run of this recipe here)"


def say(seconds):
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 5400:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"
