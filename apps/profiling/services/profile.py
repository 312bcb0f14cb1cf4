"""The profile of a version built from its measured images: groups by class and split, outliers,
samples, duplicates, labeler agreement."""

import logging

from apps.datasets.models import VersionItem
from apps.labeling.agreement import agreement_summary, group_labels
from apps.labeling.models import Annotation

from .. import assertions as checks
from .. import imagestats
from ..models import ItemStats

log = logging.getLogger(__name__)

OUTLIERS = 8
SAMPLES_PER_CLASS = 12
MAX_GROUP_ITEMS = 40


# Labeler agreement hook --------------------------------------------------------------------------


def agreement_for_version(version):
    """Labeler agreement (kappa) over the version's items: labeling's annotations of those items fed to
    its ``agreement_summary(group_labels(rows), classes)`` (Cohen's kappa for two labelers, Fleiss' for
    more), the way its own agreement page counts them. None when nothing is measurable (then the
    ``agreement`` check fails with a clear message and suggestions leave it out)."""
    try:
        rows = Annotation.objects.filter(
            item__version_entries__version=version, status__in=("submitted", "accepted", "rejected")
        ).values_list("item_id", "user__username", "label_class__name")
        value = agreement_summary(group_labels(rows), list(version.classes or []))
    except Exception:  # a bug over there must not fail a profile
        log.exception("labeling agreement over annotations failed")
        return None
    if isinstance(value, dict):
        value = next((value[k] for k in ("overall", "value", "kappa") if value.get(k) is not None), None)
    return float(value) if isinstance(value, (int, float)) else None


# The profile -----------------------------------------------------------------------------------


class _Groups:
    """Union-find over row indices."""

    def __init__(self, n):
        self.parent = list(range(n))

    def find(self, i):
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self):
        out = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return [g for g in out.values() if len(g) > 1]


def _ref(row, name_of, value=None):
    d = {"item": row.item_id, "split": row.split, "label": row.label, "name": name_of.get(row.item_id, "")}
    if value is not None:
        d["value"] = round(float(value), 4)
    return d


def _duplicates(rows, name_of):
    readable = [r for r in rows if r.readable]
    exact = _Groups(len(readable))
    first = {}
    for i, r in enumerate(readable):
        for key in (("f", r.sha256), ("p", r.pixel_sha256)):
            if key[1]:
                if key in first:
                    exact.union(first[key], i)
                else:
                    first[key] = i
    exact_groups = exact.groups()
    near = _Groups(len(readable))
    dist = {}
    for i, j, d in imagestats.near_duplicate_pairs([r.phash for r in readable]):
        if exact.find(i) == exact.find(j):
            continue
        near.union(i, j)
        dist[(i, j)] = d
    near_groups = near.groups()

    def describe(kind, idx):
        splits = sorted({readable[i].split for i in idx})
        labels = sorted({readable[i].label for i in idx})
        d = {
            "kind": kind,
            "size": len(idx),
            "splits": splits,
            "labels": labels,
            "cross_split": len(splits) > 1,
            "label_conflict": len(labels) > 1,
            "items": [_ref(readable[i], name_of) for i in idx[:MAX_GROUP_ITEMS]],
        }
        if kind == "near":
            members = set(idx)
            d["max_distance"] = max((v for (a, b), v in dist.items() if a in members and b in members), default=0)
        return d

    ex = [describe("exact", g) for g in exact_groups]
    nr = [describe("near", g) for g in near_groups]
    key = lambda g: (not g["cross_split"], -g["size"])  # noqa: E731  leakage first
    return {
        "exact": sorted(ex, key=key),
        "near": sorted(nr, key=key),
        "max_distance_bits": imagestats.NEAR_DUPLICATE_BITS,
        "hash_bits": imagestats.PHASH_SIZE**2,
        "cross_split_exact": sum(g["cross_split"] for g in ex),
        "cross_split_near": sum(g["cross_split"] for g in nr),
        "exact_images": sum(g["size"] for g in ex) - len(ex),
        "near_groups": len(nr),
    }


