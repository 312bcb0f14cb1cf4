"""One project holding one of everything (items, labels, versions, profiles, runs, a sweep, models,
a promotion request, alert rules and alerts), so that every URL of the portal can be called with
real ids. Built through the real services where that is cheap, as rows where a service would train
or decode for seconds."""

import copy
from types import SimpleNamespace

import pytest
from django.utils import timezone

from apps.accounts.models import Role
from tests.factories import label_classes
from tests.serving.conftest import engine  # noqa: F401  (fixture)

_PROFILE = {}


def _profile_of(version, user):
    """A real profile computed once per process, then copied onto each test's run."""
    from apps.profiling import services as profiling

    if "profile" not in _PROFILE:
        run = profiling.profile_run_start(version=version, user=user)
        profiling.profile_run_execute(run_id=run.pk)
        run.refresh_from_db()
        assert run.status == "succeeded", run.error
        _PROFILE.update(profile=copy.deepcopy(run.profile), summary=copy.deepcopy(run.summary))
        return run
    from apps.profiling.models import ProfileRun

    now = timezone.now()
    return ProfileRun.objects.create(
        project=version.project,
        version=version,
        status="succeeded",
        created_by=user,
        total=version.item_count,
        processed=version.item_count,
        started_at=now,
        finished_at=now,
        profile=copy.deepcopy(_PROFILE["profile"]),
        summary=copy.deepcopy(_PROFILE["summary"]),
    )


METRICS = {
    "n": 6,
    "accuracy": 1.0,
    "macro_f1": 1.0,
    "macro_precision": 1.0,
    "macro_recall": 1.0,
    "classes": ["defect", "good"],
    "confusion_matrix": [[3, 0], [0, 3]],
}


def build_world(project, people, *, text=None):
    """Everything a URL can name, in ``project``. ``text`` (a string) goes into every free-text
    field the services accept, for the stored-XSS sweep."""
    from apps.datasets import services as datasets
    from apps.labeling import services as labeling
    from apps.monitoring import services as monitoring
    from apps.monitoring.models import RuleKind
    from apps.registry import services as registry
    from apps.training.models import Sweep
    from tests.registry.conftest import make_run, tiny_dataset_version

    t = text or ""
    good, defect = label_classes(project, (f"good{t}", f"defect{t}") if t else ("good", "defect"))
    dv = tiny_dataset_version(project, profiled=False)
    if t:
        dv.name, dv.note = f"v{t}", f"note{t}"
        dv.save(update_fields=["name", "note"])
    from apps.datasets.models import Item

    items = list(Item.objects.filter(project=project).order_by("pk"))
    item = items[0]
    ann = labeling.annotation_submit(item=item, user=people["labeler"], label_class=good)
    profile = _profile_of(dv, people["ds"])
    upload = datasets.upload_create(project=project, user=people["ds"], filename="a.png", size=10)
    done = datasets.upload_create(project=project, user=people["ds"], filename="b.png", size=0)
    job = datasets.import_uploads_start(project=project, user=people["ds"], upload_ids=[done.pk])
    run = make_run(project, dv, metrics=METRICS, user=people["ds"])
    run.name = f"run{t}" if t else run.name
    run.predictions = [
        {"item": item.pk, "true": 0, "pred": 1, "confidence": 0.9},
        {"item": items[1].pk, "true": 1, "pred": 1, "confidence": 0.8},
    ]
    run.save(update_fields=["name", "predictions"])
    sweep = Sweep.objects.create(
        project=project,
        dataset_version=dv,
        name=f"sweep{t}",
        method="grid",
        space={"learning_rate": [0.001]},
        created_by=people["ds"],
        status="running",
    )
    v1 = registry.model_version_register(
        run=run, registered_model_name="screws", user=people["ds"], description=f"desc{t}"
    )
    req = registry.promotion_request_create(version=v1, user=people["ds"], note=f"first{t}")
    assert req.gate_passed, req.gate["failures"]
    rule = monitoring.alert_rule_create(
        project=project, user=people["pm"], data={"name": f"No worker{t}", "kind": RuleKind.WORKER_DOWN, "threshold": 1}
    )
    [alert] = monitoring.rules_evaluate(project=project)
    from apps.projects.comments import comment_post

    comment = comment_post(project=project, user=people["ds"], kind="run", target_id=run.pk, body=f"looks good @pm{t}")
    return SimpleNamespace(
        project=project,
        people=people,
        good=good,
        defect=defect,
        dv=dv,
        item=item,
        items=items,
        annotation=ann,
        profile=profile,
        upload=upload,
        job=job,
        run=run,
        sweep=sweep,
        rm=v1.registered_model,
        v1=v1,
        req=req,
        rule=rule,
        alert=alert,
        comment=comment,
    )


def in_production(w):
    """v1 approved into production and v2 registered from a second run with an open request."""
    from apps.registry import services as registry
    from tests.registry.conftest import make_run

    registry.promotion_request_approve(request=w.req, user=w.people["manager"], comment="ok")
    run2 = make_run(w.project, w.dv, metrics=METRICS, user=w.people["ds"])
    w.v2 = registry.model_version_register(run=run2, registered_model_name=w.rm.name, user=w.people["ds"])
    w.req2 = registry.promotion_request_create(version=w.v2, user=w.people["ds"], note="second")
    return w


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(project, people):
    return build_world(project, people)


ALL_MEMBERS = ("pm", "labeler", "reviewer", "ds", "manager")
ROLE_OF = {
    "pm": Role.PM,
    "labeler": Role.LABELER,
    "reviewer": Role.REVIEWER,
    "ds": Role.DATA_SCIENTIST,
    "manager": Role.MANAGER,
}


@pytest.fixture(autouse=True)
def _serving_engine(engine):
    """Predictions made here go through an engine whose log is written in the test's own thread
    (the web process's default writes from a background thread, outside the test database)."""
    return engine
