"""The scope's plan: a milestone per stage (planned dates, an owner), a resource estimate the PM enters
or accepts from the portal's forecast, and how the work actually went.

Actual dates and forecasts come from the stages themselves (``apps.core.stages``: each app registers
when its stage started and finished, and forecasts from the project's measured rates), so this
module names no later stage. A milestone *slips* when it is due and not done, should have started
and has not, or when its stage's forecast finishes after the planned end.
"""

import datetime as dt
import math

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import ProjectMember, Role
from apps.core.audit import audit_record
from apps.core.stages import STAGES, StageSpan, project_forecasts, stage_spans

from .models import Milestone, ProjectPlan
from .permissions import require_role

ESTIMATES = [
    ("labeling_hours", "Labeling hours", "h"),
    ("compute_hours", "Compute hours", "h"),
    ("storage_gb", "Storage", "GB"),
]
SIZES = [("planned_items", "Images expected"), ("planned_runs", "Training runs expected")]
ESTIMATE_LIMIT = 1e7
ACTUALS_TTL = dt.timedelta(minutes=10)  # the portfolio re-reads a project's actual dates this often


def plan_of(project):
    """The project's plan row (an unsaved empty one when the PM never saved a plan)."""
    return ProjectPlan.objects.filter(project=project).first() or ProjectPlan(project=project)


def milestones_of(project):
    """{stage key: Milestone} for every stage (unsaved, empty ones where none is planned)."""
    have = {m.stage: m for m in Milestone.objects.filter(project=project).select_related("owner")}
    return {key: have.get(key) or Milestone(project=project, stage=key) for key, _ in STAGES}


def _date(value, field, errors):
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        errors[field] = f"{str(value)[:40]!r} is not a date (use YYYY-MM-DD)."
        return None


def _number(value, field, errors, *, integer=False):
    if value in (None, ""):
        return None
    try:
        number = int(str(value).strip()) if integer else float(str(value).strip())
    except (TypeError, ValueError):
        errors[field] = f"{str(value)[:40]!r} is not a {'whole ' if integer else ''}number."
        return None
    if not math.isfinite(number) or number < 0 or number > ESTIMATE_LIMIT:
        errors[field] = f"Must be between 0 and {ESTIMATE_LIMIT:,.0f}."
        return None
    return number


def plan_clean(project, milestones, estimate):
    """Check a plan from outside. ``milestones``: {stage: {planned_start, planned_end, owner}}
    (owner: a member's username, "" for none); ``estimate``: the ESTIMATES and SIZES fields.
    Errors name their field: ``<stage>_start``, ``<stage>_end``, ``<stage>_owner`` or the estimate's."""
    errors, rows, values = {}, {}, {}
    known = dict(STAGES)
    if not isinstance(milestones, dict) or not isinstance(estimate, dict):
        raise ValidationError("The plan is {milestones: {stage: {...}}, estimate: {...}}.")
    unknown = sorted(set(milestones) - set(known))
    if unknown:
        errors["milestones"] = (
            f"Unknown stage(s): {', '.join(map(str, unknown))[:200]}; the stages are {', '.join(known)}."
        )
    owners = {}
    names = [str(m.get("owner") or "").strip() for m in milestones.values() if isinstance(m, dict)]
    if any(names):
        users = get_user_model().objects.filter(
            username__in=[n for n in names if n],
            pk__in=ProjectMember.objects.filter(project=project).values("user_id"),
        )
        owners = {u.username: u for u in users}
    for key in known:
        row = milestones.get(key)
        if row is None:
            continue
        if not isinstance(row, dict):
            errors[f"{key}_end"] = "Give planned_start, planned_end and owner."
            continue
        start = _date(row.get("planned_start"), f"{key}_start", errors)
        end = _date(row.get("planned_end"), f"{key}_end", errors)
        if start and end and end < start:
            errors[f"{key}_end"] = f"{known[key]} cannot end ({end:%d %b %Y}) before it starts ({start:%d %b %Y})."
        name = str(row.get("owner") or "").strip()
        if name and name not in owners:
            errors[f"{key}_owner"] = f"{name[:60]!r} is not a member of this project."
        rows[key] = {"planned_start": start, "planned_end": end, "owner": owners.get(name)}
    for field, _, _ in ESTIMATES:
        if field in estimate:
            values[field] = _number(estimate[field], field, errors)
    for field, _ in SIZES:
        if field in estimate:
            values[field] = _number(estimate[field], field, errors, integer=True)
    if errors:
        raise ValidationError(errors)
    return rows, values


