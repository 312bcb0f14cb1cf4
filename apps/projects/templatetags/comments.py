"""``{% comments project "run" run.pk %}``: the thread on an object's page and the form to join it."""

from django import template
from django.urls import reverse

from ..comments import comments_on, editable, render_body
from ..forms import CommentForm

register = template.Library()


def thread(project, kind, target_id, user, form=None):
    rows = [
        {"comment": c, "html": render_body(c), "can_edit": editable(c, user) is None}
        for c in comments_on(project, kind, target_id)
    ]
    return {
        "project": project,
        "rows": rows,
        "form": form or CommentForm(),
        "action": reverse("project-comments", args=[project.slug, kind, target_id]),
    }


@register.inclusion_tag("projects/_comments.html", takes_context=True)
def comments(context, project, kind, target_id):
    request = context["request"]
    ctx = thread(project, kind, target_id, request.user)
    ctx["next"] = request.path
    ctx["csrf_token"] = context.get("csrf_token")
    return ctx
