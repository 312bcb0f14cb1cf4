"""Who may call what: every API endpoint × every role, and every project page for outsiders and
anonymous visitors, with the exact status code.

``API`` lists every (URL name, method) under /api/. A test walks the URL resolver and fails when an
endpoint or one of its methods is missing here, so a new endpoint cannot ship without its row.

Adding a row is one line::

    E("api-thing", "post", DS, 201, kw=lambda w: {"pk": w.run.pk}, data={"name": "x"}),

``roles``: the roles that may call it (``ANY``: every member; ``AUTH``: any signed-in user, not
project-scoped). Every member holding none of them must get 403, a user outside the project 404,
an anonymous caller 401. ``ok`` is the exact status a member with the role gets. ``setup(w)``
prepares state (a submitted scope, a queued run) before the allowed call; ``data`` may be a callable
of the world. ``token=("predict",)`` calls with a real API token of those scopes instead of a
session (for the serving app's predict endpoints).
"""

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from apps.accounts.models import Role

from .conftest import ALL_MEMBERS, METRICS, ROLE_OF, build_world, in_production

pytestmark = pytest.mark.django_db

PM, LAB, REV, DS, MGR = Role.PM, Role.LABELER, Role.REVIEWER, Role.DATA_SCIENTIST, Role.MANAGER
ANY = (PM, LAB, REV, DS, MGR)
AUTH = "authenticated"  # any signed-in user; the endpoint is not inside a project
SAFE = ("get", "head", "options")
TINY = {"architecture": "tiny_cnn", "image_size": 32, "channels": 1, "epochs": 1, "batch_size": 4}


@dataclass
class E:
    name: str
    method: str
    roles: Any
    ok: int
    kw: Callable | None = None
    data: Any = None
    setup: Callable | None = None
    format: str = "json"  # json | multipart | raw
    headers: dict | None = None
    token: tuple | None = None

    @property
    def id(self):
        return f"{self.method.upper()} {self.name}"


# Setups: state an allowed call needs --------------------------------------------------------


def _scope_complete(w):
    p = w.project
    p.dataset, p.dataset_link, p.model, p.code_language = "screws", "https://example.com/d", "CNN", "Python"
    p.goal, p.measurement, p.delivery = "g", [{"metric": "accuracy", "comparator": ">=", "target": 0.9}], ["API"]
    p.scope_status = "draft"
    p.save()


def _scope_submitted(w):
    from apps.projects import services

    _scope_complete(w)
    services.scope_submit(project=w.project, user=w.people["pm"])


def _scope_changed(w):
    from apps.projects import services

    for goal in ("first", "changed"):
        services.scope_update(project=w.project, user=w.people["pm"], data={"goal": goal})


def _finished_upload(w):
    from apps.datasets import services

    w.spare_upload = services.upload_create(project=w.project, user=w.people["ds"], filename="c.png", size=0)


def _all_labeled(w):
    from tests.factories import set_label

    for i, item in enumerate(w.items):
        set_label(item, (w.good, w.defect)[i % 2], w.people["ds"])


def _queued_profile(w):
    from apps.profiling.models import ProfileRun

    w.queued_profile = ProfileRun.objects.create(project=w.project, version=w.dv, status="queued", total=1)


def _unprofiled_version(w):
    from tests.factories import make_version

    w.dv2 = make_version(w.project, [(w.items[0], "train", "good"), (w.items[1], "test", "defect")])


def _queued_run(w):
    from apps.training.models import TrainingRun

    w.queued_run = TrainingRun.objects.create(
        project=w.project, dataset_version=w.dv, status="queued", config=dict(TINY), created_by=w.people["ds"]
    )


def _second_run(w):
    from tests.registry.conftest import make_run

    w.run2 = make_run(w.project, w.dv, metrics=METRICS, user=w.people["ds"])


def _v2_registered(w):
    from apps.registry import services

    _second_run(w)
    w.v2 = services.model_version_register(run=w.run2, registered_model_name=w.rm.name, user=w.people["ds"])


def _v2_in_production(w):
    from apps.registry import services

    in_production(w)
    services.promotion_request_approve(request=w.req2, user=w.people["manager"], comment="ok")


def _labels_csv(w):
    return {"kind": "csv", "file": _named(f"name,label\n{w.item.original_name},defect\n".encode(), "labels.csv")}


def _named(data, name):
    f = io.BytesIO(data)
    f.name = name
    return f


