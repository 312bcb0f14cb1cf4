from django.db.models import Count

from apps.accounts.models import ProjectMember

from .models import Project


def projects_for_user(user):
    if not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.filter(members__user=user).distinct().annotate(member_count=Count("members__user", distinct=True))


def members_of(project):
    """[(user, [role labels])] ordered by username."""
    rows = ProjectMember.objects.filter(project=project).select_related("user").order_by("user__username", "role")
    out = {}
    for m in rows:
        out.setdefault(m.user, []).append(m)
    return [(u, ms) for u, ms in out.items()]
