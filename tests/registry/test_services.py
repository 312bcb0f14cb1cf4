"""Registering, stages and aliases, promotion with its gate, four eyes, rollback, audit."""

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from apps.core.models import AuditEvent
from apps.registry import services
from apps.registry.artifacts import ArtifactIntegrityError, artifact_bytes
from apps.registry.models import ModelVersion, Notification, PromotionRequest, StageChange
from apps.registry.selectors import version_resolve
from tests.factories import approve_scope

from .conftest import keras_model_bytes, make_run, tiny_dataset_version

pytestmark = pytest.mark.django_db


def _gate(req, key):
    return [c for c in req.gate["checks"] if c["key"] == key]


# Registering ----------------------------------------------------------------------------------------


def test_register_copies_classes_spec_metrics_and_artifacts(project, dv, good_run, register, people):
    v = register(good_run)
    assert (v.number, v.stage, v.registered_model.name) == (1, "none", "screws")
    assert v.classes == dv.classes == ["defect", "good"]
    assert v.input_spec["image_size"] == 32 and v.input_spec["channels"] == 1
    assert v.metrics["accuracy"] == 1.0 and v.metrics["confusion_matrix"] == [[3, 0], [0, 3]]
    assert set(v.artifacts) == {"keras", "model_card"}
    assert artifact_bytes(v, "keras") == keras_model_bytes("good")
    assert AuditEvent.objects.filter(action="model_version.register", actor=people["ds"]).count() == 1
    # Managers and data scientists hear of it, in the portal and by email.
    assert set(
        Notification.objects.filter(event="model_version.registered").values_list("user__username", flat=True)
    ) == {"ds", "manager"}
    assert {m.to[0] for m in mail.outbox} == {"ds@example.com", "manager@example.com"}
    v2 = register(make_run(project, dv, "bad"))
    assert v2.number == 2 and v2.registered_model_id == v.registered_model_id


def test_register_refuses_unfinished_duplicate_and_bad_names(project, dv, good_run, register, people):
    failed = make_run(project, dv, status="failed")
    with pytest.raises(ValidationError, match="failed; only a succeeded run"):
        register(failed)
    with pytest.raises(ValidationError, match="letters, digits"):
        register(good_run, name="../etc")
    register(good_run)
    with pytest.raises(ValidationError, match="already registered as screws v1"):
        register(good_run)
    with pytest.raises(PermissionDenied):
        register(make_run(project, dv), user=people["manager"])


def test_artifacts_are_checked_on_every_load(dv, good_run, register):
    from django.core.files.storage import default_storage

    from apps.core.models import Blob

    v = register(good_run)
    blob = Blob.objects.get(pk=v.artifacts["keras"]["blob_id"])
    with default_storage.open(blob.path, "wb") as fh:
        fh.write(b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="refusing to load"):
        artifact_bytes(v, "keras")


def test_database_allows_one_production_version_per_model(project, dv, register):
    a, b = register(make_run(project, dv)), register(make_run(project, dv, "bad"))
    ModelVersion.objects.filter(pk=a.pk).update(stage="production")
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=b.pk).update(stage="production")


def test_stages_and_aliases(project, dv, good_run, register, people):
    v = register(good_run)
    services.model_version_stage_set(version=v, stage="staging", user=people["ds"], reason="try it")
    assert version_resolve(v.registered_model, "staging") == v
    with pytest.raises(ValidationError, match="approved promotion request"):
        services.model_version_stage_set(version=v, stage="production", user=people["ds"])
    services.model_alias_set(registered_model=v.registered_model, name="champion", version=v, user=people["ds"])
    assert version_resolve(v.registered_model, "champion") == v
    with pytest.raises(ValidationError, match="not a usable alias"):
        services.model_alias_set(registered_model=v.registered_model, name="production", version=v, user=people["ds"])
    change = StageChange.objects.get(version=v)
    assert (change.from_stage, change.to_stage, change.user, change.reason) == (
        "none",
        "staging",
        people["ds"],
        "try it",
    )
    assert AuditEvent.objects.filter(action="model_version.stage.staging", reason="try it").exists()


# The gate -------------------------------------------------------------------------------------------