def profile_build(run):
    """The compact profile of a run from its ItemStats: counts, fixed-bin histograms and quantiles per
    statistic for every class, split and split×class, categorical counts, duplicates, outliers,
    unreadable files, label completeness and agreement. No pixels."""
    version = run.version
    rows = list(ItemStats.objects.filter(run=run).order_by("item_id"))
    name_of = dict(VersionItem.objects.filter(version=version).values_list("item_id", "item__original_name"))
    classes = list(version.classes or sorted({r.label for r in rows if r.label}))
    splits = [s for s in checks.SPLITS if any(r.split == s for r in rows)]

    counts = {}
    for r in rows:
        counts.setdefault(r.split, {}).setdefault(r.label, 0)
        counts[r.split][r.label] += 1

    def keys_of(r):
        return ("all", f"class:{r.label}", f"split:{r.split}", f"{r.split}/{r.label}")

    members = {}
    for r in rows:
        if r.readable:
            for k in keys_of(r):
                members.setdefault(k, []).append(r)
    groups, categorical = {}, {}
    for k, rs in members.items():
        groups[k] = {
            stat: imagestats.summary(stat, [getattr(r, stat) for r in rs]) for stat in imagestats.NUMERIC_STATS
        }
        cat = {"mode": {}, "channels": {}, "format": {}, "size": {}}
        for r in rs:
            for name, val in (
                ("mode", r.mode),
                ("channels", str(r.channels)),
                ("format", r.format),
                ("size", f"{r.width}x{r.height}"),
            ):
                cat[name][val] = cat[name].get(val, 0) + 1
        categorical[k] = cat

    readable = [r for r in rows if r.readable]
    outliers = {
        "darkest": [_ref(r, name_of, r.brightness) for r in sorted(readable, key=lambda r: r.brightness)[:OUTLIERS]],
        "brightest": [_ref(r, name_of, r.brightness) for r in sorted(readable, key=lambda r: -r.brightness)[:OUTLIERS]],
        "blurriest": [_ref(r, name_of, r.sharpness) for r in sorted(readable, key=lambda r: r.sharpness)[:OUTLIERS]],
        "smallest": [
            {**_ref(r, name_of, r.width * r.height), "size": f"{r.width}×{r.height}"}
            for r in sorted(readable, key=lambda r: (r.width * r.height, r.bytes or 0))[:OUTLIERS]
        ],
    }
    samples = {}
    for c in classes:
        rs = [r for r in readable if r.label == c]
        step = max(1, len(rs) // SAMPLES_PER_CLASS)
        samples[c] = [_ref(r, name_of) for r in rs[::step][:SAMPLES_PER_CLASS]]

    valid = set(classes)
    labeled = sum(1 for r in rows if r.label and (not valid or r.label in valid))
    return {
        "schema": 1,
        "version": {"id": version.pk, "number": version.number},
        "bins": imagestats.BINS,
        "log_scale": sorted(imagestats.LOG_SCALE),
        "quantile_levels": list(imagestats.QUANTILE_LEVELS),
        "phash": {"size": imagestats.PHASH_SIZE, "near_bits": imagestats.NEAR_DUPLICATE_BITS},
        "classes": classes,
        "splits": splits,
        "total": len(rows),
        "readable": len(readable),
        "counts": counts,
        "groups": groups,
        "categorical": categorical,
        "duplicates": _duplicates(rows, name_of),
        "unreadable": [{**_ref(r, name_of), "error": r.error} for r in rows if not r.readable],
        "label_completeness": (labeled / len(rows)) if rows else None,
        "unlabeled": len(rows) - labeled,
        "agreement": agreement_for_version(version),
        "outliers": outliers,
        "samples": samples,
    }