def _project(w):
    return {}


def _item(w):
    return {"item_id": w.item.pk}


def _run(w):
    return {"pk": w.run.pk}


def _model(w):
    return {"pk": w.rm.pk}


def _mv(w, number=1):
    return {"pk": w.rm.pk, "number": number}


def _req(w):
    return {"pk": w.req.pk}


def _served(w):
    return {"model": w.rm.name}


def _png():
    from tests.factories import png_bytes

    return png_bytes(size=(64, 64), seed=3)


def _project_token(w):
    from apps.serving.services import project_token_create

    w.project_token, _ = project_token_create(
        project=w.project, user=w.people["ds"], name="to revoke", scopes=["predict"]
    )


def _dv(w):
    return {"number": w.dv.number}


API = [
    # accounts, projects, scope
    E("api-tokens", "get", AUTH, 200),
    E("api-tokens", "post", AUTH, 201, data={"name": "ci", "scopes": ["read"]}),
    # the backbone catalogue: read by anyone signed in; weights added by site admins only (a project
    # role is not enough: tests/training/test_backbone_store.py covers the site admin's 201)
    E("api-backbones", "get", AUTH, 200),
    E(
        "api-backbone-weights",
        "post",
        AUTH,
        403,
        kw=lambda w: {"name": "resnet50"},
        format="multipart",
        data=lambda w: {"file": io.BytesIO(b"not weights")},
    ),
    E("api-projects", "get", AUTH, 200),
    E("api-projects", "post", AUTH, 201, data={"name": "Gears"}),
    E("api-project", "get", ANY, 200),
    E("api-project", "put", (PM,), 200, data=lambda w: {"name": w.project.name, "goal": "Sharper goal"}),
    E("api-project", "patch", (PM,), 200, data={"goal": "Sharper goal"}),
    E("api-project", "delete", (PM,), 204),
    E("api-scope-submit", "post", (PM,), 200, setup=_scope_complete),
    E("api-scope-approve", "post", (MGR,), 200, setup=_scope_submitted, data={"reason": "fine"}),
    E("api-scope-return", "post", (MGR,), 200, setup=_scope_submitted, data={"reason": "metric unclear"}),
    E("api-scope-override", "post", (MGR,), 200, setup=_scope_submitted, data={"reason": "pilot first"}),
    E("api-scope-revisions", "get", ANY, 200),
    E("api-scope-diff", "get", ANY, 200, setup=_scope_changed, data={"a": 1, "b": 2}),
    E("api-scope-export", "get", ANY, 200, kw=lambda w: {"fmt": "md"}),
    E("api-members", "get", ANY, 200),
    E("api-members", "post", (PM,), 200, data={"username": "reviewer", "roles": ["reviewer", "labeler"]}),
    E("api-audit", "get", ANY, 200),
    E("api-plan", "get", ANY, 200),
    E("api-comments", "get", ANY, 200, data=lambda w: {"kind": "run", "target": w.run.pk}),
    E("api-comments", "post", ANY, 201, data=lambda w: {"kind": "alert", "target": w.alert.pk, "body": "on it @pm"}),
    E("api-comment", "get", ANY, 200, kw=lambda w: {"pk": w.comment.pk}),
    E("api-comment", "patch", (DS,), 200, kw=lambda w: {"pk": w.comment.pk}, data={"body": "looks good, @pm"}),
    E("api-plan", "put", (PM,), 200, data={"milestones": {"data": {"planned_end": "2027-01-15", "owner": "ds"}}}),
    # datasets
    E("api-uploads", "post", (DS,), 201, data={"filename": "x.png", "size": 5}),
    E("api-upload", "get", (DS,), 200, kw=lambda w: {"upload_id": w.upload.pk}),
    E(
        "api-upload",
        "put",
        (DS,),
        200,
        kw=lambda w: {"upload_id": w.upload.pk},
        data=b"0123456789",
        format="raw",
        headers={"Upload-Offset": "0"},
    ),
    E("api-imports", "get", ANY, 200),
    E("api-imports", "post", (DS,), 201, setup=_finished_upload, data=lambda w: {"uploads": [str(w.spare_upload.pk)]}),
    E("api-import", "get", ANY, 200, kw=lambda w: {"job_id": w.job.pk}),
    E("api-items", "get", ANY, 200),
    E("api-versions", "get", ANY, 200),
    E("api-versions", "post", (DS,), 201, setup=_all_labeled, data={"name": "second"}),
    E("api-version-diff", "get", ANY, 200, setup=_unprofiled_version, data={"a": 1, "b": 2}),
    E("api-version", "get", ANY, 200, kw=_dv),
    # labeling
    E("api-labeling-schema", "get", ANY, 200),
    E(
        "api-labeling-schema",
        "put",
        (PM, DS),
        200,
        data=lambda w: {
            "classes": [
                {"id": w.good.pk, "name": "good", "color": "#1a7f4b", "hotkey": "1"},
                {"id": w.defect.pk, "name": "defect", "color": "#b42318", "hotkey": "2"},
            ]
        },
    ),
    E("api-labeling-next", "post", (LAB,), 200, data={"n": 1}),
    E("api-labeling-item", "get", ANY, 200, kw=_item),
    E(
        "api-labeling-label",
        "post",
        (LAB,),
        200,
        kw=lambda w: {"item_id": w.items[1].pk},
        data={"label_class": "defect"},
    ),
    E("api-labeling-skip", "post", (LAB,), 200, kw=lambda w: {"item_id": w.items[1].pk}),
    E("api-labeling-undo", "post", (LAB,), 200, kw=_item),
    E("api-labeling-resolve", "post", (REV,), 200, kw=_item, data={"label_class": "good", "comment": "ok"}),
    E("api-labeling-bulk", "post", (LAB,), 200, data=lambda w: {"items": [w.items[2].pk], "label_class": "good"}),
    E("api-labeling-progress", "get", ANY, 200),
    E("api-labeling-agreement", "get", ANY, 200),
    E("api-labeling-review", "get", (REV,), 200),
    E("api-labeling-accept", "post", (REV,), 200, kw=lambda w: {"annotation_id": w.annotation.pk}),
    E(
        "api-labeling-reject",
        "post",
        (REV,),
        200,
        kw=lambda w: {"annotation_id": w.annotation.pk},
        data={"comment": "that is a defect"},
    ),
    E("api-labeling-import", "post", (PM, DS), 200, data=_labels_csv, format="multipart"),
    E("api-labeling-export", "get", ANY, 200, kw=lambda w: {"number": w.dv.number, "fmt": "csv"}),
    E("api-labeling-export-current", "get", ANY, 200, kw=lambda w: {"fmt": "coco.json"}),
    # profiling
    E("api-profiling-runs", "get", ANY, 200),
    E("api-profiling-runs", "post", (DS,), 202, data=lambda w: {"version": w.dv.number}),
    E("api-profiling-run", "get", ANY, 200, kw=lambda w: {"run_id": w.profile.pk}),
    E("api-profiling-profile", "get", ANY, 200, kw=lambda w: {"run_id": w.profile.pk}),
    E("api-profiling-cancel", "post", (DS,), 200, setup=_queued_profile, kw=lambda w: {"run_id": w.queued_profile.pk}),
    E("api-profiling-suggest", "get", ANY, 200, kw=lambda w: {"run_id": w.profile.pk}),
    E("api-profiling-compare", "get", ANY, 200, data=lambda w: {"a": w.profile.pk, "b": w.profile.pk}),
    E("api-profiling-assertions", "get", ANY, 200),
    E("api-profiling-assertions", "put", (DS,), 200, data={"assertions": []}),
    E("api-profiling-gate", "get", ANY, 200, kw=_dv),
    E(
        "api-profiling-override",
        "post",
        (DS,),
        201,
        setup=_unprofiled_version,
        kw=lambda w: {"number": w.dv2.number},
        data={"reason": "accepted for a first try"},
    ),
    # training
    E("api-training-runs", "get", ANY, 200),
    E("api-training-runs", "post", (DS,), 201, data=lambda w: {"dataset_version": w.dv.number, "config": TINY}),
    E("api-training-estimate", "post", (DS,), 200, data=lambda w: {"dataset_version": w.dv.number, "config": TINY}),
    E("api-training-run", "get", ANY, 200, kw=_run),
    E("api-training-run-live", "get", ANY, 200, kw=_run),
    E("api-training-run-cancel", "post", (DS,), 200, setup=_queued_run, kw=lambda w: {"pk": w.queued_run.pk}),
    E("api-training-run-rerun", "post", (DS,), 201, kw=_run),
    E("api-training-run-artifact", "get", ANY, 200, kw=lambda w: {"pk": w.run.pk, "kind": "keras"}),
    E("api-training-run-misclassified", "get", ANY, 200, kw=_run),
    E("api-training-run-misclassified", "post", (DS, REV), 200, kw=_run, data=lambda w: {"items": [w.item.pk]}),
    E("api-training-sweeps", "get", ANY, 200),
    E(
        "api-training-sweeps",
        "post",
        (DS,),
        201,
        data=lambda w: {
            "dataset_version": w.dv.number,
            "base_config": TINY,
            "space": {"learning_rate": [0.001, 0.0003]},
            "max_trials": 2,
        },
    ),
    E("api-training-sweep", "get", ANY, 200, kw=lambda w: {"pk": w.sweep.pk}),
    E("api-training-sweep-cancel", "post", (DS,), 200, kw=lambda w: {"pk": w.sweep.pk}),
    # registry
    E("api-registry-models", "get", ANY, 200),
    E(
        "api-registry-models",
        "post",
        (DS,),
        201,
        setup=_second_run,
        data=lambda w: {"run": w.run2.pk, "registered_model_name": "screws"},
    ),
    E("api-registry-model", "get", ANY, 200, kw=_model),
    E("api-registry-stage", "post", (DS, MGR), 200, kw=_mv, data={"stage": "staging", "reason": "try it"}),
    E(
        "api-registry-promote",
        "post",
        (DS,),
        201,
        setup=_v2_registered,
        kw=lambda w: _mv(w, 2),
        data={"note": "better"},
    ),
    E("api-registry-bundle", "get", ANY, 200, kw=_mv),
    E("api-registry-version", "get", ANY, 200, kw=lambda w: {"pk": w.rm.pk, "ref": "1"}),
    E("api-registry-aliases", "post", (DS, MGR), 200, kw=_model, data={"name": "champion", "version": 1}),
    E("api-registry-rollback", "post", (MGR,), 200, setup=_v2_in_production, kw=_model, data={"reason": "v2 is worse"}),
    E("api-registry-requests", "get", ANY, 200),
    E("api-registry-request", "get", ANY, 200, kw=_req),
    E("api-registry-approve", "post", (MGR,), 200, kw=_req, data={"comment": "ok"}),
    E("api-registry-reject", "post", (MGR,), 200, kw=_req, data={"comment": "not yet"}),
    E("api-registry-withdraw", "post", (DS,), 200, kw=_req, data={"comment": "wrong version"}),
    E("api-registry-settings", "get", ANY, 200),
    E("api-registry-settings", "patch", (MGR,), 200, data={"required_approvals": 2}),
    E("api-registry-webhooks", "get", (MGR,), 200),
    E("api-registry-webhooks", "post", (MGR,), 201, data={"url": "https://hooks.example.com/portal"}),
    E("api-notifications", "get", AUTH, 200),
    E("api-notifications", "post", AUTH, 200, data={}),
    # monitoring
    E("api-monitoring-summary", "get", ANY, 200),
    E("api-monitoring-rules", "get", ANY, 200),
    E("api-monitoring-rules", "post", (PM, DS), 201, data={"name": "Errors", "kind": "error_rate", "threshold": 0.1}),
    E("api-monitoring-rule", "get", ANY, 200, kw=lambda w: {"rule_id": w.rule.pk}),
    E("api-monitoring-rule", "patch", (PM, DS), 200, kw=lambda w: {"rule_id": w.rule.pk}, data={"enabled": False}),
    E("api-monitoring-rule", "delete", (PM, DS), 204, kw=lambda w: {"rule_id": w.rule.pk}),
    E("api-monitoring-evaluate", "post", (PM, DS), 200),
    E("api-monitoring-live-sample", "post", (PM, DS), 200),
    E("api-monitoring-alerts", "get", ANY, 200),
    E("api-monitoring-alert", "get", ANY, 200, kw=lambda w: {"alert_id": w.alert.pk}),
    E("api-monitoring-acknowledge", "post", (MGR,), 200, kw=lambda w: {"alert_id": w.alert.pk}, data={"note": "on it"}),
    E("api-monitoring-resolve", "post", (MGR,), 200, kw=lambda w: {"alert_id": w.alert.pk}, data={"note": "fixed"}),
    # serving: predictions, routes, the comparison, the log, project tokens
    E("api-serving-state", "get", ANY, 200),
    E(
        "api-serving-predict",
        "post",
        (PM, DS, MGR),
        200,
        kw=_served,
        setup=in_production,
        format="multipart",
        data=lambda w: {"image": [_named(_png(), "screw.png")]},
    ),
    E("api-serving-route", "get", ANY, 200, kw=_served),
    E("api-serving-route", "put", (DS, MGR), 200, kw=_served, data={"mode": "off", "reason": "matrix"}),
    E("api-serving-comparison", "get", ANY, 200, kw=_served),
    E("api-serving-predictions", "get", ANY, 200),
    E("api-serving-tokens", "get", (DS, MGR), 200),
    E("api-serving-tokens", "post", (DS, MGR), 201, data={"name": "line 3 client", "scopes": ["predict"]}),
    E(
        "api-serving-token-revoke",
        "post",
        (DS, MGR),
        200,
        setup=_project_token,
        kw=lambda w: {"pk": w.project_token.pk},
    ),
    # the OpenAPI schema and its viewers
    E("api-schema", "get", AUTH, 200),
]