def test_gate_passes_and_managers_are_told(project, dv, good_run, register, people, django_capture_on_commit_callbacks):
    approve_scope(
        project,
        [
            {"metric": "accuracy", "comparator": ">=", "target": 0.95},
            {"metric": "p95_latency_ms", "comparator": "<=", "target": 5000, "unit": "ms"},
            {"metric": "throughput", "comparator": ">=", "target": 10},
        ],
    )
    v = register(good_run)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        req = services.promotion_request_create(version=v, user=people["ds"], note="better recall")
    assert req.status == "open" and req.gate_passed
    statuses = {c["title"]: c["status"] for c in req.gate["checks"]}
    assert statuses["Target accuracy ≥ 0.95"] == "pass"
    # The latency target is measured: each test image alone through a loaded serving engine.
    latency = _gate(req, "targets")[1]
    assert latency["status"] == "pass" and 0 < latency["value"] < 5000
    assert "p95 of 6 single-image predictions over the test split in a loaded serving engine" in latency["message"]
    assert req.gate["latency"]["n"] == 6 and req.gate["latency"]["p95_ms"] == latency["value"]
    assert statuses["Target throughput ≥ 10"] == "not_measured"  # nothing measures it: reported, not blocking
    assert "not measured here" in _gate(req, "targets")[2]["message"]
    assert _gate(req, "champion")[0]["message"].startswith("No version is in production yet")
    assert [c["status"] for c in req.gate["checks"] if c["key"] in ("data", "artifacts")] == ["pass", "pass"]
    assert list(Notification.objects.filter(event="promotion.requested").values_list("user__username", flat=True)) == [
        "manager"
    ]
    assert [m.to for m in mail.outbox] == [["manager@example.com"]]


def test_a_latency_target_can_block(project, dv, good_run, register, people):
    approve_scope(project, [{"metric": "p95 latency", "comparator": "<=", "target": 0.001, "unit": "ms"}])
    req = services.promotion_request_create(version=register(good_run), user=people["ds"], note="fast?")
    check = _gate(req, "targets")[0]
    assert not req.gate_passed and check["status"] == "fail"
    assert (
        check["message"].startswith("p95 latency is ")
        and "does not meet the target p95 latency ≤ 0.001 ms" in check["message"]
    )


@pytest.mark.parametrize(
    "metric,key",
    [
        ("recall", "macro_recall"),
        ("Precision", "macro_precision"),
        ("F1", "macro_f1"),
        ("recall(defect)", ("defect", "recall")),
        ("good precision", ("good", "precision")),
        ("f1 of defect", ("defect", "f1")),
    ],
)
def test_targets_the_evaluation_answers_are_measured(project, dv, register, people, metric, key):
    from .test_api import METRICS

    metrics = {
        **METRICS,
        "macro_recall": 0.91,
        "macro_precision": 0.92,
        "macro_f1": 0.93,
        "per_class": {
            "good": {"precision": 0.81, "recall": 0.82, "f1": 0.83, "support": 3},
            "defect": {"precision": 0.71, "recall": 0.72, "f1": 0.73, "support": 3},
        },
    }
    expected = metrics[key] if isinstance(key, str) else metrics["per_class"][key[0]][key[1]]
    approve_scope(project, [{"metric": metric, "comparator": ">=", "target": 0.5}])
    req = services.promotion_request_create(
        version=register(make_run(project, dv, metrics=metrics)), user=people["ds"], note="measured"
    )
    check = _gate(req, "targets")[0]
    assert (check["status"], check["value"]) == ("pass", expected)


def test_the_gate_reads_the_approved_targets_not_a_draft(project, dv, register, people):
    from apps.projects.services import scope_update

    approve_scope(project, [{"metric": "accuracy", "comparator": ">=", "target": 0.95}])
    # The PM lowers the bar in a draft nobody approved: it must not let a bad model through.
    scope_update(
        project=project,
        user=people["pm"],
        data={**project.scope_snapshot(), "measurement": [{"metric": "accuracy", "comparator": ">=", "target": 0.0}]},
    )
    project.refresh_from_db()
    assert project.scope_status == "draft" and project.targets_pending() == ["accuracy ≥ 0"]
    v = register(make_run(project, dv, "bad"))
    req = services.promotion_request_create(version=v, user=people["ds"], note="lower bar")
    assert not req.gate_passed
    assert _gate(req, "targets")[0]["message"].endswith("does not meet the target accuracy ≥ 0.95.")
    pending = _gate(req, "targets_pending")[0]
    assert pending["status"] == "not_measured" and pending["pending"] == ["accuracy ≥ 0"]
    assert "apply only once a manager approves" in pending["message"]
    # Once a manager approves the revision, the new bar applies.
    services.promotion_request_withdraw(request=req, user=people["ds"])
    approve_scope(project)
    req = services.promotion_request_create(version=v, user=people["ds"], note="bar approved")
    assert req.gate_passed and not _gate(req, "targets_pending")


