"""Every write of the labeling app, one concern per module, re-exported here so callers import from
``apps.labeling.services`` as before:

- ``schema``: classes (names, colours, hotkeys) and the project's labeling settings;
- ``labels``: an item's current label — the contract other stages call (``item_label_set``,
  ``item_labels_add``, ``label_class_get_or_create``) — its regions, bulk labels, labels from folders;
- ``queue``: tasks, leases, skips, and ``queue_for_review`` (training and monitoring ask for a second
  look at an item);
- ``annotations``: labelers' annotations, submit and undo, settling an item when enough agree;
- ``review``: the reviewer's final word and accepting or rejecting one labeler's annotation.
"""

from .annotations import annotation_submit, annotation_undo
from .labels import (
    LabelConflict,
    folder_labels_apply,
    item_label_clear,
    item_label_set,
    item_labels_add,
    labels_bulk_set,
    regions_clean,
)
from .queue import COUNTED, item_skip, queue_for_review, queue_next, queue_repair, queue_sync
from .review import annotation_review, review_resolve
from .schema import (
    COLOR_RE,
    HOTKEY_RE,
    MAX_OVERLAP,
    RESERVED_KEYS,
    label_class_get_or_create,
    label_schema_update,
    labeling_settings_for,
)

__all__ = [
    "COLOR_RE",
    "COUNTED",
    "HOTKEY_RE",
    "MAX_OVERLAP",
    "RESERVED_KEYS",
    "LabelConflict",
    "annotation_review",
    "annotation_submit",
    "annotation_undo",
    "folder_labels_apply",
    "item_label_clear",
    "item_label_set",
    "item_labels_add",
    "item_skip",
    "label_class_get_or_create",
    "label_schema_update",
    "labeling_settings_for",
    "labels_bulk_set",
    "queue_for_review",
    "queue_next",
    "queue_repair",
    "queue_sync",
    "regions_clean",
    "review_resolve",
]