# Calling -------------------------------------------------------------------------------------


def _url(entry, w):
    kwargs = entry.kw(w) if entry.kw else {}
    if entry.roles != AUTH:
        kwargs = {"project_slug": w.project.slug, **kwargs}
    return reverse(entry.name, kwargs=kwargs)


def _client(entry, user):
    client = APIClient()
    if user is None:
        return client
    if entry.token:
        from apps.accounts.services import api_token_create

        _, key = api_token_create(user=user, name="matrix", scopes=list(entry.token))
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    else:
        client.force_authenticate(user)
    return client


def call(entry, w, user):
    url = _url(entry, w)
    data = entry.data(w) if callable(entry.data) else entry.data
    client = _client(entry, user)
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (entry.headers or {}).items()}
    if entry.method in SAFE:
        return client.get(url, data or {}, **headers)
    fn = getattr(client, entry.method)
    if entry.format == "raw":
        return fn(url, data, content_type="application/octet-stream", **headers)
    if entry.format == "multipart":
        return fn(url, data, format="multipart", **headers)
    return fn(url, data if data is not None else {}, format="json", **headers)


def _allowed_users(entry):
    if entry.roles == AUTH:
        return ["pm", "outsider"]
    return [who for who in ALL_MEMBERS if ROLE_OF[who] in entry.roles]


