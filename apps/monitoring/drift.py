"""Drift of production inputs against the training profile (PSI and KS per statistic, on the
profile's own fixed bins) and of the model's embeddings against its training split (MMD²)."""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.utils import timezone
from scipy import stats as sps

from apps.core.jobs import JobStatus
from apps.profiling import imagestats
from apps.profiling.models import ProfileRun
from apps.serving.models import PredictionLog

from .models import DriftReport, PredictionRollup, ReferenceEmbedding
from .rollups import DRIFT_STATS, add_hist
from .services.embeddings import reference_embedding_start

MIN_REFERENCE_SHARE = 0.1  # PSI buckets: fixed bins merged until each holds >= 10% of the reference


def reference_profile(dataset_version):
    """(profile run, group key, {stat: hist}) of the version's latest succeeded profile: the train
    split when it has one, else all images. None when the version was never profiled."""
    run = (
        ProfileRun.objects.filter(version=dataset_version, status=JobStatus.SUCCEEDED)
        .exclude(profile={})
        .order_by("-finished_at", "-id")
        .first()
    )
    if run is None:
        return None
    groups = run.profile.get("groups") or {}
    key = "split:train" if "split:train" in groups else "all"
    group = groups.get(key) or {}
    bins = run.profile.get("bins") or imagestats.BINS
    hists = {}
    for stat in DRIFT_STATS:
        s = group.get(stat)
        # Compare like with like: only statistics binned with the very edges production uses.
        if s and s.get("n") and list(bins.get(stat, [])) == list(imagestats.BINS[stat]):
            hists[stat] = s["hist"]
    return run, key, hists


def psi_buckets(reference):
    """Groups of adjacent fixed bins each holding at least MIN_REFERENCE_SHARE of the reference.

    PSI on 30-odd fine bins is dominated by sampling noise in empty bins when samples are small;
    merging the same fixed bins on both sides keeps the comparison like with like."""
    ref = np.asarray(reference, dtype=np.float64)
    total = ref.sum()
    buckets, current, acc = [], [], 0.0
    for i, c in enumerate(ref):
        current.append(i)
        acc += c
        if total and acc / total >= MIN_REFERENCE_SHARE:
            buckets.append(current)
            current, acc = [], 0.0
    if current:
        if buckets:
            buckets[-1].extend(current)
        else:
            buckets.append(current)
    return buckets


def merged(hist, buckets):
    h = np.asarray(hist, dtype=np.float64)
    return [float(h[b].sum()) for b in buckets]


def compare(reference, production):
    """{"psi", "ks", "ks_p"} of production counts against reference counts on the same fixed bins."""
    buckets = psi_buckets(reference)
    psi = imagestats.psi(merged(reference, buckets), merged(production, buckets))
    ks = imagestats.ks_from_histograms(reference, production)
    n, m = float(sum(reference)), float(sum(production))
    n_eff = max(1, int(round(n * m / (n + m)))) if n and m else 1
    ks_p = float(sps.kstwo.sf(ks, n_eff)) if ks > 0 else 1.0
    return {"psi": round(psi, 6), "ks": round(ks, 6), "ks_p": ks_p}


def production_histograms(model_version, start, end):
    hists, n = {}, 0
    for row in (
        PredictionRollup.objects.filter(model_version=model_version, minute__gte=start, minute__lt=end)
        .values("count", "stats_hist")
        .iterator()
    ):
        n += row["count"]
        for stat, h in (row["stats_hist"] or {}).items():
            hists[stat] = add_hist(hists.get(stat), h)
    return n, hists


# Embeddings ------------------------------------------------------------------------------------------


def mmd2(x, y, bandwidth=None):
    """Unbiased squared maximum mean discrepancy with an RBF kernel (median-distance bandwidth)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or len(y) < 2:
        return None
    z = np.vstack([x, y])
    sq = np.sum(z * z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0)
    if bandwidth is None:
        off = d2[np.triu_indices(len(z), 1)]
        bandwidth = float(np.median(off)) or 1.0
    k = np.exp(-d2 / bandwidth)
    n, m = len(x), len(y)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    )


def production_embeddings(model_version, start, end, limit=500):

    # The newest rows of the day only (the (model_version, created_at) index): a day's log may hold
    # millions of rows, and serving may leave the embedding empty on most of them.
    qs = (
        PredictionLog.objects.filter(model_version=model_version, created_at__gte=start, created_at__lt=end)
        .order_by("-created_at")
        .values_list("embedding", flat=True)[: limit * 4]
    )
    return [emb for emb in qs if emb][:limit]


def reference_embeddings_for(model_version, *, start=True):
    """The stored training-split embeddings, or None (queuing their computation when ``start``)."""
    ref = ReferenceEmbedding.objects.filter(model_version=model_version).first()
    if ref and ref.status == JobStatus.SUCCEEDED:
        return ref.vectors
    if start and (ref is None or ref.status in (JobStatus.FAILED, JobStatus.CANCELLED)):
        reference_embedding_start(model_version=model_version)
    return None


# Reports -------------------------------------------------------------------------------------------


def drift_compute(*, model_version, day: dt.date | None = None):
    """Compute (or refresh) the version's drift report for one day from its rollups."""
    day = day or timezone.now().date()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    ref = reference_profile(model_version.dataset_version)
    n, prod = production_histograms(model_version, start, end)
    stats, reference = {}, {}
    if ref is not None:
        run, key, ref_hists = ref
        reference = {"profile_run": run.pk, "group": key, "n": int(sum(next(iter(ref_hists.values()), [])))}
        for stat, rh in ref_hists.items():
            if prod.get(stat) and sum(prod[stat]):
                stats[stat] = compare(rh, prod[stat])
    emb_mmd, emb_n = None, 0
    prod_emb = production_embeddings(model_version, start, end)
    if prod_emb:
        ref_emb = reference_embeddings_for(model_version)
        if ref_emb:
            emb_n = len(prod_emb)
            emb_mmd = mmd2(ref_emb, prod_emb)
    report, _ = DriftReport.objects.update_or_create(
        model_version=model_version,
        day=day,
        defaults=dict(
            project=model_version.registered_model.project,
            n=n,
            stats=stats,
            reference=reference,
            max_psi=max((s["psi"] for s in stats.values()), default=None),
            max_ks=max((s["ks"] for s in stats.values()), default=None),
            embedding_mmd=emb_mmd,
            embedding_n=emb_n,
        ),
    )
    return report
