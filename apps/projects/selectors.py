from django.db.models import Count

from apps.accounts.models import ProjectMember

from .models import Project


def projects_for_user(user):
    if not user.is_authenticated:
        return Project.objects.none()
    # Membership by subquery: filtering through the same join that is counted would count only ``user``.
    mine = ProjectMember.objects.filter(user=user).values("project_id")
    return Project.objects.filter(pk__in=mine).annotate(member_count=Count("members__user", distinct=True))


def members_of(project):
    """[(user, [role labels])] ordered by username."""
    rows = ProjectMember.objects.filter(project=project).select_related("user").order_by("user__username", "role")
    out = {}
    for m in rows:
        out.setdefault(m.user, []).append(m)
    return list(out.items())