def _cases():
    """Safe methods: one case checks every allowed role. Writes: one case per allowed role, each on
    a fresh world (the first allowed call changes the state the next would need)."""
    for entry in API:
        allowed = _allowed_users(entry)
        if entry.method in SAFE:
            yield pytest.param(entry, tuple(allowed), id=entry.id)
        else:
            for who in allowed:
                yield pytest.param(entry, (who,), id=f"{entry.id} as {who}")


@pytest.mark.parametrize("entry,allowed", list(_cases()))
def test_api_access(entry, allowed, project, people):
    w = build_world(project, people)
    problems = []

    def expect(who, user, status):
        r = call(entry, w, user)
        if r.status_code != status:
            problems.append(f"{who}: expected {status}, got {r.status_code} {getattr(r, 'content', b'')[:300]!r}")

    if entry.setup:
        entry.setup(w)
    expect("anonymous", None, 401)
    if entry.roles != AUTH:
        expect("outsider", people["outsider"], 404)
        for who in ALL_MEMBERS:
            if ROLE_OF[who] not in entry.roles:
                expect(f"{who} (no role)", people[who], 403)
    for who in allowed:
        expect(who, people[who], entry.ok)
    assert not problems, f"{entry.id}:\n" + "\n".join(problems)


# Completeness --------------------------------------------------------------------------------


def walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def view_methods(pattern):
    cls = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
    if cls is None:
        return {"get", "post"}  # a function view: assume it answers both
    allowed = getattr(cls, "http_method_names", ())
    return {m for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m) and (not allowed or m in allowed)}


def test_every_api_endpoint_and_method_is_in_the_matrix():
    listed = {(e.name, e.method) for e in API}
    missing = []
    for route, pattern in walk(get_resolver().url_patterns):
        if not route.startswith("api/") or pattern.name in HUMAN_DOCS:
            continue
        assert pattern.name, f"/{route} has no URL name; name it and add it to the access matrix"
        missing += [
            f"{m.upper()} {pattern.name} (/{route})"
            for m in sorted(view_methods(pattern))
            if (pattern.name, m) not in listed
        ]
    assert not missing, "Endpoints missing from tests/security/test_access_matrix.py API:\n" + "\n".join(missing)


def test_the_matrix_lists_no_endpoint_that_does_not_exist():
    names = {p.name for _, p in walk(get_resolver().url_patterns)}
    assert not [e.id for e in API if e.name not in names]


def test_a_token_never_grants_more_than_its_scopes_or_project(project, people, api):
    """Token auth: read-only tokens cannot write; a token limited to another project sees 403."""
    from apps.accounts.models import ApiToken
    from apps.accounts.services import api_token_create
    from tests.factories import ProjectFactory

    _, read_key = api_token_create(user=people["pm"], name="ro", scopes=["read"])
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key}")
    url = reverse("api-project", kwargs={"project_slug": project.slug})
    assert c.get(url).status_code == 200
    assert c.patch(url, {"goal": "x"}, format="json").status_code == 403
    other = ProjectFactory()
    token, key = api_token_create(user=people["pm"], name="other", scopes=["read", "write"])
    ApiToken.objects.filter(pk=token.pk).update(project=other)
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert c.get(url).status_code == 403
    c.credentials(HTTP_AUTHORIZATION="Bearer mlp_not-a-real-token")
    assert c.get(url).status_code == 401
    ApiToken.objects.filter(pk=token.pk).update(revoked_at="2020-01-01T00:00:00Z")
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert c.get(reverse("api-projects")).status_code == 401


