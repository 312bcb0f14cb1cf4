from django import template
from django.urls import NoReverseMatch, reverse

from apps.core.stages import STAGES, _providers

register = template.Library()


@register.inclusion_tag("core/_projectnav.html", takes_context=True)
def project_nav(context, project):
    """Overview, every stage that has a page, then members and the audit log."""
    path = context["request"].path
    links = [("Overview", reverse("project-detail", args=[project.slug]), True)]
    for key, title in STAGES:
        url_name = _providers.get(key, (None, None))[0]
        if not url_name:
            continue
        try:
            links.append((title, reverse(url_name, args=[project.slug]), False))
        except NoReverseMatch:
            continue
    links += [("Members", reverse("project-members", args=[project.slug]), True),
              ("Audit log", reverse("project-audit", args=[project.slug]), True)]
    # The longest matching prefix is the current page (exact match for the overview).
    best = max((u for _, u, exact in links if (path == u if exact else path.startswith(u))), key=len, default=None)
    return {"links": [(t, u, u == best) for t, u, _ in links]}
