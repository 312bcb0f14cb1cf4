import csv
import difflib
import io
import math
import re

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.models import ProjectMember, Role
from apps.core.audit import audit_record
from apps.core.text import clean_name

from .models import ANSWERS, CHECKLIST, COMPARATORS, SCOPE_FIELDS, Project, ScopeRevision, ScopeStatus, Target
from .permissions import require_role
from .signals import project_deleting, scope_submitted

METRIC_RE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
TEXT_LIMITS = {"name": 120, "dataset": 300, "model": 300, "code_language": 60, "goal": 5000}


def scope_clean(data: dict) -> dict:
    """Validate scope-table input; returns the cleaned fields or raises ValidationError per field."""
    errors, cleaned = {}, {}
    for field, limit in TEXT_LIMITS.items():
        if field not in data:
            continue
        value = data.get(field)
        value = "" if value is None else str(value).strip()
        if field == "name":
            value = clean_name(value)
        if len(value) > limit:
            errors[field] = f"At most {limit} characters (got {len(value)})."
        cleaned[field] = value
    if "name" in data and not cleaned.get("name"):
        errors["name"] = "The project name must not be empty."

    if "dataset_link" in data:
        link = str(data.get("dataset_link") or "").strip()
        if link:
            try:
                URLValidator(schemes=["http", "https", "s3", "gs", "ftp"])(link)
            except ValidationError:
                errors["dataset_link"] = f"{link!r} is not a valid link (use http(s)://, s3:// or gs://)."
        cleaned["dataset_link"] = link

    if "measurement" in data:
        rows = data.get("measurement") or []
        if not isinstance(rows, list):
            errors["measurement"] = "Measurement must be a list of {metric, comparator, target}."
        else:
            out, row_errors = [], []
            for i, row in enumerate(rows, start=1):
                if not isinstance(row, dict):
                    row_errors.append(f"Row {i}: expected an object with metric, comparator and target.")
                    continue
                metric = str(row.get("metric") or "").strip().lower().replace(" ", "_")
                comparator = str(row.get("comparator") or "").strip()
                raw = row.get("target")
                unit = str(row.get("unit") or "").strip()[:20]
                if not METRIC_RE.match(metric):
                    row_errors.append(f"Row {i}: metric {metric!r} must be a name like accuracy or p95_latency_ms.")
                if comparator not in COMPARATORS:
                    row_errors.append(f"Row {i}: comparator {comparator!r} must be one of {', '.join(COMPARATORS)}.")
                try:
                    target = float(raw)
                    if isinstance(raw, bool) or not math.isfinite(target):
                        raise ValueError
                except (TypeError, ValueError):
                    row_errors.append(f"Row {i}: target {raw!r} is not a number.")
                    continue
                out.append({"metric": metric, "comparator": comparator, "target": target, "unit": unit})
            metrics = [r["metric"] for r in out]
            dupes = sorted({m for m in metrics if metrics.count(m) > 1})
            if dupes:
                row_errors.append(f"Each metric once: {', '.join(dupes)} appears more than once.")
            if row_errors:
                errors["measurement"] = row_errors
            cleaned["measurement"] = out

    if "delivery" in data:
        items = data.get("delivery") or []
        if isinstance(items, str):
            items = items.splitlines()
        if not isinstance(items, list):
            errors["delivery"] = "Delivery must be a list of deliverables."
        else:
            items = [str(x).strip() for x in items if str(x).strip()]
            if any(len(x) > 300 for x in items):
                errors["delivery"] = "Each deliverable at most 300 characters."
            cleaned["delivery"] = items

    if "checklist" in data:
        raw = data.get("checklist") or {}
        if not isinstance(raw, dict):
            errors["checklist"] = "Checklist must be an object of {question: {answer, note}}."
        else:
            out, bad = {}, []
            keys = dict(CHECKLIST)
            for key, value in raw.items():
                if key not in keys:
                    bad.append(f"Unknown checklist item {key!r}.")
                    continue
                answer = (value.get("answer") if isinstance(value, dict) else value) or "unsure"
                note = str(value.get("note") or "")[:500] if isinstance(value, dict) else ""
                if answer not in ANSWERS:
                    bad.append(f"{key}: answer must be yes, no or unsure.")
                    continue
                out[key] = {"answer": answer, "note": note.strip()}
            if bad:
                errors["checklist"] = bad
            cleaned["checklist"] = out
    if errors:
        raise ValidationError(errors)
    return cleaned


