"""Project access: a non-member gets 404 for everything in a project; a member without the role, 403.

HTML views use ``ProjectAccessMixin``; DRF views use ``ProjectAPIMixin`` together with the
permission classes built by ``has_role`` (composable with ``|`` and ``&``).
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import permissions

from apps.accounts.models import ProjectMember, Role, Scope
from apps.core import sql

from .models import Project


def _roles_cache(user):
    cache = getattr(user, "_portal_roles", None)
    if cache is None:
        cache = user._portal_roles = {}
    return cache


def project_for_user(user, slug):
    """The project ``slug`` if ``user`` is a member of it, else Http404 (never 403: no leak).

    One query answers both questions every project request asks: the project, and the caller's
    roles in it (kept on the user object for ``roles_of`` in the same request)."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("No such project.")
    # Plain SQL: every project request runs this, and the ORM form cost more to build than to run.
    rows = sql.objects(
        Project,
        f"SELECT p.*, m.role AS member_role FROM {Project._meta.db_table} p "
        f"JOIN {ProjectMember._meta.db_table} m ON m.project_id = p.id WHERE p.slug = %s AND m.user_id = %s",
        [slug, user.pk],
    )
    if not rows:
        raise Http404("No such project.")
    project = rows[0]
    _roles_cache(user)[project.pk] = frozenset(p.member_role for p in rows)
    del project.member_role
    return project


def roles_of(user, project):
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cache = _roles_cache(user)
    if project.pk not in cache:
        cache[project.pk] = frozenset(
            ProjectMember.objects.filter(user=user, project=project).values_list("role", flat=True)
        )
    return cache[project.pk]


def require_role(user, project, *roles):
    if roles and not (roles_of(user, project) & set(roles)):
        names = " or ".join(Role(r).label for r in roles)
        raise PermissionDenied(f"This needs the {names} role in {project.name}.")


class ProjectAccessMixin:
    """For class-based HTML views under /p/<slug>/: sets self.project and checks roles.

    ``read_roles`` guard GET/HEAD (empty: any member), ``write_roles`` guard other methods.
    """

    read_roles: tuple = ()
    write_roles: tuple = ()

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            from django.contrib.auth.views import redirect_to_login

            return redirect_to_login(request.get_full_path())
        self.project = project_for_user(request.user, kwargs["slug"])
        self.roles = roles_of(request.user, self.project)
        needed = self.read_roles if request.method in ("GET", "HEAD", "OPTIONS") else self.write_roles
        require_role(request.user, self.project, *needed)
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["project"] = self.project
        ctx["roles"] = self.roles
        return ctx


class ProjectAPIMixin:
    """For DRF views under /api/v1/projects/<project_slug>/: resolves ``self.project`` (404 for
    non-members) before the permission classes run."""

    project_url_kwarg = "project_slug"

    def initial(self, request, *args, **kwargs):
        # Authenticate first so that an anonymous caller gets 401/403, not 404.
        self.perform_authentication(request)
        if request.user and request.user.is_authenticated:
            self.project = project_for_user(request.user, kwargs[self.project_url_kwarg])
        super().initial(request, *args, **kwargs)


class IsProjectMember(permissions.BasePermission):
    message = "You are not a member of this project."

    def has_permission(self, request, view):
        project = getattr(view, "project", None)
        return project is not None and bool(roles_of(request.user, project))


class TokenScopeAllows(permissions.BasePermission):
    """A token may be narrower than its user: limited to a project and to read/write scopes."""

    message = "This API token's scopes do not allow this request."

    def has_permission(self, request, view):
        token = request.auth
        if token is None or not hasattr(token, "allows"):
            return True
        scope = Scope.READ if request.method in permissions.SAFE_METHODS else Scope.WRITE
        scope = getattr(view, "token_scope", None) or scope
        return token.allows(scope, getattr(view, "project", None))


def has_role(*roles, safe_for_members=False):
    """A permission class: the caller holds one of ``roles`` in ``view.project``.

    With ``safe_for_members`` any member may read (GET/HEAD/OPTIONS) and the roles guard writes.
    """
    names = " or ".join(Role(r).label for r in roles)

    class HasRole(permissions.BasePermission):
        message = f"This needs the {names} role in this project."

        def has_permission(self, request, view):
            project = getattr(view, "project", None)
            if project is None:
                return False
            mine = roles_of(request.user, project)
            if safe_for_members and request.method in permissions.SAFE_METHODS:
                return bool(mine)
            return bool(mine & set(roles))

    HasRole.__name__ = "Has" + "Or".join(r.title().replace("_", "") for r in roles)
    return HasRole


PROJECT_MEMBER = [permissions.IsAuthenticated, TokenScopeAllows, IsProjectMember]


def project_permissions(*roles, safe_for_members=False):
    """The usual permission list of a project endpoint."""
    return [permissions.IsAuthenticated, TokenScopeAllows, has_role(*roles, safe_for_members=safe_for_members)]