def test_targets_never_approved_block(project, dv, good_run, register, people):
    project.measurement = [{"metric": "accuracy", "comparator": ">=", "target": 0.5}]
    project.save()
    req = services.promotion_request_create(version=register(good_run), user=people["ds"], note="unapproved")
    check = _gate(req, "targets")[0]
    assert not req.gate_passed and check["status"] == "fail"
    assert "await a manager's approval" in check["message"] and "accuracy ≥ 0.5" in check["message"]


def test_a_failed_gate_stays_in_the_inbox_and_needs_a_written_exception(
    project, dv, register, people, ds_manager, django_capture_on_commit_callbacks
):
    approve_scope(project, [{"metric": "accuracy", "comparator": ">=", "target": 0.95}])
    v = register(make_run(project, dv, "bad"))
    with django_capture_on_commit_callbacks(execute=True):
        req = services.promotion_request_create(version=v, user=ds_manager, note="try")
    assert (req.status, req.gate_passed) == ("open", False)
    check = _gate(req, "targets")[0]
    assert check["status"] == "fail"
    assert check["message"] == (
        f"accuracy is 0 on the test split of dataset version v{dv.number}, which does not "
        "meet the target accuracy ≥ 0.95."
    )
    assert Notification.objects.filter(event="promotion.gate_failed", user=people["manager"]).exists()
    assert AuditEvent.objects.filter(action="promotion_request.gate_failed", object_id=str(req.pk)).exists()
    with pytest.raises(ValidationError, match="only as an exception, with a written reason"):
        services.promotion_request_approve(request=req, user=people["manager"], comment="fine")
    with pytest.raises(PermissionDenied, match="four eyes"):
        services.promotion_request_approve(request=req, user=ds_manager, exception_reason="I say so")
    req = services.promotion_request_approve(
        request=req,
        user=people["manager"],
        comment="ok",
        exception_reason="The line needs a model today; v2 retrains tonight.",
    )
    v.refresh_from_db()
    assert req.status == "approved" and v.stage == "production"
    assert req.approvals.get().gate_exception == "The line needs a model today; v2 retrains tonight."
    event = AuditEvent.objects.get(action="promotion_request.gate_exception")
    assert event.actor == people["manager"] and event.reason.startswith("The line needs a model today")


def test_gate_fails_when_worse_than_production_evaluated_on_the_same_split(
    project, dv, register, people, in_production
):
    champion = in_production()
    # The candidate was trained on another dataset version: production is run now on ITS test split.
    other = tiny_dataset_version(project, offset=100)
    cand = register(make_run(project, other, "bad"))
    req = services.promotion_request_create(version=cand, user=people["ds"], note="new data")
    check = _gate(req, "champion")[0]
    assert check["status"] == "fail" and check["how"] == "evaluated"
    assert check["champion_value"] == 1.0 and check["candidate_value"] == 0.0
    assert (
        f"worse than production; production v{champion.number} was run now on the test split of dataset "
        f"version v{other.number} (6 images)" in check["message"]
    )
    assert req.gate["champion_metrics"]["confusion_matrix"] == [[3, 0], [0, 3]]


def test_champion_uses_stored_metrics_on_the_same_dataset_version_and_honours_the_margin(
    project, dv, register, people, in_production
):
    in_production()
    metrics = {"accuracy": 0.98, "macro_f1": 0.98, "n": 6}
    cand = register(make_run(project, dv, "good", metrics=metrics))
    req = services.promotion_request_create(version=cand, user=people["ds"], note="x")
    check = _gate(req, "champion")[0]
    assert (check["status"], check["how"]) == ("fail", "stored")
    assert "It must be at least 1." in check["message"]
    services.registry_settings_update(project=project, user=people["manager"], champion_margin=0.05)
    req = services.promotion_request_create(version=cand, user=people["ds"], note="within margin")
    check = _gate(req, "champion")[0]
    assert check["status"] == "pass" and "within the margin of production" in check["message"]