def checklist_verdict(checklist: dict) -> dict:
    """``suitable`` when every item is yes, ``not_suitable`` when any is no, else ``needs_answers``."""
    answers = {key: (checklist.get(key) or {}).get("answer", "unsure") for key, _ in CHECKLIST}
    no = [k for k, a in answers.items() if a == "no"]
    open_ = [k for k, a in answers.items() if a == "unsure"]
    questions = dict(CHECKLIST)
    if no:
        return {"verdict": "not_suitable", "label": "Not suited to ML as scoped", "reasons": [questions[k] for k in no]}
    if open_:
        return {
            "verdict": "needs_answers",
            "label": f"{len(open_)} question(s) still open",
            "reasons": [questions[k] for k in open_],
        }
    return {"verdict": "suitable", "label": "Suited to ML", "reasons": []}


def _unique_slug(name):
    base = slugify(name)[:50] or "project"
    slug, n = base, 2
    while Project.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _revision_add(project, author, comment=""):
    number = (project.scope_revisions.aggregate(m=Max("number"))["m"] or 0) + 1
    return ScopeRevision.objects.create(
        project=project,
        number=number,
        data=project.scope_snapshot(),
        status=project.scope_status,
        author=author,
        comment=comment[:300],
    )


def creator_roles_clean(roles):
    """The roles a project's creator takes: all five when not said; PM always (someone owns the scope)."""
    if roles is None:
        return list(Role.values)
    roles = [str(r) for r in roles]
    unknown = [r for r in roles if r not in Role.values]
    if unknown:
        raise ValidationError({"creator_roles": [f"{unknown[0]!r} is not a role (one of: {', '.join(Role.values)})."]})
    return [r for r in Role.values if r in set(roles) | {Role.PM}]


@transaction.atomic
def project_create(*, creator, name, creator_roles=None, **scope):
    """A new project in draft. The creator takes ``creator_roles`` in it (all five by default, PM
    always), so whoever makes a project can upload, label, train and approve in it at once."""
    roles = creator_roles_clean(creator_roles)
    cleaned = scope_clean({"name": name, **scope})
    project = Project.objects.create(slug=_unique_slug(cleaned["name"]), created_by=creator, **cleaned)
    ProjectMember.objects.bulk_create([ProjectMember(project=project, user=creator, role=r) for r in roles])
    _revision_add(project, creator, "created")
    audit_record(actor=creator, project=project, action="project.created", obj=project)
    return project


@transaction.atomic
def scope_update(*, project, user, data, comment=""):
    """Save changes to the scope table. Editing a submitted or approved scope returns it to draft."""
    cleaned = scope_clean(data)
    project = Project.objects.select_for_update().get(pk=project.pk)
    before = project.scope_snapshot()
    for field, value in cleaned.items():
        setattr(project, field, value)
    if project.scope_snapshot() == before:
        return project
    reopened = project.scope_status != ScopeStatus.DRAFT
    project.scope_status = ScopeStatus.DRAFT
    project.save()
    _revision_add(project, user, comment or ("edited; back to draft" if reopened else "edited"))
    return project


def _scope_move(project, user, old, new, action, reason=""):
    with transaction.atomic():
        moved = Project.objects.filter(pk=project.pk, scope_status__in=old).update(scope_status=new)
        if not moved:
            current = Project.objects.get(pk=project.pk).get_scope_status_display()
            raise ValidationError(f"The scope is {current}; it cannot be {action.split('.')[-1]} now.")
        project.refresh_from_db()
        _revision_add(project, user, reason or action.split(".")[-1])
        audit_record(actor=user, project=project, action=action, obj=project, reason=reason)
    return project


def scope_submit(*, project, user):
    missing = [label for field, label in SCOPE_FIELDS if not getattr(project, field)]
    if missing:
        raise ValidationError(f"Fill these before submitting: {', '.join(missing)}.")
    project = _scope_move(project, user, [ScopeStatus.DRAFT], ScopeStatus.SUBMITTED, "scope.submitted")
    transaction.on_commit(lambda: scope_submitted.send(sender=Project, project=project, user=user))
    return project


def scope_approve(*, project, user, reason=""):
    project = _scope_move(project, user, [ScopeStatus.SUBMITTED], ScopeStatus.APPROVED, "scope.approved", reason)
    if project.scope_override_at:  # approved now: an earlier override has done its work
        Project.objects.filter(pk=project.pk).update(
            scope_override_reason="", scope_override_by=None, scope_override_at=None
        )
        project.refresh_from_db()
    return project


def scope_reject(*, project, user, reason):
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why the scope goes back to draft."})
    return _scope_move(project, user, [ScopeStatus.SUBMITTED], ScopeStatus.DRAFT, "scope.returned", reason)


