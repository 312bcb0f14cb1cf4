from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from apps.core.stages import STAGES, _providers

register = template.Library()


@register.inclusion_tag("core/_projectnav.html", takes_context=True)
def project_nav(context, project):
    """Overview, the plan, every stage that has a page, then members and the audit log."""
    path = context["request"].path
    links = [
        ("Overview", reverse("project-detail", args=[project.slug]), True),
        ("Plan", reverse("project-plan", args=[project.slug]), True),
    ]
    for key, title in STAGES:
        url_name = _providers.get(key, (None, None))[0]
        if not url_name:
            continue
        try:
            links.append((title, reverse(url_name, args=[project.slug]), False))
        except NoReverseMatch:
            continue
    links += [
        ("Members", reverse("project-members", args=[project.slug]), True),
        ("Audit log", reverse("project-audit", args=[project.slug]), True),
    ]
    # The longest matching prefix is the current page (exact match for the overview).
    best = max((u for _, u, exact in links if (path == u if exact else path.startswith(u))), key=len, default=None)
    return {"links": [(t, u, u == best) for t, u, _ in links]}


def _short(value, limit=120):
    def cut(text):
        return text if len(text) <= limit else text[: limit - 1] + "…"

    if isinstance(value, (list, tuple)) and len(value) > 10:
        return cut(f"[{', '.join(str(v) for v in value[:10])}, …]") + f" ({len(value)} in all)"
    if isinstance(value, (list, tuple)):
        return cut(f"[{', '.join(str(v) for v in value)}]")
    return cut(str(value))


@register.filter
def data_pairs(data):
    """An audit event's ``data`` as (key, short text) pairs. A dict's own keys may be ``items`` or
    ``values``, which the template language would read as keys rather than methods, so the pairs
    are made here."""
    if not isinstance(data, dict):
        return [("data", _short(data))] if data not in (None, "", [], {}) else []
    return [(str(k), _short(v)) for k, v in data.items()]


@register.filter
def pairs(mapping):
    """``mapping.items()`` for a template, whatever keys the mapping holds (see ``data_pairs``)."""
    return list(mapping.items()) if isinstance(mapping, dict) else []


@register.simple_tag
def errors_for(form, name="__all__"):
    """The errors of ``form``'s field ``name`` (``__all__``: those above the form), to sit beside it."""
    if not form or not hasattr(form, "errors"):
        return ""
    errs = form.non_field_errors() if name == "__all__" else form.errors.get(name, [])
    if not errs:
        return ""
    return format_html(
        '<ul class="errorlist" data-field="{}">{}</ul>', name, format_html_join("", "<li>{}</li>", ((e,) for e in errs))
    )


@register.simple_tag
def posted(form, name, default=""):
    """What the user sent in ``name`` when ``form`` comes back with errors, else ``default``."""
    if form is not None and getattr(form, "is_bound", False):
        return form.data.get(name, default)
    return default