def test_gate_fails_on_blocking_data_assertions(project, register, people):
    from apps.profiling.models import AssertionResult

    unprofiled = tiny_dataset_version(project, profiled=False)
    req = services.promotion_request_create(
        version=register(make_run(project, unprofiled)), user=people["ds"], note="x"
    )
    assert _gate(req, "data")[0]["status"] == "fail"
    assert "has no succeeded profile" in _gate(req, "data")[0]["message"]
    failing = tiny_dataset_version(project, offset=50)
    AssertionResult.objects.create(
        run=failing.profile_runs.get(),
        check_name="min_per_class",
        title="At least 50 per class",
        severity="blocking",
        passed=False,
        measured=3,
        bound=">= 50",
        message="defect has 3 images",
    )
    req = services.promotion_request_create(
        version=register(make_run(project, failing), name="other"), user=people["ds"], note="x"
    )
    msg = _gate(req, "data")[0]["message"]
    assert f"Dataset version v{failing.number} fails the data-quality gate" in msg and "defect has 3 images" in msg
    assert req.status == "open"  # in the managers' inbox as "gate failed"


def test_gate_fails_when_an_artifact_hash_does_not_match(project, dv, good_run, register, people):
    from django.core.files.storage import default_storage

    from apps.core.models import Blob

    v = register(good_run)
    blob = Blob.objects.get(pk=v.artifacts["model_card"]["blob_id"])
    with default_storage.open(blob.path, "wb") as fh:
        fh.write(b"{}")
    req = services.promotion_request_create(version=v, user=people["ds"], note="x")
    check = _gate(req, "artifacts")[0]
    assert check["status"] == "fail" and "model_card artifact's sha256 is" in check["message"]


def test_request_needs_a_note_and_only_one_open_request(project, dv, good_run, register, people):
    v = register(good_run)
    with pytest.raises(ValidationError, match="note is required"):
        services.promotion_request_create(version=v, user=people["ds"], note=" ")
    services.promotion_request_create(version=v, user=people["ds"], note="x")
    with pytest.raises(ValidationError, match="already has an open promotion request"):
        services.promotion_request_create(version=v, user=people["ds"], note="again")


# Four eyes, approvals, transitions ------------------------------------------------------------------


def test_requester_never_approves_their_own_request_even_as_manager(
    project, dv, good_run, register, ds_manager, people
):
    v = register(good_run, user=ds_manager)
    req = services.promotion_request_create(version=v, user=ds_manager, note="mine")
    with pytest.raises(PermissionDenied, match="four eyes"):
        services.promotion_request_approve(request=req, user=ds_manager)
    with pytest.raises(PermissionDenied):
        services.promotion_request_approve(request=req, user=people["ds"])  # not a manager
    services.promotion_request_approve(request=req, user=people["manager"], comment="looks right")
    v.refresh_from_db()
    assert v.stage == "production"


def test_approval_archives_the_old_production_version_in_one_step(project, dv, register, people, in_production):
    old = in_production()
    new = register(make_run(project, dv, "good"))
    req = services.promotion_request_create(version=new, user=people["ds"], note="retrained")
    assert req.gate_passed and req.champion == old
    services.promotion_request_approve(request=req, user=people["manager"], comment="ship it")
    old.refresh_from_db(), new.refresh_from_db(), req.refresh_from_db()
    assert (old.stage, new.stage, req.status, req.decided_by) == (
        "archived",
        "production",
        "approved",
        people["manager"],
    )
    events = {(e.action, e.object_id): e for e in AuditEvent.objects.filter(action__startswith="model_version.stage")}
    assert events[("model_version.stage.production", str(new.pk))].actor == people["manager"]
    assert events[("model_version.stage.production", str(new.pk))].reason == "ship it"
    assert "Replaced by screws v2" in events[("model_version.stage.archived", str(old.pk))].reason
    assert Notification.objects.filter(event="promotion.approved", user=people["ds"]).exists()


def test_a_project_can_require_two_approvals(project, dv, good_run, register, people, second_manager):
    services.registry_settings_update(project=project, user=people["manager"], required_approvals=2)
    v = register(good_run)
    req = services.promotion_request_create(version=v, user=people["ds"], note="x")
    services.promotion_request_approve(request=req, user=people["manager"])
    req.refresh_from_db(), v.refresh_from_db()
    assert (req.status, v.stage) == ("open", "none")
    with pytest.raises(ValidationError, match="already approved"):
        services.promotion_request_approve(request=req, user=people["manager"])
    services.promotion_request_approve(request=req, user=second_manager)
    req.refresh_from_db(), v.refresh_from_db()
    assert (req.status, v.stage, req.approvals.count()) == ("approved", "production", 2)


