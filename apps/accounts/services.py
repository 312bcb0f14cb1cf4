from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.audit import audit_record
from apps.core.text import clean_name

from .models import ApiToken, ProjectMember, Role, Scope


@transaction.atomic
def member_set_roles(*, project, user, roles, actor):
    """Make ``user``'s roles in ``project`` exactly ``roles`` (an empty list removes them). The audit
    log says which: ``member.added``, ``member.roles_changed`` or ``member.removed``. The project keeps
    a PM: the last one cannot lose the role. A removed member's past work (labels, runs, approvals,
    the audit log) stays attributed to them: only the membership rows go."""
    roles = set(roles)
    unknown = roles - set(Role.values)
    if unknown:
        raise ValidationError({"roles": f"Unknown role(s): {', '.join(sorted(unknown))}"})
    # Lock the project's PM rows, so two PMs removing each other at once cannot leave none.
    pms = list(ProjectMember.objects.select_for_update().filter(project=project, role=Role.PM))
    current = set(ProjectMember.objects.filter(project=project, user=user).values_list("role", flat=True))
    if current == roles:
        return sorted(roles)
    if Role.PM in current and Role.PM not in roles and {m.user_id for m in pms} == {user.pk}:
        raise ValidationError(
            {"roles": f"{user.username} is the project's only PM: make someone else PM first, then change this."}
        )
    ProjectMember.objects.filter(project=project, user=user).exclude(role__in=roles).delete()
    ProjectMember.objects.bulk_create([ProjectMember(project=project, user=user, role=r) for r in roles - current])
    action = "member.added" if not current else "member.removed" if not roles else "member.roles_changed"
    audit_record(
        actor=actor,
        project=project,
        action=action,
        obj=project,
        data={"user": user.username, "old": sorted(current), "new": sorted(roles)},
    )
    return sorted(roles)


def user_by_name_or_email(who):
    """The existing user whose username is ``who``, or else whose email is ``who`` (any case)."""
    User = get_user_model()
    who = (who or "").strip()
    user = User.objects.filter(username=who).first() if who else None
    if user is None and "@" in who:
        found = list(User.objects.filter(email__iexact=who)[:2])
        if len(found) > 1:
            raise ValidationError({"username": f"Several users have the email {who}; give the username."})
        user = found[0] if found else None
    if user is None:
        raise ValidationError({"username": f"No user with the username or email {who!r}: they must sign up first."})
    return user


def member_add_by_username(*, project, username, roles, actor):
    """Invite an existing user (``username``: their username or email) with ``roles``."""
    user = user_by_name_or_email(username)
    if not roles:
        raise ValidationError({"roles": "Choose at least one role."})
    return user, member_set_roles(project=project, user=user, roles=roles, actor=actor)


def member_remove(*, project, user, actor):
    """Take every role of ``user`` in ``project`` (their past work stays attributed to them)."""
    if not ProjectMember.objects.filter(project=project, user=user).exists():
        raise ValidationError({"username": f"{user.username} is not a member of {project.name}."})
    return member_set_roles(project=project, user=user, roles=[], actor=actor)


DEFAULT_SCOPES = (Scope.READ, Scope.WRITE)  # predict is asked for explicitly


def api_token_project(*, user, slug):
    """The project ``slug`` among ``user``'s projects, for restricting a token (ValidationError if not)."""
    slug = (slug or "").strip()
    if not slug:
        return None
    member = ProjectMember.objects.filter(user=user, project__slug=slug).select_related("project").first()
    if member is None:
        raise ValidationError({"project": f"You are not a member of a project {slug!r}; choose one of yours."})
    return member.project


def api_token_create(*, user, name, scopes=None, project=None):
    """Returns (token, key). The key is shown once; only its hash is kept."""
    name = clean_name(name)
    if not name:
        raise ValidationError({"name": "Give the token a name."})
    scopes = list(scopes) if scopes else list(DEFAULT_SCOPES)
    unknown = set(scopes) - set(Scope.values)
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope(s): {', '.join(sorted(unknown))}"})
    if project is not None and not ProjectMember.objects.filter(user=user, project=project).exists():
        raise ValidationError({"project": "You are not a member of that project; a token can only narrow your access."})
    key = ApiToken.new_key()
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        key_hash=ApiToken.hash_key(key),
        key_prefix=key[:10],
        scopes=sorted(set(scopes)),
        project=project,
    )
    return token, key


def api_token_revoke(*, token, actor):
    if token.user_id != actor.pk:
        raise ValidationError("You can revoke only your own tokens.")
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
