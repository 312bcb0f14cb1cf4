"""The manager's portfolio: every project the user belongs to on one page, each with its stage, its
approved targets against the production model's measured figures, its open promotion requests (a
cross-project approval inbox) and its open alerts, and its slipping milestones (apps.projects.plan).

Monitoring is the last stage, so it may read every stage before it. The page is built from one
query per kind of row for all the projects at once (never one per project): at 200 projects it
costs a handful of queries, as one project's page does (bench/portfolio.py).
"""

from django.db.models import Count

from apps.accounts.models import ProjectMember, Role
from apps.core.stages import STAGES as PIPELINE
from apps.datasets.models import DatasetVersion, Item
from apps.labeling.models import ItemLabel
from apps.projects.models import ScopeRevision, ScopeStatus, Target
from apps.projects.plan import slipping_by_project
from apps.projects.selectors import projects_for_user
from apps.registry.models import ModelVersion, PromotionRequest, RequestStatus, Stage
from apps.training.ml.evaluate import metric_lookup
from apps.training.models import TrainingRun

from .models import OPEN_ALERT, Alert

STAGES = [
    ("scope", "Scope"),
    ("data", "Data"),
    ("labeling", "Labeling"),
    ("training", "Training"),
    ("registry", "Registry"),
    ("production", "In production"),
]


def _by_project(rows):
    out = {}
    for pid, value in rows:
        out.setdefault(pid, []).append(value)
    return out


def _counts(qs, key):
    """{project id: rows of ``qs``} in one grouped query."""
    return dict(qs.values_list(key).annotate(n=Count("id")).values_list(key, "n"))


def portfolio(user):
    """Rows (one per project of ``user``, by name) and the open promotion requests across them."""
    projects = list(projects_for_user(user).order_by("name"))
    ids = [p.pk for p in projects]
    roles = _by_project(ProjectMember.objects.filter(user=user, project_id__in=ids).values_list("project_id", "role"))
    items = _counts(Item.objects.filter(project_id__in=ids), "project_id")
    labeled = _counts(ItemLabel.objects.filter(item__project_id__in=ids), "item__project_id")
    versions = _counts(DatasetVersion.objects.filter(project_id__in=ids, status="ready"), "project_id")
    runs = _counts(TrainingRun.objects.filter(project_id__in=ids, status="succeeded"), "project_id")
    production = _by_project(
        (v.registered_model.project_id, v)
        for v in ModelVersion.objects.filter(registered_model__project_id__in=ids, stage=Stage.PRODUCTION)
        .select_related("registered_model")
        .order_by("registered_model__name")
    )
    registered = set(
        ModelVersion.objects.filter(registered_model__project_id__in=ids)
        .values_list("registered_model__project_id", flat=True)
        .distinct()
    )
    approved = {}
    for rev in ScopeRevision.objects.filter(project_id__in=ids, status=ScopeStatus.APPROVED).order_by("-number"):
        approved.setdefault(rev.project_id, rev)
    requests = list(
        PromotionRequest.objects.filter(version__registered_model__project_id__in=ids, status=RequestStatus.OPEN)
        .select_related("version__registered_model__project", "requested_by")
        .order_by("created_at")
    )
    waiting = _by_project((r.version.registered_model.project_id, r) for r in requests)
    alerts = _by_project(
        (a.project_id, a)
        for a in Alert.objects.filter(project_id__in=ids, status__in=OPEN_ALERT).order_by("-opened_at")
    )
    slipping = slipping_by_project(ids)
    titles = dict(PIPELINE)
    rows = []
    for p in projects:
        rev = approved.get(p.pk)
        prod = production.get(p.pk, [])
        targets = [Target.from_dict(m) for m in (rev.data.get("measurement") or [])] if rev else []
        checks = []
        for t in targets:
            value = metric_lookup(prod[0].metrics, t.metric) if prod else None
            checks.append({"target": str(t), "value": value, "met": None if value is None else t.met_by(value)})
        done = {
            "scope": p.scope_status == ScopeStatus.APPROVED or rev is not None,
            "data": items.get(p.pk, 0) > 0,
            "labeling": labeled.get(p.pk, 0) > 0 and versions.get(p.pk, 0) > 0,
            "training": runs.get(p.pk, 0) > 0,
            "registry": p.pk in registered,
            "production": bool(prod),
        }
        stage = next((key for key, _ in STAGES if not done[key]), "production")
        rows.append(
            {
                "project": p,
                "roles": sorted(roles.get(p.pk, [])),
                "stage": stage,
                "stage_label": dict(STAGES)[stage],
                "done": [done[key] for key, _ in STAGES],
                "items": items.get(p.pk, 0),
                "labeled": labeled.get(p.pk, 0),
                "production": prod,
                "checks": checks,
                "failing": sum(1 for c in checks if c["met"] is False),
                "requests": waiting.get(p.pk, []),
                "alerts": alerts.get(p.pk, []),
                "is_manager": Role.MANAGER in roles.get(p.pk, []),
                "slipping": [titles.get(key, key) for key in slipping.get(p.pk, [])],
            }
        )
    return {"rows": rows, "requests": requests, "stages": STAGES}