# HTML pages ----------------------------------------------------------------------------------

HTML_KWARGS = {  # URL kwarg values for pages whose pk/number could name more than one kind of object
    "training-run": _run,
    "training-run-cancel": _run,
    "training-run-rerun": _run,
    "training-run-evaluation": _run,
    "training-sweep": lambda w: {"pk": w.sweep.pk},
    "training-sweep-cancel": lambda w: {"pk": w.sweep.pk},
    "registry-request": _req,
    "registry-approve": _req,
    "registry-reject": _req,
    "registry-withdraw": _req,
    "registry-model": _model,
    "registry-rollback": _model,
    "registry-version": _mv,
    "registry-stage": _mv,
    "registry-alias": _mv,
    "registry-promote": _mv,
    "registry-bundle": _mv,
    "labeling-export-file": lambda w: {"number": w.dv.number, "fmt": "csv"},
    "labeling-export-current": lambda w: {"fmt": "yolo.zip"},
    "project-export": lambda w: {"fmt": "md"},
    "serving-route": lambda w: {"model": w.rm.name},
    "serving-token-revoke": lambda w: _project_token(w) or {"pk": w.project_token.pk},
    "registry-webhook-delete": lambda w: {"hook": _webhook(w).pk},
    "monitoring-rule-toggle": lambda w: {"rule": _rule(w).pk},
    "project-member-remove": lambda w: {"user_id": w.people["labeler"].pk},
    "labeling-labeler": lambda w: {"username": "me"},
    "monitoring-rule-delete": lambda w: {"rule": _rule(w).pk},
    "project-comments": lambda w: {"kind": "run", "target_id": w.run.pk},
    "project-comment-edit": lambda w: {"pk": w.comment.pk},
}


def _rule(w):
    from apps.monitoring.services import alert_rule_create

    return alert_rule_create(project=w.project, user=w.people["pm"], data={"name": "matrix", "kind": "error_rate"})


def _webhook(w):
    from apps.registry.services import webhook_create

    return webhook_create(project=w.project, user=w.people["manager"], url="https://hooks.example.com/m", events=[])


BY_KWARG = {
    "item_id": lambda w: w.item.pk,
    "annotation_id": lambda w: w.annotation.pk,
    "job_id": lambda w: w.job.pk,
    "run_id": lambda w: w.profile.pk,
    "alert_id": lambda w: w.alert.pk,
    "number": lambda w: w.dv.number,
}
HTML_QUERY = {"datasets-version-diff": "?a=1&b=1", "profiling-compare": "?a={profile}&b={profile}"}
# The interactive API docs are pages for people (signed out: the login page, then back), not API endpoints.
HUMAN_DOCS = ["api-docs", "api-redoc"]
SITE_PAGES = [
    "home",
    "portfolio",
    "project-create",
    "notifications",
    "tokens",
    "backbones",
    *HUMAN_DOCS,
]  # signed-in only, not in a project


