"""The data-quality gate the training app calls before it launches a run."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.core.models import AuditEvent
from apps.profiling import services
from apps.profiling.models import GateOverride
from apps.profiling.services import GateResult, gate_check, gate_override
from tests.factories import make_item, make_version

from .conftest import profile_now


def clean_version(project):
    from .conftest import smooth_png

    entries = [
        (make_item(project, smooth_png(200 + k)), "train" if k < 4 else "test", "good" if k % 2 else "defect")
        for k in range(6)
    ]
    return make_version(project, entries)


def test_a_version_without_a_succeeded_profile_is_refused(project, people):
    v = clean_version(project)
    g = gate_check(v)
    assert isinstance(g, GateResult) and not g.passed and g.profile_run is None
    assert g.failures == [f"no_profile: version v{v.number} has no succeeded profile; profile it first."]
    services.profile_run_start(version=v, user=people["ds"])
    assert "(the latest is queued)" in gate_check(v).failures[0]


def test_a_clean_version_passes_with_the_default_checks(project, people):
    v = clean_version(project)
    run = profile_now(v, people["ds"])
    g = gate_check(v)
    assert g.passed and g.failures == [] and g.profile_run == run and g.override is None


def test_failed_blocking_checks_refuse_and_are_named(known, people):
    version, _ = known
    run = profile_now(version, people["ds"])
    g = gate_check(version)
    assert not g.passed and g.profile_run == run
    assert [f.split(":")[0] for f in g.failures] == ["no_unreadable", "no_cross_split_duplicates", "label_completeness"]
    assert "broken.png" in g.failures[0] and "measured 1, bound ≤ 0" in g.failures[0]
    assert "Refused by the data-quality gate" in g.message


def test_failed_warnings_do_not_block(known, people):
    version, _ = known
    services.assertions_replace(
        project=version.project,
        user=people["ds"],
        document={"assertions": [{"check": "no_unreadable", "severity": "warning"}, {"check": "single_mode"}]},
    )
    profile_now(version, people["ds"])
    g = gate_check(version)
    assert g.passed and g.failures == [] and g.warnings[0].startswith("no_unreadable")


def test_the_latest_succeeded_profile_counts(known, people):
    version, _ = known
    profile_now(version, people["ds"])
    assert not gate_check(version).passed
    services.assertions_replace(project=version.project, user=people["ds"], document={"assertions": []})
    newer = profile_now(version, people["ds"])
    g = gate_check(version)
    assert g.passed and g.profile_run == newer


def test_override_needs_a_data_scientist_and_a_reason(known, people):
    version, _ = known
    profile_now(version, people["ds"])
    for who in ("pm", "manager", "labeler", "outsider"):
        with pytest.raises(PermissionDenied):
            gate_override(version=version, user=people[who], reason="because the deadline is near")
    with pytest.raises(ValidationError, match="reason"):
        gate_override(version=version, user=people["ds"], reason="  ok ")
    assert not gate_check(version).passed and not GateOverride.objects.exists()


def test_override_lets_the_version_through_and_is_audited(known, people):
    version, _ = known
    profile_now(version, people["ds"])
    failures = gate_check(version).failures
    ov = gate_override(
        version=version, user=people["ds"], reason="The broken file is excluded by the loader; leak checked by hand."
    )
    g = gate_check(version)
    assert g.passed and g.override == ov and g.failures == failures and "Passed by override" in g.message
    ev = AuditEvent.objects.get(action="profiling.gate_override")
    assert ev.actor == people["ds"] and ev.reason.startswith("The broken file") and ev.data["failures"] == failures
    assert ev.object_id == str(version.pk)


def test_override_of_a_passing_version_is_refused(project, people):
    v = clean_version(project)
    profile_now(v, people["ds"])
    with pytest.raises(ValidationError, match="nothing to override"):
        gate_override(version=v, user=people["ds"], reason="just in case, for the record")


def test_override_without_any_profile(project, people):
    v = clean_version(project)
    gate_override(version=v, user=people["ds"], reason="Urgent retrain; profile runs overnight.")
    assert gate_check(v).passed


def test_the_gate_shows_running_while_its_profile_runs(client, project, people):
    from apps.profiling.models import ProfileRun

    v = clean_version(project)
    assert gate_check(v).state == "refused"
    run = services.profile_run_start(version=v, user=people["ds"])
    g = gate_check(v)
    assert (g.passed, g.state, g.running.pk) == (False, "running", run.pk)
    assert "Waiting for the data-quality gate" in g.message and "wait for it to finish" in g.failures[0]
    client.force_login(people["ds"])
    html = client.get(f"/p/{project.slug}/profile/").content.decode()
    assert "profile running" in html and ">refused<" not in html
    ProfileRun.objects.filter(pk=run.pk).update(status="failed")
    assert gate_check(v).state == "refused"
    html = client.get(f"/p/{project.slug}/profile/").content.decode()
    assert ">refused<" in html
