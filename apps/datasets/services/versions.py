"""Dataset versions: labeled items frozen with their splits (seeded or from folders), in one
transaction."""

import hashlib
import json
import logging
import random

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from apps.core.audit import audit_record
from apps.core.text import clean_name

from ..ingest import (
    split_from_path,
)
from ..labels import label_reader
from ..models import (
    DatasetVersion,
    Item,
    VersionItem,
    VersionStatus,
)
from ..signals import version_ready

log = logging.getLogger(__name__)

# Dataset versions ---------------------------------------------------------------------------


def _fractions_clean(fractions):
    if not isinstance(fractions, dict) or set(fractions) != {"train", "val", "test"}:
        raise ValidationError({"fractions": "Give fractions for exactly train, val and test."})
    try:
        out = {k: float(fractions[k]) for k in ("train", "val", "test")}
    except (TypeError, ValueError):
        raise ValidationError({"fractions": "Fractions must be numbers."}) from None
    if any(v < 0 or v > 1 for v in out.values()) or abs(sum(out.values()) - 1.0) > 1e-6:
        raise ValidationError(
            {"fractions": f"Fractions must be between 0 and 1 and sum to 1 (they sum to {sum(out.values()):g})."}
        )
    if out["train"] <= 0:
        raise ValidationError({"fractions": "The train fraction must be above 0."})
    return out


def split_assign(rows, *, seed, fractions):
    """Stratified, seeded split: {sha256: split} for rows of (sha256, label).

    Per label, items are sorted by content hash and shuffled with a generator seeded by (seed,
    label), so the result depends only on the items, their labels and the seed. Counts per split
    are the largest-remainder rounding of n × fraction."""
    by_label = {}
    for sha, label in rows:
        by_label.setdefault(label, []).append(sha)
    out = {}
    for label in sorted(by_label):
        shas = sorted(by_label[label])
        random.Random(f"{seed}:{label}").shuffle(shas)
        n = len(shas)
        raw = {k: n * fractions[k] for k in ("train", "val", "test")}
        counts = {k: int(v) for k, v in raw.items()}
        for k in sorted(raw, key=lambda k: (-(raw[k] - counts[k]), ("train", "val", "test").index(k))):
            if sum(counts.values()) >= n:
                break
            counts[k] += 1
        i = 0
        for k in ("train", "val", "test"):
            for sha in shas[i : i + counts[k]]:
                out[sha] = k
            i += counts[k]
    return out


def content_hash(entries, *, seed, fractions, regions=None):
    """sha256 over the sorted (item sha256, label, split) lines, the seed and the fractions; an item
    with boxes (``regions``: {sha256: [boxes]}) adds them to its line (a version without boxes hashes
    as it always did)."""
    h = hashlib.sha256()
    h.update(json.dumps({"seed": seed, "fractions": fractions}, sort_keys=True).encode())
    regions = regions or {}
    for sha, label, split in sorted(entries):
        boxes = regions.get(sha)
        h.update(f"\n{sha}\t{label}\t{split}".encode())
        if boxes:
            h.update(("\t" + json.dumps(boxes, sort_keys=True)).encode())
    return h.hexdigest()


def dataset_version_create(
    *, project, user, name="", seed=0, fractions=None, note="", split_from="seeded"
) -> DatasetVersion:
    """Freeze every labeled item of ``project`` with its current label into a new ready version.

    ``split_from="folders"`` keeps the split the upload's folders give (``train/``, ``val/``,
    ``test/`` anywhere in an item's path); items under none of them are split seeded among
    themselves. Items without a label are left out (counted in ``counts['unlabeled']``). All in one
    transaction: a failure leaves no half-built version."""
    fractions = _fractions_clean(fractions or {"train": 0.7, "val": 0.15, "test": 0.15})
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise ValidationError({"seed": "The seed must be a whole number."}) from None
    name = clean_name(name)
    if len(name) > 120:
        raise ValidationError({"name": "At most 120 characters."})
    if split_from not in ("seeded", "folders"):
        raise ValidationError({"split_from": f"split_from must be seeded or folders, not {split_from!r}."})
    rows = label_reader().current(project)
    labeled = [(pk, sha, label) for pk, sha, label, _ in rows]
    boxes = label_reader().regions(project)  # {item id: [boxes]}
    if not labeled:
        raise ValidationError({"items": "No labeled items yet: label some images before freezing a version."})
    unlabeled = Item.objects.filter(project=project).count() - len(labeled)
    given = {sha: split_from_path(path) for _, sha, _, path in rows} if split_from == "folders" else {}
    if split_from == "folders" and not any(given.values()):
        raise ValidationError(
            {"split_from": "No item sits under a train/, val/ or test/ folder; freeze with a seeded split instead."}
        )
    splits = split_assign(
        [(sha, label) for _, sha, label in labeled if not given.get(sha)], seed=seed, fractions=fractions
    )
    splits.update({sha: s for sha, s in given.items() if s})
    counts = {s: {} for s in ("train", "val", "test")}
    for _, sha, label in labeled:
        counts[splits[sha]][label] = counts[splits[sha]].get(label, 0) + 1
    counts["unlabeled"] = unlabeled
    with transaction.atomic():
        number = (
            DatasetVersion.objects.select_for_update().filter(project=project).aggregate(m=Max("number"))["m"] or 0
        ) + 1
        version = DatasetVersion.objects.create(
            project=project,
            number=number,
            name=name,
            note=note,
            created_by=user,
            seed=seed,
            fractions=fractions,
            split_from=split_from,
            status=VersionStatus.BUILDING,
        )
        VersionItem.objects.bulk_create(
            [
                VersionItem(version=version, item_id=pk, split=splits[sha], label=label, regions=boxes.get(pk, []))
                for pk, sha, label in labeled
            ],
            batch_size=2000,
        )
        version.content_hash = content_hash(
            [(sha, label, splits[sha]) for _, sha, label in labeled],
            seed=seed,
            fractions=fractions if split_from == "seeded" else {**fractions, "split_from": split_from},
            regions={sha: boxes[pk] for pk, sha, _ in labeled if pk in boxes},
        )
        version.item_count, version.counts = len(labeled), counts
        version.classes = sorted({label for _, _, label in labeled})
        version.status = VersionStatus.READY
        version.save()
        audit_record(
            actor=user,
            action="dataset_version.created",
            project=project,
            obj=version,
            data={
                "number": number,
                "items": len(labeled),
                "content_hash": version.content_hash,
                "split_from": split_from,
            },
        )
        version_ready.send(sender=DatasetVersion, version=version, user=user)  # profiling starts its profile
    return version