def test_reject_and_withdraw(project, dv, register, people):
    v = register(make_run(project, dv))
    req = services.promotion_request_create(version=v, user=people["ds"], note="x")
    with pytest.raises(ValidationError, match="comment is required"):
        services.promotion_request_reject(request=req, user=people["manager"], comment="")
    services.promotion_request_reject(request=req, user=people["manager"], comment="needs more defect images")
    req.refresh_from_db()
    assert req.status == "rejected" and req.decision_comment == "needs more defect images"
    assert AuditEvent.objects.filter(action="promotion_request.reject", reason="needs more defect images").exists()
    assert Notification.objects.filter(event="promotion.rejected", user=people["ds"]).exists()
    req2 = services.promotion_request_create(version=v, user=people["ds"], note="again")
    services.promotion_request_withdraw(request=req2, user=people["ds"], reason="oops")
    assert PromotionRequest.objects.get(pk=req2.pk).status == "withdrawn"


def test_approval_refused_when_production_changed_since_the_gate(project, dv, register, people, in_production):
    a = register(make_run(project, dv))
    req = services.promotion_request_create(version=a, user=people["ds"], note="x")  # gate: no champion
    in_production()  # meanwhile another version reached production
    with pytest.raises(ValidationError, match="Production changed since the gate ran"):
        services.promotion_request_approve(request=req, user=people["manager"])


# Rollback -------------------------------------------------------------------------------------------


def test_rollback_restores_the_previous_production_version(project, dv, register, people, in_production):
    v1 = in_production()
    with pytest.raises(ValidationError, match="no earlier production version"):
        services.model_version_rollback(registered_model=v1.registered_model, user=people["manager"], reason="x")
    v2 = register(make_run(project, dv))
    services.promotion_request_approve(
        request=services.promotion_request_create(version=v2, user=people["ds"], note="v2"), user=people["manager"]
    )
    with pytest.raises(PermissionDenied):
        services.model_version_rollback(registered_model=v1.registered_model, user=people["ds"], reason="x")
    with pytest.raises(ValidationError, match="reason is required"):
        services.model_version_rollback(registered_model=v1.registered_model, user=people["manager"], reason="")
    back = services.model_version_rollback(
        registered_model=v1.registered_model, user=people["manager"], reason="false alarms on the line"
    )
    v1.refresh_from_db(), v2.refresh_from_db()
    assert back == v1 and (v1.stage, v2.stage) == ("production", "archived")
    assert version_resolve(v1.registered_model) == v1
    e = AuditEvent.objects.get(action="registered_model.rollback")
    assert (e.actor, e.reason, e.data) == (people["manager"], "false alarms on the line", {"from": 2, "to": 1})
    assert Notification.objects.filter(event="model.rolled_back", user=people["ds"]).exists()


def test_rollback_walks_back_through_history_never_forward(project, dv, register, people, in_production):
    v1 = in_production()
    versions = [v1]
    for _ in range(2):
        v = register(make_run(project, dv))
        services.promotion_request_approve(
            request=services.promotion_request_create(version=v, user=people["ds"], note="next"), user=people["manager"]
        )
        versions.append(v)
    rm = v1.registered_model
    assert services.model_version_rollback(registered_model=rm, user=people["manager"], reason="a") == versions[1]
    assert services.model_version_rollback(registered_model=rm, user=people["manager"], reason="b") == versions[0]
    with pytest.raises(ValidationError, match="no earlier production version"):
        services.model_version_rollback(registered_model=rm, user=people["manager"], reason="c")


def test_champion_is_evaluated_on_real_screw_photographs(project, dv, register, people, in_production, screws):
    """Production (trained on another dataset version) is run on the candidate's test split of real
    1024x1024 screw photographs; the same model as candidate scores exactly the same there."""
    from tests.factories import make_item, make_version, mark_profiled

    from .conftest import measured_metrics

    folder, rows = screws
    picked = [r for r in rows if r["label"] == "good"][:3] + [r for r in rows if r["label"] == "defect"][:3]
    entries = [
        (make_item(project, data=(folder / r["path"]).read_bytes(), name=r["path"]), split, r["label"])
        for r, split in zip(picked, ["train", "test", "test", "train", "test", "test"])
    ]
    real = make_version(project, entries)
    mark_profiled(real)
    champion = in_production()
    cand = register(make_run(project, real, "good", metrics=measured_metrics(keras_model_bytes("good"), real)))
    assert cand.metrics["n"] == 4
    req = services.promotion_request_create(version=cand, user=people["ds"], note="real photos")
    check = _gate(req, "champion")[0]
    assert check["how"] == "evaluated" and check["status"] == "pass"
    assert check["champion_value"] == check["candidate_value"] == cand.metrics["accuracy"]
    assert req.gate["champion_metrics"]["confusion_matrix"] == cand.metrics["confusion_matrix"]
    assert f"production v{champion.number} was run now" in check["message"]


