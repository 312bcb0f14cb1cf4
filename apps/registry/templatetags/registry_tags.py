"""Template tags other apps' pages can use without a settings change:

{% load registry_tags %}
{% unread_notifications_count as n %}                       (top bar)
{% models_for_dataset_version version %}                    (dataset version page)
"""

from django import template

from .. import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def unread_notifications_count(context):
    request = context.get("request")
    return selectors.unread_count(getattr(request, "user", None))


@register.inclusion_tag("registry/_models_for_dataset_version.html")
def models_for_dataset_version(dataset_version):
    return {
        "model_versions": list(selectors.models_for_dataset_version(dataset_version)),
        "project": dataset_version.project,
        "dataset_version": dataset_version,
    }


@register.filter
def pct(value):
    try:
        return f"{float(value) * 100:.1f}%"
    except (TypeError, ValueError):
        return "—"


@register.filter
def signed(value):
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return f"{v * 100:+.1f} pt"
