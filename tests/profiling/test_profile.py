"""Profiling a version end to end through the real services, storage and database."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.jobs import JobStatus
from apps.core.reaper import _REAPABLE, reap_stuck_jobs
from apps.datasets.models import Split
from apps.profiling import imagestats, services
from apps.profiling.models import ItemStats, ProfileRun
from apps.profiling.services import runs
from tests.factories import make_item, make_version

from .conftest import profile_now


def names(refs):
    return sorted(r["name"] for r in refs)


def test_profile_finds_exactly_the_planted_oddities(known, people):
    version, items = known
    run = profile_now(version, people["ds"])
    assert run.status == JobStatus.SUCCEEDED and run.processed == run.total == version.entries.count() == 24
    p = run.profile
    # Exact duplicates: the one picture stored as two different files, across train and test.
    assert [names(g["items"]) for g in p["duplicates"]["exact"]] == [["dup-copy.png", "dup-original.png"]]
    g = p["duplicates"]["exact"][0]
    assert g["cross_split"] and g["splits"] == ["test", "train"] and p["duplicates"]["cross_split_exact"] == 1
    assert p["duplicates"]["near"] == [] and p["duplicates"]["cross_split_near"] == 0
    # The blank image is the darkest and the blurriest, then the blurred one.
    assert p["outliers"]["darkest"][0]["name"] == "blank.png" and p["outliers"]["darkest"][0]["value"] == 0
    assert [r["name"] for r in p["outliers"]["blurriest"][:2]] == ["blank.png", "blurred.png"]
    # The unreadable file, and only it.
    assert [u["name"] for u in p["unreadable"]] == ["broken.png"] and p["readable"] == 23
    assert p["unreadable"][0]["error"].startswith(("OSError", "UnidentifiedImageError"))
    # Label completeness: one entry of 24 carries no label.
    assert p["unlabeled"] == 1 and p["label_completeness"] == pytest.approx(23 / 24)
    assert p["agreement"] is None  # labeling offers no agreement yet


def test_profile_counts_histograms_and_quantiles_per_class_and_split(known, people):
    version, items = known
    p = profile_now(version, people["ds"]).profile
    assert p["counts"]["train"] == {"good": 8, "defect": 5, "": 1}
    assert p["counts"]["val"] == {"good": 3, "defect": 2} and p["counts"]["test"] == {"good": 3, "defect": 2}
    assert p["classes"] == ["defect", "good"] and p["splits"] == ["train", "val", "test"]
    assert p["bins"] == imagestats.BINS and p["quantile_levels"] == list(imagestats.QUANTILE_LEVELS)
    for key in (
        "all",
        "class:good",
        "class:defect",
        "split:train",
        "split:val",
        "split:test",
        "train/good",
        "test/defect",
    ):
        for stat in imagestats.NUMERIC_STATS:
            s = p["groups"][key][stat]
            assert sum(s["hist"]) == s["n"] and len(s["hist"]) == len(imagestats.BINS[stat]) - 1
            assert len(s["quantiles"]) == len(imagestats.QUANTILE_LEVELS)
    assert p["groups"]["all"]["brightness"]["n"] == 23
    assert p["groups"]["class:defect"]["brightness"]["n"] == 9 and p["groups"]["train/defect"]["brightness"]["n"] == 5
    # Monitoring rebuilds the same histogram from raw values with the exposed function.
    run = ProfileRun.objects.get(version=version)
    values = list(ItemStats.objects.filter(run=run, readable=True, label="good").values_list("sharpness", flat=True))
    assert imagestats.histogram("sharpness", values) == p["groups"]["class:good"]["sharpness"]["hist"]
    assert p["categorical"]["all"]["size"] == {"64x64": 23} and p["categorical"]["all"]["mode"] == {"L": 23}
    assert set(p["samples"]) == {"defect", "good"} and p["samples"]["good"]


def test_profile_of_real_screws_matches_a_plain_loop(project, screws, people):
    root, rows = screws
    picked = [r for r in rows if r["label"] == "good"][:6] + [r for r in rows if r["label"] == "defect"][:4]
    entries = []
    for k, r in enumerate(picked):
        data = (root / r["path"]).read_bytes()
        entries.append((make_item(project, data, name=r["path"]), "train" if k % 2 else "test", r["label"]))
    run = profile_now(make_version(project, entries), people["ds"])
    p = run.profile
    assert p["categorical"]["all"]["size"] == {"1024x1024": 10} and p["categorical"]["all"]["mode"] == {"L": 10}
    assert p["unreadable"] == [] and p["duplicates"]["exact"] == []
    direct = [imagestats.stats_from_bytes((root / r["path"]).read_bytes()) for r in picked]
    for stat in ("brightness", "contrast", "sharpness", "entropy", "bytes"):
        assert p["groups"]["all"][stat]["hist"] == imagestats.histogram(stat, [d[stat] for d in direct])
        assert p["groups"]["all"][stat]["mean"] == pytest.approx(sum(d[stat] for d in direct) / 10)
    stored = {s.item.original_name: s for s in ItemStats.objects.filter(run=run).select_related("item")}
    for r, d in zip(picked, direct):
        assert stored[r["path"]].phash == d["phash"] and stored[r["path"]].bytes == int(r["bytes"])


def test_start_dispatches_to_the_profile_queue_once(known, people, django_capture_on_commit_callbacks):
    version, _ = known
    with django_capture_on_commit_callbacks() as callbacks:
        run = services.profile_run_start(version=version, user=people["ds"])
        again = services.profile_run_start(version=version, user=people["ds"])
    assert again.pk == run.pk and len(callbacks) == 1 and run.status == JobStatus.QUEUED
    assert run.total == 24
    from mlportal.celery import app

    assert app.amqp.router.route({}, "apps.profiling.tasks.profile_run_execute")["queue"].name == "profile"


def test_only_ready_versions_are_profiled(project, people):
    version = make_version(project, [(make_item(project), "train", "good")], status="building")
    with pytest.raises(ValidationError, match="building"):
        services.profile_run_start(version=version, user=people["ds"])


def test_retry_skips_measured_images_and_never_duplicates(known, people):
    version, items = known
    run = services.profile_run_start(version=version, user=people["ds"])
    # An earlier attempt measured two images, then the worker died (the run stayed running).
    ProfileRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, started_at=timezone.now())
    first = list(version.entries.select_related("item__blob")[:2])
    for e in first:
        row = runs._measure(e)
        row.run_id = run.pk
        row.brightness = -1.0  # a marker: a retry must keep, not re-measure, these rows
        row.save()
    services.profile_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED
    assert ItemStats.objects.filter(run=run).count() == 24
    assert ItemStats.objects.filter(run=run, brightness=-1.0).count() == 2
    services.profile_run_execute(run_id=run.pk)  # a duplicate delivery of the task changes nothing
    assert ItemStats.objects.filter(run=run).count() == 24 and ProfileRun.objects.filter(version=version).count() == 1


def test_cancel_stops_a_running_profile(known, people, monkeypatch):
    version, _ = known
    run = services.profile_run_start(version=version, user=people["ds"])
    monkeypatch.setattr(runs, "BATCH", 2)
    real = runs._measure
    calls = []

    def measure_then_cancel(entry):
        calls.append(entry)
        if len(calls) == 3:
            services.profile_run_cancel(run=ProfileRun.objects.get(pk=run.pk), user=people["ds"])
        return real(entry)

    monkeypatch.setattr(runs, "_measure", measure_then_cancel)
    services.profile_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and len(calls) == 4 and run.profile == {}
    with pytest.raises(ValidationError, match="cancelled"):
        services.profile_run_cancel(run=run, user=people["ds"])


def test_failure_is_recorded_on_the_row(known, people, monkeypatch):
    version, _ = known
    run = services.profile_run_start(version=version, user=people["ds"])

    def boom(run):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(runs, "profile_build", boom)
    with pytest.raises(RuntimeError):
        services.profile_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and "disk on fire" in run.error and run.finished_at


def test_reaper_fails_a_profile_whose_heartbeat_stopped(known, people):
    version, _ = known
    assert ProfileRun in _REAPABLE
    run = services.profile_run_start(version=version, user=people["ds"])
    old = timezone.now() - timedelta(hours=1)
    ProfileRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, started_at=old, heartbeat_at=old)
    assert reap_stuck_jobs() >= 1
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and "heartbeat" in run.error


def test_heartbeat_and_progress_are_written_while_running(known, people, monkeypatch):
    version, _ = known
    run = services.profile_run_start(version=version, user=people["ds"])
    monkeypatch.setattr(runs, "BATCH", 5)
    seen = []
    real = runs._save_batch

    def spy(run_, rows, processed):
        ok = real(run_, rows, processed)
        seen.append(ProfileRun.objects.values_list("processed", "heartbeat_at").get(pk=run.pk))
        return ok

    monkeypatch.setattr(runs, "_save_batch", spy)
    services.profile_run_execute(run_id=run.pk)
    assert [s[0] for s in seen] == [5, 10, 15, 20, 24] and all(s[1] for s in seen)


def test_agreement_is_none_without_annotations(known):
    version, _ = known
    assert services.agreement_for_version(version) is None


def test_near_duplicates_across_splits(project, people):
    import io

    from PIL import Image, ImageEnhance

    from .conftest import smooth_png

    base = smooth_png(21, size=(96, 96))
    with Image.open(io.BytesIO(base)) as im:
        buf = io.BytesIO()
        ImageEnhance.Brightness(im).enhance(1.04).save(buf, format="PNG")  # a slightly brighter re-shot
    entries = [
        (make_item(project, base, name="a.png"), Split.TRAIN, "good"),
        (make_item(project, buf.getvalue(), name="a-bright.png"), Split.VAL, "good"),
    ]
    entries += [(make_item(project, smooth_png(30 + k, size=(96, 96))), Split.TRAIN, "good") for k in range(4)]
    p = profile_now(make_version(project, entries), people["ds"]).profile
    assert p["duplicates"]["exact"] == []
    assert [names(g["items"]) for g in p["duplicates"]["near"]] == [["a-bright.png", "a.png"]]
    assert p["duplicates"]["cross_split_near"] == 1


def test_an_empty_version_profiles_and_fails_its_checks(project, people):
    from tests.factories import label_classes

    label_classes(project)
    version = make_version(project, [])
    version.classes = ["defect", "good"]
    version.save(update_fields=["classes"])
    run = profile_now(version, people["ds"])
    assert run.status == JobStatus.SUCCEEDED and run.total == 0 and run.profile["groups"] == {}
    assert [f.split(":")[0] for f in services.gate_check(version).failures] == [
        "label_completeness",
        "min_images_per_class",
    ]


def test_agreement_from_labeling_annotations(project, people):
    """Labeling's annotations: kappa over the version's items only."""
    from apps.labeling import agreement, models
    from tests.factories import label_classes

    good, defect = label_classes(project)
    a, b = people["labeler"], people["reviewer"]
    items = [make_item(project) for _ in range(8)]
    votes_a = [good, good, defect, defect, good, defect, good, good]
    votes_b = [good, defect, defect, defect, good, defect, good, defect]
    for item, va, vb in zip(items, votes_a, votes_b):
        models.Annotation.objects.create(item=item, user=a, label_class=va)
        models.Annotation.objects.create(item=item, user=b, label_class=vb)
    outside = make_item(project)  # labeled in disagreement but not in the version
    models.Annotation.objects.create(item=outside, user=a, label_class=good)
    models.Annotation.objects.create(item=outside, user=b, label_class=defect)
    version = make_version(project, [(i, "train", va.name) for i, va in zip(items, votes_a)])
    expected = agreement.cohen_kappa([v.name for v in votes_a], [v.name for v in votes_b])
    assert services.agreement_for_version(version) == pytest.approx(expected)
    assert profile_now(version, people["ds"]).profile["agreement"] == pytest.approx(expected)


def test_the_celery_task_takes_an_id_and_runs_the_service(known, people):
    from apps.profiling.tasks import profile_run_execute

    version, _ = known
    run = services.profile_run_start(version=version, user=people["ds"])
    assert profile_run_execute.name == "apps.profiling.tasks.profile_run_execute"
    profile_run_execute.apply(args=[run.pk]).get()
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED and run.processed == 24
