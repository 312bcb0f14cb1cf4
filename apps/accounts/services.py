from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.audit import audit_record
from apps.core.text import clean_name

from .models import ApiToken, ProjectMember, Role, Scope


@transaction.atomic
def member_set_roles(*, project, user, roles, actor):
    """Make ``user``'s roles in ``project`` exactly ``roles`` (an empty list removes them)."""
    roles = set(roles)
    unknown = roles - set(Role.values)
    if unknown:
        raise ValidationError({"roles": f"Unknown role(s): {', '.join(sorted(unknown))}"})
    current = set(ProjectMember.objects.filter(project=project, user=user).values_list("role", flat=True))
    if current == roles:
        return sorted(roles)
    ProjectMember.objects.filter(project=project, user=user).exclude(role__in=roles).delete()
    ProjectMember.objects.bulk_create([ProjectMember(project=project, user=user, role=r) for r in roles - current])
    audit_record(
        actor=actor,
        project=project,
        action="member.roles_changed",
        obj=project,
        data={"user": user.username, "old": sorted(current), "new": sorted(roles)},
    )
    return sorted(roles)


def member_add_by_username(*, project, username, roles, actor):
    User = get_user_model()
    try:
        user = User.objects.get(username=username)
    except User.DoesNotExist:
        raise ValidationError({"username": f"No user named {username!r}."}) from None
    if not roles:
        raise ValidationError({"roles": "Choose at least one role."})
    return user, member_set_roles(project=project, user=user, roles=roles, actor=actor)


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