@transaction.atomic
def plan_save(*, project, user, milestones=None, estimate=None):
    """The PM saves the plan (all of it or a part: stages and fields not given stay as they were)."""
    require_role(user, project, Role.PM)
    rows, values = plan_clean(project, milestones or {}, estimate or {})
    plan = plan_of(project)
    for field, value in values.items():
        setattr(plan, field, value)
    plan.updated_by = user
    plan.save()
    changed = {}
    for key, row in rows.items():
        m, _ = Milestone.objects.get_or_create(project=project, stage=key)
        before = (m.planned_start, m.planned_end, m.owner_id)
        m.planned_start, m.planned_end, m.owner = row["planned_start"], row["planned_end"], row["owner"]
        if before != (m.planned_start, m.planned_end, m.owner_id):
            m.save(update_fields=["planned_start", "planned_end", "owner"])
            changed[key] = {
                "planned_start": str(m.planned_start or ""),
                "planned_end": str(m.planned_end or ""),
                "owner": m.owner.username if m.owner else "",
            }
    audit_record(
        actor=user,
        action="plan.updated",
        project=project,
        obj=project,
        data={"milestones": changed, "estimate": dict(values)},
    )
    actuals_refresh(project)
    return plan


def forecast_accept(*, project, user, resource):
    """The PM takes the portal's forecast of ``resource`` as the plan's estimate."""
    require_role(user, project, Role.PM)
    if resource not in {f for f, _, _ in ESTIMATES}:
        raise ValidationError(
            {"resource": f"{str(resource)[:40]!r} is not an estimate ({', '.join(f for f, _, _ in ESTIMATES)})."}
        )
    plan = plan_of(project)
    forecast = project_forecasts(project, plan, timezone.now()).get(resource)
    if forecast is None or forecast.value is None:
        raise ValidationError(
            {"resource": f"No forecast of {resource} yet: {forecast.basis if forecast else 'nothing measured.'}"}
        )
    return plan_save(project=project, user=user, estimate={resource: forecast.value})


def actuals_refresh(project, now=None):
    """Copy each stage's actual start and finish onto its milestone (what the portfolio reads)."""
    spans = stage_spans(project)
    for m in Milestone.objects.filter(project=project):
        span = spans.get(m.stage)
        if span is not None and (m.actual_start, m.actual_end) != (span.started, span.finished):
            m.actual_start, m.actual_end = span.started, span.finished
            m.save(update_fields=["actual_start", "actual_end"])
    ProjectPlan.objects.filter(project=project).update(actuals_at=now or timezone.now())
    return spans


def milestone_status(m, span, forecast, today):
    """(status, why): done | late (done after its planned end) | slipping | on_track | unplanned."""
    end, start = m.planned_end, m.planned_start
    if span.finished:
        finished = timezone.localdate(span.finished)
        if end and finished > end:
            return "late", f"done {finished:%d %b}, {(finished - end).days} day(s) after the planned {end:%d %b}"
        return "done", f"done {finished:%d %b}"
    if not (start or end):
        return "unplanned", "no dates planned"
    if end and today > end:
        return "slipping", f"due {end:%d %b} and not done ({(today - end).days} day(s) late)"
    if start and today > start and not span.started:
        return "slipping", f"should have started {start:%d %b} and has not"
    if end and forecast is not None and forecast.finish and forecast.finish > end:
        return "slipping", f"the forecast finishes {forecast.finish:%d %b}, after the planned {end:%d %b}"
    return "on_track", f"due {end:%d %b}" if end else f"starts {start:%d %b}"


