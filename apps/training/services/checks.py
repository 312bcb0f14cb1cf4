"""What a run needs before it may start: its hyperparameters checked, its dataset version ready and
profiled, the default recipe, an uploaded base model stored."""

import logging
import os
import tempfile

from django.core.exceptions import ValidationError
from django.db.models import Count

from apps.core.storage import blob_put
from apps.datasets.models import DatasetVersion, VersionStatus
from apps.profiling.services import gate_check

from ..ml.config import PATCH_RECIPES, TrainConfig, config_errors

log = logging.getLogger(__name__)

MAX_BASE_MODEL_BYTES = 200 * 1024 * 1024
MAX_SWEEP_TRIALS = 32
RANGE_FIELDS = ("learning_rate", "dropout", "batch_size", "epochs", "image_size", "top_k")
SWEEP_METRICS = ("val_accuracy", "val_loss")

# Checks --------------------------------------------------------------------------------------------


def config_clean(data):
    """Defaults + ``data`` as a checked TrainConfig dict, or ValidationError naming each bad field."""
    errors = config_errors(data or {})
    if errors:
        raise ValidationError({k: [v] for k, v in errors.items()})
    return TrainConfig.from_dict({**TrainConfig().to_dict(), **(data or {})}).to_dict()


def version_problems(version):
    """Why ``version`` cannot be trained on (empty list: it can)."""
    if version.status != VersionStatus.READY:
        return [
            f"Dataset version v{version.number} is {version.status}, not ready: only a ready (frozen) "
            "version can be trained on."
        ]
    problems = []
    gate = gate_check(version)
    if not gate.passed:
        problems.append(
            f"Dataset version v{version.number} fails its blocking data-quality assertions: "
            + "; ".join(gate.failures or ["see its profile"])
        )
    train_counts = dict(
        version.entries.filter(split="train").values("label").annotate(n=Count("id")).values_list("label", "n")
    )
    empty = [c for c in version.classes if not train_counts.get(c)]
    if empty:
        problems.append(
            f"Class {', '.join(repr(c) for c in empty)} has no training images in v{version.number}; "
            "every class needs at least one."
        )
    if len(version.classes) < 2:
        problems.append(
            f"Dataset version v{version.number} has {len(version.classes)} class; training needs two or more."
        )
    return problems


def default_recipe(classes=None):
    """The hyperparameters a run gets for what it does not set: the patch-feature defect finder on
    EfficientNet-Lite0 for two classes when its weights are in the store (it clears the screw project's
    0.95 bar, bench/default_recipe.py), the small CNN otherwise."""
    from ..backbone_store import stored_names
    from ..ml.recipes import DEFAULT_RECIPE, FALLBACK_RECIPE

    two = classes is None or len(classes) == 2
    if two and DEFAULT_RECIPE["backbone"] in stored_names():
        return dict(DEFAULT_RECIPE)
    return dict(FALLBACK_RECIPE)


def recipe_reason(recipe):
    """Why the portal picked ``recipe`` (shown on the run page)."""
    from ..ml.recipes import DEFAULT_RECIPE

    if recipe.get("architecture") == DEFAULT_RECIPE["architecture"]:
        return (
            "The portal's default, an automatic search within a time budget (10 minutes unless you set "
            "another): one pass of EfficientNet-Lite0 patch features over the object at full resolution, the "
            "patch classifier, the anomaly detector and the two together fitted on them, then a small CNN from "
            "scratch in what is left of the budget; the candidate with the best validation accuracy is kept. On the 480 screw photographs this reaches mean test accuracy "
            "0.968 and macro F1 0.955 over three split seeds, against 0.903 for the small CNN from scratch "
            "(docs/benchmarks.md)."
        )
    return (
        "The portal's fallback: the small CNN from scratch, because the default recipe's EfficientNet-Lite0 "
        "weights are not in the store or the version does not have exactly two classes."
    )


def _checked(project, dataset_version, config):
    """(version, config) when both pass; otherwise every problem of both, by field, at once.

    A config that names no architecture starts from the portal's default recipe."""
    from ..backbone_store import missing_weights_error

    errors, version = {}, None
    try:
        version = _version_for(project, dataset_version)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    config = dict(config or {})
    if "architecture" not in config:
        recipe = default_recipe(version.classes if version else None)
        extra = {**(config.get("extra") or {}), "recipe": recipe_reason(recipe)}
        config = {**recipe, **config, "extra": extra}
    try:
        config = config_clean(config)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    else:
        if config["architecture"] in PATCH_RECIPES:
            problem = missing_weights_error(config["backbone"])
            if problem:
                errors["backbone"] = [problem]
    if errors:
        raise ValidationError(errors)
    return version, config


def _version_for(project, dataset_version):
    version = dataset_version
    if not isinstance(version, DatasetVersion):
        version = DatasetVersion.objects.filter(project=project, pk=dataset_version).first()
    if version is None or version.project_id != project.pk:
        raise ValidationError({"dataset_version": ["No such dataset version in this project."]})
    problems = version_problems(version)
    if problems:
        raise ValidationError({"dataset_version": problems})
    return version


def base_model_store(uploaded, *, config):
    """Check an uploaded .keras file (loads with safe_mode, input matches the run) and store it."""
    from ..ml import builders

    name = getattr(uploaded, "name", "model.keras")
    if not name.lower().endswith(".keras"):
        raise ValidationError({"base_model": [f"{name}: upload a Keras model saved as a .keras file."]})
    if uploaded.size > MAX_BASE_MODEL_BYTES:
        raise ValidationError(
            {"base_model": [f"{name}: {uploaded.size:,} bytes is over the {MAX_BASE_MODEL_BYTES // 2**20} MiB limit."]}
        )
    data = uploaded.read()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "base.keras")
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            h, w, c = builders.base_model_input(path)
        except builders.BaseModelError as exc:
            raise ValidationError({"base_model": [f"{name}: {exc}"]}) from exc
    want = (config["image_size"], config["image_size"], config["channels"])
    if (h, w, c) != want and None not in (h, w, c):
        raise ValidationError(
            {
                "base_model": [
                    f"{name} takes {h}x{w} images with {c} channel(s); set input size {h} and channels {c} to fine-tune it."
                ]
            }
        )
    return blob_put(data, ext="keras", content_type="application/octet-stream")