def scope_gate(project):
    """Why work past the scope (training, promotion) may not go on yet; "" when it may. The scope
    must have been approved by a manager (a later draft revision does not close the gate: the
    approved revision's targets stay in force until the draft is approved) and not be judged
    unsuited to ML (a "no" in its checklist), unless a manager recorded an override with a reason."""
    if project.scope_override_at:
        return ""
    approved = None
    if project.scope_status != ScopeStatus.APPROVED:
        approved = project.approved_revision()
        if approved is None:
            return (
                f"the project's scope is {project.get_scope_status_display().lower()} and has never been "
                "approved: the PM submits it and a manager approves it (or a manager overrides this with a "
                "reason on the scope page)"
            )
    checklist = project.checklist if approved is None else (approved.data or {}).get("checklist") or {}
    verdict = checklist_verdict(checklist)
    if verdict["verdict"] == "not_suitable":
        return (
            f"the scope's suitability checklist says it is not suited to ML ({'; '.join(verdict['reasons'])}): "
            "the PM revisits it (or a manager overrides this with a reason on the scope page)"
        )
    return ""


def scope_gate_require(project, what):
    """Raise a ValidationError naming why ``what`` is refused, when the scope gate is closed."""
    why = scope_gate(project)
    if why:
        raise ValidationError({"scope": [f"{what} refused: {why}."]})


@transaction.atomic
def scope_gate_override(*, project, user, reason):
    """A manager lets work go on before the scope is approved (or although it is judged unsuited),
    with a reason; audited. It stands until the scope is approved and suited again."""
    require_role(user, project, Role.MANAGER)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why work may go on before the scope is approved."]})
    project.scope_override_reason, project.scope_override_by, project.scope_override_at = reason, user, timezone.now()
    project.save(update_fields=["scope_override_reason", "scope_override_by", "scope_override_at"])
    audit_record(
        actor=user,
        project=project,
        action="scope.gate_overridden",
        obj=project,
        reason=reason,
        data={"scope_status": project.scope_status, "verdict": checklist_verdict(project.checklist)["verdict"]},
    )
    return project


@transaction.atomic
def project_delete(*, project, user):
    """The project and everything every stage keeps of it (``project_deleting``: each stage answers
    with its own rows; the newest stage's go first). Blobs stay: they are content-addressed and may
    be shared with other projects."""
    audit_record(actor=user, project=None, action="project.deleted", data={"slug": project.slug, "name": project.name})
    for _receiver, querysets in reversed(project_deleting.send(sender=type(project), project=project)):
        for qs in querysets or ():
            qs.delete()
    project.delete()


# Rendering the scope as lines, for diffs and exports -------------------------------------------


def _render_value(field, value):
    if field == "measurement":
        return [str(Target.from_dict(m)) for m in value or []]
    if field == "delivery":
        return [f"- {d}" for d in value or []]
    if field == "checklist":
        lines = []
        for k, q in CHECKLIST:
            item = (value or {}).get(k, {})
            note = (item.get("note") or "").strip()
            lines.append(f"{q}: {item.get('answer', 'unsure')}" + (f" — note: {note}" if note else ""))
        return lines
    return (str(value or "")).splitlines() or [""]


def scope_rows(data: dict):
    """[(label, [lines])] for every field of the scope table plus the checklist."""
    rows = [(label, _render_value(field, data.get(field))) for field, label in SCOPE_FIELDS]
    rows.append(("Suitability checklist", _render_value("checklist", data.get("checklist"))))
    return rows


def revision_diff(old: ScopeRevision, new: ScopeRevision):
    """Per field: (label, changed, unified diff lines)."""
    out = []
    for (label, a), (_, b) in zip(scope_rows(old.data), scope_rows(new.data)):
        lines = list(difflib.unified_diff(a, b, lineterm="", n=2))[2:]
        out.append({"field": label, "changed": a != b, "old": a, "new": b, "diff": lines})
    return out


def scope_markdown(project) -> str:
    verdict = checklist_verdict(project.checklist)
    lines = [
        f"# {project.name} — project scope",
        "",
        f"Status: {project.get_scope_status_display()}",
        "",
        "| Field | Value |",
        "|---|---|",
    ]
    for label, values in scope_rows(project.scope_snapshot())[:-1]:
        cell = "<br>".join(v.replace("|", "\\|") for v in values)
        lines.append(f"| {label} | {cell} |")
    lines += ["", "## Suitability", "", f"Verdict: **{verdict['label']}**", ""]
    for key, question in CHECKLIST:
        item = project.checklist.get(key, {})
        note = f" — {item['note']}" if item.get("note") else ""
        lines.append(f"- {question} **{item.get('answer', 'unsure')}**{note}")
    return "\n".join(lines) + "\n"


def csv_safe(value: str) -> str:
    """Keep a spreadsheet from reading a cell as a formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def scope_csv(project) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["field", "value"])
    for label, values in scope_rows(project.scope_snapshot()):
        writer.writerow([label, csv_safe("\n".join(values))])
    writer.writerow(["Status", project.get_scope_status_display()])
    writer.writerow(["Verdict", checklist_verdict(project.checklist)["label"]])
    return buf.getvalue()
