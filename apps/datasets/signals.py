"""Signals the data stage sends; later stages connect to them (datasets imports none of them)."""

from django.dispatch import Signal

# Sent inside the transaction that makes a dataset version ready (frozen), with ``version`` and
# ``user``. Profiling starts the version's profile (the data-quality gate needs it).
version_ready = Signal()

# Sent inside the transaction that records a batch of imported files, with ``job`` and ``labels``:
# [(item, label name)] for every file whose folder gave a label. Labeling gives each item that has
# no label yet its first one (labels from folders are a labeling step on the imported items).
items_imported = Signal()
