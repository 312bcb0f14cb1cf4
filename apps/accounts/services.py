from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.audit import audit_record

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
    ProjectMember.objects.bulk_create(
        [ProjectMember(project=project, user=user, role=r) for r in roles - current]
    )
    audit_record(
        actor=actor, project=project, action="member.roles_changed", obj=project,
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


def api_token_create(*, user, name, scopes=None, project=None):
    """Returns (token, key). The key is shown once; only its hash is kept."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name."})
    scopes = list(scopes) if scopes else [Scope.READ, Scope.WRITE]
    unknown = set(scopes) - set(Scope.values)
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope(s): {', '.join(sorted(unknown))}"})
    key = ApiToken.new_key()
    token = ApiToken.objects.create(
        user=user, name=name[:100], key_hash=ApiToken.hash_key(key), key_prefix=key[:10],
        scopes=sorted(set(scopes)), project=project,
    )
    return token, key


def api_token_revoke(*, token, actor):
    if token.user_id != actor.pk:
        raise ValidationError("You can revoke only your own tokens.")
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
