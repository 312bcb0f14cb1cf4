"""The label schema: classes (names, colours, hotkeys) and how a project hands out work."""

import re
import uuid

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.audit import audit_record
from apps.core.colors import GREEN, class_color
from apps.core.text import clean_name

from ..models import (
    Annotation,
    ItemLabel,
    LabelClass,
    LabelingSettings,
    ReviewDecision,
)

# Keys the workspace keeps for itself; a class hotkey may not take them.
RESERVED_KEYS = {
    "s": "skip",
    "b": "back",
    "u": "undo",
    "r": "region tool",
    "g": "grid",
    "0": "reset zoom",
    "+": "zoom in",
    "-": "zoom out",
    "?": "help",
    " ": "pan",
}
HOTKEY_RE = re.compile(r"^[a-z0-9]$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_OVERLAP = 10


# Schema -------------------------------------------------------------------------------------------


def label_class_get_or_create(*, project, name):
    """The class ``name`` of ``project``, created with the next colour and hotkey if new."""
    name = clean_name(name)
    if not name or len(name) > 100:
        raise ValidationError({"label": f"Label {name!r} must be 1 to 100 characters."})
    existing = LabelClass.objects.filter(project=project, name=name).first()
    if existing:
        return existing
    n = LabelClass.objects.filter(project=project).count()
    used = set(LabelClass.objects.filter(project=project).values_list("hotkey", flat=True))
    hotkey = next((k for k in "123456789" if k not in used), "")
    warm = LabelClass.objects.filter(project=project).exclude(color=GREEN).count()
    obj, _ = LabelClass.objects.get_or_create(
        project=project,
        name=name,
        defaults={"color": class_color(name, warm), "hotkey": hotkey, "order": n},
    )
    return obj


def labeling_settings_for(project):
    obj, _ = LabelingSettings.objects.get_or_create(project=project)
    return obj


def _clean_classes(classes):
    errors, names, keys = [], set(), {}
    out = []
    for i, c in enumerate(classes, start=1):
        name = clean_name(c.get("name"))
        color = (c.get("color") or "").strip()
        hotkey = (c.get("hotkey") or "").strip().lower()
        where = f"Class {i}" + (f" ({name})" if name else "")
        if not name or len(name) > 100:
            errors.append(f"{where}: the name must be 1 to 100 characters.")
        elif name.lower() in names:
            errors.append(f"{where}: the name {name!r} is used twice.")
        names.add(name.lower())
        if not COLOR_RE.match(color):
            errors.append(f"{where}: colour {color!r} is not a #rrggbb colour.")
        if hotkey:
            if hotkey in RESERVED_KEYS:
                errors.append(f"{where}: hotkey {hotkey!r} is kept for {RESERVED_KEYS[hotkey]}; pick another.")
            elif not HOTKEY_RE.match(hotkey):
                errors.append(f"{where}: hotkey {hotkey!r} must be one letter or digit.")
            elif hotkey in keys:
                errors.append(f"{where}: hotkey {hotkey!r} is already used by {keys[hotkey]}.")
            keys[hotkey] = name
        out.append(
            {
                "id": c.get("id"),
                "name": name,
                "color": color.lower(),
                "hotkey": hotkey,
                "order": int(c.get("order") if c.get("order") not in (None, "") else i),
            }
        )
    return out, errors


@transaction.atomic
def label_schema_update(
    *, project, user, classes, overlap=None, overlap_share=None, lease_seconds=None, regions_enabled=None
):
    """Replace the project's classes (a list of {id?, name, color, hotkey, order}) and settings.

    Classes missing from the list are deleted, unless items carry them (then nothing changes)."""
    cleaned, errors = _clean_classes(classes)
    if not cleaned:
        errors.append("A schema needs at least one class.")
    field_errors = {}
    if overlap is not None and not (1 <= int(overlap) <= MAX_OVERLAP):
        field_errors["overlap"] = [f"Labels per item must be between 1 and {MAX_OVERLAP}."]
    if overlap_share is not None and not (0.0 <= float(overlap_share) <= 1.0):
        field_errors["overlap_share"] = ["The overlap sample share must be between 0 and 1 (e.g. 0.1 for 10%)."]
    if lease_seconds is not None and not (30 <= int(lease_seconds) <= 24 * 3600):
        field_errors["lease_seconds"] = ["The lease timeout must be between 30 seconds and 24 hours."]
    existing = {c.pk: c for c in LabelClass.objects.select_for_update().filter(project=project)}
    for c in cleaned:
        if c["id"] not in (None, "") and int(c["id"]) not in existing:
            errors.append(f"Class {c['name']!r}: no such class in this project (id {c['id']}).")
    keep = {int(c["id"]) for c in cleaned if c["id"] not in (None, "")}
    for pk, cls in existing.items():
        if pk in keep:
            continue
        in_use = (
            ItemLabel.objects.filter(label_class=cls).exists()
            or Annotation.objects.filter(label_class=cls).exists()
            or ReviewDecision.objects.filter(label_class=cls).exists()
        )
        if in_use:
            errors.append(f"Class {cls.name!r} labels items, so it cannot be removed; rename it instead.")
    if errors or field_errors:
        raise ValidationError({**({"classes": errors} if errors else {}), **field_errors})
    # Free names and hotkeys first so that swaps between classes do not trip the unique constraint.
    LabelClass.objects.filter(project=project).exclude(pk__in=keep).delete()
    # (No NUL in the placeholder: PostgreSQL refuses it in text; a random suffix cannot match a real name.)
    placeholder = uuid.uuid4().hex
    for pk in keep:
        LabelClass.objects.filter(pk=pk).update(name=f"~renaming-{pk}-{placeholder}", hotkey="")
    for c in cleaned:
        fields = {"name": c["name"], "color": c["color"], "hotkey": c["hotkey"], "order": c["order"]}
        if c["id"] not in (None, ""):
            LabelClass.objects.filter(pk=int(c["id"])).update(**fields)
        else:
            LabelClass.objects.create(project=project, **fields)
    st = labeling_settings_for(project)
    for field, value, cast in (
        ("overlap", overlap, int),
        ("overlap_share", overlap_share, float),
        ("lease_seconds", lease_seconds, int),
        ("regions_enabled", regions_enabled, bool),
    ):
        if value is not None:
            setattr(st, field, cast(value))
    st.save()
    audit_record(
        actor=user,
        action="labeling.schema_updated",
        project=project,
        data={
            "classes": [{k: c[k] for k in ("name", "color", "hotkey")} for c in cleaned],
            "overlap": st.overlap,
            "overlap_share": st.overlap_share,
            "lease_seconds": st.lease_seconds,
            "regions_enabled": st.regions_enabled,
        },
    )
    return list(LabelClass.objects.filter(project=project)), st