def test_canary_comparison_shows_when_serving_offers_it(project, dv, good_run, register, people, monkeypatch):
    """Serving registers its comparison at start (the registry never imports serving)."""
    from django.test import Client

    from apps.registry import selectors
    from apps.registry.selectors import canary_comparison

    v = register(good_run)
    req = services.promotion_request_create(version=v, user=people["ds"], note="x")
    c = Client()
    c.force_login(people["manager"])
    url = f"/p/{project.slug}/registry/requests/{req.pk}/"
    monkeypatch.setattr(selectors, "_canary_comparison", None)  # serving absent: nothing rendered
    assert canary_comparison(v.registered_model) is None
    assert 'id="canary"' not in c.get(url).content.decode()
    selectors.register_canary_comparison(lambda rm: {"canary version": "v2", "agreement with production": "97.5%"})
    html = c.get(url).content.decode()
    assert 'id="canary"' in html and "agreement with production" in html and "97.5%" in html


def test_serving_registers_its_comparison_at_start():
    from apps.registry import selectors
    from apps.serving.selectors import canary_comparison

    assert selectors._canary_comparison is canary_comparison


def test_approval_is_one_transaction(project, dv, register, people, in_production, monkeypatch):
    """If anything fails after the stage changes (here: notifying), nothing of the approval stays."""
    from apps.registry.services import promotion as svc

    old = in_production()
    new = register(make_run(project, dv))
    req = services.promotion_request_create(version=new, user=people["ds"], note="x")

    def boom(**kwargs):
        raise RuntimeError("mail server on fire")

    monkeypatch.setattr(svc, "notify", boom)
    with pytest.raises(RuntimeError):
        services.promotion_request_approve(request=req, user=people["manager"])
    old.refresh_from_db(), new.refresh_from_db(), req.refresh_from_db()
    assert (old.stage, new.stage, req.status, req.approvals.count()) == ("production", "none", "open", 0)
    assert not StageChange.objects.filter(version=new).exists()


def test_every_registry_event_reaches_portal_email_and_webhooks(
    project, dv, register, people, monkeypatch, django_capture_on_commit_callbacks
):
    from apps.core.jobs import task_named
    from apps.registry import notify as notify_mod
    from apps.registry.models import WebhookDelivery

    hook = services.webhook_create(project=project, user=people["manager"], url="https://hooks.example.com/ml")
    sent = []
    monkeypatch.setattr(
        notify_mod,
        "dispatch",
        lambda task, *args: (
            task_named(task).apply(args=args)  # email: as a worker would
            if task == "apps.registry.tasks.send_emails"
            else sent.append(args[0])
        ),
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        v1 = register(make_run(project, dv))
        services.promotion_request_approve(
            request=services.promotion_request_create(version=v1, user=people["ds"], note="v1"), user=people["manager"]
        )
        v2 = register(make_run(project, dv))
        services.promotion_request_reject(
            request=services.promotion_request_create(version=v2, user=people["ds"], note="v2"),
            user=people["manager"],
            comment="not now",
        )
        v3 = register(make_run(project, dv))
        services.promotion_request_approve(
            request=services.promotion_request_create(version=v3, user=people["ds"], note="v3"), user=people["manager"]
        )
        services.model_version_rollback(registered_model=v1.registered_model, user=people["manager"], reason="bad")
    events = [
        "model_version.registered",
        "promotion.requested",
        "promotion.approved",
        "promotion.rejected",
        "model.rolled_back",
    ]
    deliveries = WebhookDelivery.objects.filter(webhook=hook)
    assert {d.event for d in deliveries} == set(events)
    assert sorted(sent) == sorted(d.pk for d in deliveries)  # each one queued for the worker
    for event in events:
        assert Notification.objects.filter(event=event, user=people["manager"]).exists(), event
    assert Notification.objects.filter(event="model.rolled_back", user=people["ds"]).exists()
    subjects = " | ".join(m.subject for m in mail.outbox)
    for words in (
        "registered screws v1",
        "asks to promote screws v2",
        "approved screws v3",
        "rejected the promotion",
        "rolled screws back from v3 to v1",
    ):
        assert words in subjects, words
