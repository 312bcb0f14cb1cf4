"""How long a run will take, said before launch: from the project's own finished runs of the same
recipe when there are any (seconds per image and epoch, scaled to this run's images, epochs and input
size), else from the portal's reference rates measured on a 2-core CPU machine (docs/benchmarks.md).
Stored on the run at launch, so that its page compares the estimate with the real time."""

import statistics

from .ml.config import PATCH_RECIPES, TrainConfig
from .models import TrainingRun

# Reference seconds per training image and epoch on 2 CPU cores at 128 px (bench/default_recipe.py:
# small_cnn 242 s for 70 epochs of 336 images), scaled by the pixel count; the patch recipes' cost is
# a fixed part (backbone built and traced, the anomaly detector's coreset, artifacts: ~30 s), ~0.1 s
# per image of every split (features once from a 1024 px photograph) and ~0.0074 s per training image
# and head epoch (one head's 30 epochs over 336 images took ~75 s); the automatic search adds its
# small CNN from scratch at the small_cnn rate, at most for the budget.
REFERENCE_PER_IMAGE_EPOCH = {"tiny_cnn": 0.001, "small_cnn": 0.0103, "medium_cnn": 0.03, "finetune": 0.03}
PATCH_FIXED_S, PATCH_PER_IMAGE, PATCH_PER_IMAGE_EPOCH = 30.0, 0.1, 0.0074


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
        seconds = patch_reference_seconds(TrainConfig.from_dict(config), n_train, n_all)
    else:
        seconds = REFERENCE_PER_IMAGE_EPOCH.get(arch, 0.03) * work
    return seconds, "from the portal's reference rates on a 2-core CPU (no earlier run of this recipe here)"


def patch_reference_seconds(cfg, n_train, n_all):
    """A patch recipe's expected seconds from the reference rates (see above)."""
    heads = 0 if cfg.architecture == "patch_anomaly" else max(1, cfg.head_ensemble)
    head_images = n_train * cfg.epochs * heads
    if cfg.head_samples:  # the maps budget bounds what the heads see (each map twice with its mirror)
        head_images = min(head_images, max(cfg.head_samples // 2, n_train * heads))
    seconds = PATCH_FIXED_S + PATCH_PER_IMAGE * n_all + PATCH_PER_IMAGE_EPOCH * head_images
    if cfg.architecture == "patch_auto" and cfg.search_budget_s:
        scratch = REFERENCE_PER_IMAGE_EPOCH["small_cnn"] * n_train * cfg.epochs
        seconds += max(0.0, min(scratch, cfg.search_budget_s - seconds))
    return seconds


def say(seconds):
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 5400:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"