def plan_view(project, now=None, *, brief=False, plan=None):
    """Everything the plan page and the API show: one row per stage (planned, actual, owner, status),
    the estimate beside the forecasts, and the slipping milestones.

    ``brief`` (the project page): the actual dates stored on the milestones (re-read from the stages
    only when older than ACTUALS_TTL) and the labeling forecast alone, for a page every member opens."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    plan = plan or plan_of(project)
    if brief and plan.pk and plan.actuals_at and now - plan.actuals_at < ACTUALS_TTL:
        milestones = milestones_of(project)
        spans = {key: StageSpan(m.actual_start, m.actual_end) for key, m in milestones.items()}
    else:
        spans = actuals_refresh(project, now) if plan.pk else stage_spans(project)
        milestones = milestones_of(project)
    forecasts = project_forecasts(project, plan, now, only=("labeling_hours",) if brief else None)
    by_stage = {f.stage: f for f in forecasts.values() if f.stage}
    rows = []
    for key, title in STAGES:
        m, span = milestones[key], spans[key]
        status, why = milestone_status(m, span, by_stage.get(key), today)
        rows.append(
            {
                "stage": key,
                "title": title,
                "milestone": m,
                "planned_start": m.planned_start,
                "planned_end": m.planned_end,
                "owner": m.owner.username if m.owner_id and m.owner else "",
                "actual_start": span.started,
                "actual_end": span.finished,
                "status": status,
                "status_label": STATUS_LABELS[status],
                "why": why,
                "forecast": by_stage.get(key),
            }
        )
    estimate = [
        {
            "field": field,
            "title": title,
            "unit": unit,
            "value": getattr(plan, field),
            "forecast": forecasts.get(field),
        }
        for field, title, unit in ESTIMATES
    ]
    return {
        "plan": plan,
        "rows": rows,
        "estimate": estimate,
        "forecasts": forecasts,
        "slipping": [r for r in rows if r["status"] == "slipping"],
        "today": today,
        "chart": timeline_chart(rows, today),
    }


STATUS_LABELS = {
    "done": "done",
    "late": "done late",
    "slipping": "slipping",
    "on_track": "on track",
    "unplanned": "no dates",
}
STATUS_COLORS = {
    "done": "#2e7d32",
    "late": "#b26a00",
    "slipping": "#b42318",
    "on_track": "#1f6feb",
    "unplanned": "#8c959f",
}
DAY_MS = 86_400_000


def timeline_chart(rows, today):
    """The planned-vs-actual timeline as a Plotly figure (plain JSON; static/core/charts.js draws it):
    per stage a planned bar and an actual bar (to today while it runs), coloured by status."""

    def day(value):
        if value is None:
            return None
        return timezone.localdate(value) if isinstance(value, dt.datetime) else value

    planned, actual = {"y": [], "base": [], "x": [], "text": []}, {"y": [], "base": [], "x": [], "text": [], "c": []}
    for r in rows:
        a, b = day(r["planned_start"]) or day(r["planned_end"]), day(r["planned_end"]) or day(r["planned_start"])
        if a:
            planned["y"].append(r["title"])
            planned["base"].append(a.isoformat())
            planned["x"].append(((b - a).days + 1) * DAY_MS)
            planned["text"].append(f"planned {a:%d %b} – {b:%d %b}")
        s, e = day(r["actual_start"]), day(r["actual_end"])
        if s:
            e = e or today
            actual["y"].append(r["title"])
            actual["base"].append(s.isoformat())
            actual["x"].append(((e - s).days + 1) * DAY_MS)
            actual["text"].append(f"{r['status'].replace('_', ' ')}: {r['why']}")
            actual["c"].append(STATUS_COLORS[r["status"]])
    order = [r["title"] for r in rows][::-1]
    common = {"type": "bar", "orientation": "h", "hovertemplate": "%{text}<extra>%{y}</extra>"}
    every = {  # an empty bar per stage, so that every stage has its row even before any date
        "type": "bar",
        "orientation": "h",
        "y": [r["title"] for r in rows],
        "x": [0] * len(rows),
        "base": [today.isoformat()] * len(rows),
        "showlegend": False,
        "hoverinfo": "skip",
        "marker": {"color": "rgba(0,0,0,0)"},
        "offsetgroup": "planned",
    }
    return {
        "data": [
            every,
            {
                **common,
                "name": "Planned",
                "y": planned["y"],
                "x": planned["x"],
                "base": planned["base"],
                "text": planned["text"],
                "textposition": "none",
                "marker": {"color": "rgba(31,111,235,0.25)", "line": {"color": "#1f6feb", "width": 1}},
                "offsetgroup": "planned",
            },
            {
                **common,
                "name": "Actual",
                "y": actual["y"],
                "x": actual["x"],
                "base": actual["base"],
                "text": actual["text"],
                "textposition": "none",
                "marker": {"color": actual["c"]},
                "offsetgroup": "actual",
            },
        ],
        "layout": {
            "barmode": "group",
            "height": 340,
            "margin": {"l": 90, "r": 20, "t": 10, "b": 40},
            "xaxis": {"type": "date"},
            "yaxis": {"categoryorder": "array", "categoryarray": order, "range": [-0.5, len(order) - 0.5]},
            "legend": {"orientation": "h", "y": -0.15},
            "shapes": [
                {
                    "type": "line",
                    "xref": "x",
                    "yref": "paper",
                    "x0": today.isoformat(),
                    "x1": today.isoformat(),
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": "#b42318", "dash": "dot"},
                }
            ],
            "annotations": [
                {
                    "xref": "x",
                    "yref": "paper",
                    "x": today.isoformat(),
                    "y": 1,
                    "text": "today",
                    "showarrow": False,
                    "xanchor": "left",
                    "yanchor": "top",
                    "font": {"color": "#b42318", "size": 11},
                }
            ],
        },
    }


def slipping_by_project(project_ids, now=None):
    """{project id: [stage keys]} of milestones slipping by the dates alone (due and not done, or
    not started when they should have), from the stored actual dates; a project whose actual dates
    are older than ACTUALS_TTL is re-read first (the portfolio: one query when nothing is due)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    due = Milestone.objects.filter(project_id__in=project_ids).filter(
        (Q(planned_end__lt=today) & Q(actual_end__isnull=True))
        | (Q(planned_start__lt=today) & Q(actual_start__isnull=True))
    )
    candidates = set(due.values_list("project_id", flat=True))
    stale = ProjectPlan.objects.filter(project_id__in=candidates).filter(
        Q(actuals_at__isnull=True) | Q(actuals_at__lt=now - ACTUALS_TTL)
    )
    for plan in stale.select_related("project"):
        actuals_refresh(plan.project, now)
    out = {}
    for m in due.order_by("project_id", "planned_end"):
        late_end = m.planned_end and m.planned_end < today and m.actual_end is None
        late_start = m.planned_start and m.planned_start < today and m.actual_start is None and m.actual_end is None
        if late_end or late_start:
            out.setdefault(m.project_id, []).append(m.stage)
    return out
