"""Every write of the training app, one concern per module, re-exported here so callers import from
``apps.training.services`` as before:

- ``checks``: what a run needs before it may start (hyperparameters, a ready and profiled version, the
  default recipe, an uploaded base model);
- ``runs``: runs launched, estimated, rerun and cancelled, and a sweep settled from its runs;
- ``execute``: a run executed by a worker (splits from storage and the decoded cache, progress,
  heartbeat, cancellation, artifacts and metrics);
- ``sweeps``: trials drawn and launched;
- ``review``: misclassified test images sent to labeling.
"""

from .checks import (
    MAX_BASE_MODEL_BYTES,
    MAX_SWEEP_TRIALS,
    RANGE_FIELDS,
    SWEEP_METRICS,
    base_model_store,
    config_clean,
    default_recipe,
    recipe_reason,
    version_problems,
)
from .execute import HEARTBEAT_EVERY_SECONDS, code_version, decoded_cache, storage_sources, training_run_execute
from .review import misclassified_send_to_review
from .runs import sweep_refresh, training_run_cancel, training_run_create, training_run_estimate, training_run_rerun
from .sweeps import grid_size, is_range, sweep_cancel, sweep_create, sweep_trials

__all__ = [
    "HEARTBEAT_EVERY_SECONDS",
    "MAX_BASE_MODEL_BYTES",
    "MAX_SWEEP_TRIALS",
    "RANGE_FIELDS",
    "SWEEP_METRICS",
    "base_model_store",
    "code_version",
    "config_clean",
    "decoded_cache",
    "default_recipe",
    "grid_size",
    "is_range",
    "misclassified_send_to_review",
    "recipe_reason",
    "storage_sources",
    "sweep_cancel",
    "sweep_create",
    "sweep_refresh",
    "sweep_trials",
    "training_run_cancel",
    "training_run_create",
    "training_run_estimate",
    "training_run_execute",
    "training_run_rerun",
    "version_problems",
]