def project_pages():
    for route, pattern in walk(get_resolver().url_patterns):
        if route.startswith("p/<slug:slug>/"):
            yield pattern.name, sorted(pattern.pattern.converters), sorted(view_methods(pattern))


def _page_url(name, converters, w):
    kwargs = {"slug": w.project.slug}
    if name in HTML_KWARGS:
        kwargs.update(HTML_KWARGS[name](w))
    for key in converters:
        if key not in kwargs:
            assert key in BY_KWARG, f"page {name}: add its '{key}' to HTML_KWARGS in the access matrix"
            kwargs[key] = BY_KWARG[key](w)
    return reverse(name, kwargs=kwargs) + HTML_QUERY.get(name, "").format(profile=w.profile.pk)


def test_project_pages_are_404_for_outsiders_and_send_anonymous_visitors_to_login(project, people):
    w = build_world(project, people)
    outsider, anonymous = Client(), Client()
    outsider.force_login(people["outsider"])
    problems, seen = [], 0
    for name, converters, methods in project_pages():
        url = _page_url(name, converters, w)
        for method in methods:
            seen += 1
            r = getattr(outsider, method)(url)
            if r.status_code != 404:
                problems.append(f"outsider {method.upper()} {url}: {r.status_code}")
            r = getattr(anonymous, method)(url)
            if r.status_code != 302 or not r["Location"].startswith(reverse("login") + "?next="):
                problems.append(f"anonymous {method.upper()} {url}: {r.status_code} {r.get('Location')}")
    assert seen > 60 and not problems, "\n".join(problems)


def test_site_pages_need_a_login(db):
    for name in SITE_PAGES:
        r = Client().get(reverse(name))
        assert r.status_code == 302 and r["Location"].startswith(reverse("login")), name


def test_every_member_reads_the_project_pages_open_to_them(project, people):
    """Members: pages without a role requirement answer 200 to every member (no 500 on real data);
    role-restricted pages answer 403 to members without the role."""
    w = build_world(project, people)
    restricted = {
        "datasets-upload": (DS,),
        "labeling-workspace": (LAB,),
        "labeling-grid": (LAB,),
        "labeling-schema": (PM, DS),
        "labeling-review": (REV,),
        "labeling-import": (PM, DS),
        "training-run-create": (DS,),
        "training-sweep-create": (DS,),
        "serving-tokens": (DS, MGR),
        "project-comment-edit": (DS,),  # its author's (a data scientist in the world)
    }
    problems = []
    for name, converters, methods in project_pages():
        if "get" not in methods:
            continue
        url = _page_url(name, converters, w)
        for who in ALL_MEMBERS:
            c = Client()
            c.force_login(people[who])
            want = 200 if ROLE_OF[who] in restricted.get(name, ANY) else 403
            r = c.get(url)
            if r.status_code != want:
                problems.append(f"{who} GET {name}: {r.status_code}, expected {want}")
    assert not problems, "\n".join(problems)


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)


def test_every_page_sends_the_content_security_policy_and_carries_no_inline_script(project, people):
    """The CSP (no inline script, no eval, own origin only) on every page a member opens, and nothing on
    those pages that the policy would block: no inline <script> (JSON data blocks are not scripts),
    no on…= handler attribute. (tests/e2e checks in Chromium that no violation is reported.)"""
    w = build_world(project, people)
    problems, seen = [], 0
    pages = [(reverse(n), "pm") for n in SITE_PAGES] + [("/login/", None)]
    pages += [
        (_page_url(n, conv, w), who)
        for n, conv, methods in project_pages()
        if "get" in methods
        for who in ("pm", "ds", "labeler", "reviewer", "manager")
    ][::1]
    done = set()
    for url, who in pages:
        c = Client()
        if who:
            c.force_login(people[who])
        r = c.get(url)
        if r.status_code != 200 or url in done or not r.get("Content-Type", "").startswith("text/html"):
            continue
        done.add(url)
        seen += 1
        csp = r.get("Content-Security-Policy", "")
        script_src = next((d for d in csp.split(";") if d.strip().startswith("script-src")), "")
        if "'self'" not in script_src or "unsafe" in script_src or "default-src 'self'" not in csp:
            problems.append(f"{url}: policy {csp!r}")
        body = r.content.decode()
        for bad in INLINE_SCRIPT.findall(body) + INLINE_HANDLER.findall(body):
            problems.append(f"{url}: {bad[:80]}")
    assert seen >= 40, seen
    assert not problems, "\n".join(problems)
