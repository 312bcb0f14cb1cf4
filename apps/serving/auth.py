"""Who may call serving: project tokens (``Bearer mlpp_…``, a client application of one project),
personal tokens with the ``predict`` scope, or a signed-in member; a rate limit per token."""

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import Http404
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling

from apps.accounts.models import ApiToken, Role, Scope
from apps.projects.permissions import project_for_user, roles_of

from . import contract
from .models import ProjectToken

PREDICT_ROLES = (Role.PM, Role.DATA_SCIENTIST, Role.MANAGER)  # labelers and reviewers label blind
ADMIN_ROLES = (Role.DATA_SCIENTIST, Role.MANAGER)  # routes and project tokens


def token_cache_key(key_hash):
    return f"serving:token:{key_hash}"


class TokenClient:
    """``request.user`` for a project token: authenticated, but nobody (no membership, no roles)."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_staff = is_superuser = False
    pk = id = None

    def __init__(self, token):
        self.token = token
        self.username = f"token:{token.name}"

    def __str__(self):
        return self.username


class ProjectTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer mlpp_…``. Other keys are left to the next authenticator."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() not in (b"bearer", b"token"):
            return None
        try:
            key = header[1].decode()
        except UnicodeError:
            return None
        if not key.startswith(ProjectToken.PREFIX):
            return None
        token = token_lookup(key)
        if token is None:
            raise exceptions.AuthenticationFailed(contract.BAD_TOKEN)
        return TokenClient(token), token

    def authenticate_header(self, request):
        return contract.UNAUTHENTICATED_HEADER


_last_good = {}  # key hash → the token as last read from the database (answers while it is down)


def token_lookup(key):
    """The live token for ``key``, cached for SERVING_TOKEN_CACHE_SECONDS (revoking deletes the entry);
    ``last_used_at`` is written at most once a minute. While the database is unreachable, the token as
    this process last read it answers (predictions go on, their log rows wait in the spool); a key
    this process never saw raises the DatabaseError (503)."""
    h = ApiToken.hash_key(key)  # project tokens are hashed as personal ones are
    try:
        token = _token_read(h)
    except DatabaseError:
        connection.close_if_unusable_or_obsolete()  # the next request reconnects
        if h not in _last_good:
            raise
        return _last_good[h]
    if token is None:
        _last_good.pop(h, None)
    else:
        if len(_last_good) > 10_000:
            _last_good.clear()
        _last_good[h] = token
    return token


def _token_read(h):
    ttl = settings.SERVING_TOKEN_CACHE_SECONDS
    token = cache.get(token_cache_key(h)) if ttl else None
    if token is None:
        token = ProjectToken.objects.select_related("project").filter(key_hash=h, revoked_at__isnull=True).first()
        if token is None:
            return None
        if ttl:
            cache.set(token_cache_key(h), token, ttl)
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ProjectToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
        if ttl:
            cache.set(token_cache_key(h), token, ttl)
    return token


class ServingAPIMixin:
    """Resolves ``self.project`` for /api/v1/projects/<project_slug>/serving/…: a project token
    reaches only its own project (404 elsewhere, as for an outsider); a person must be a member."""

    def initial(self, request, *args, **kwargs):
        self.perform_authentication(request)
        slug = kwargs["project_slug"]
        if isinstance(request.auth, ProjectToken):
            if request.auth.project.slug != slug:
                raise Http404(contract.NO_PROJECT)
            self.project = request.auth.project
        elif request.user and request.user.is_authenticated:
            self.project = project_for_user(request.user, slug)
        super().initial(request, *args, **kwargs)


def serving_permission(scope, roles=None):
    """A DRF permission: a project token with ``scope``; or a member holding one of ``roles`` (any
    member when None) whose personal token, if any, has ``scope``. Project tokens never manage."""

    class ServingPermission(permissions.BasePermission):
        message = "You may not do this here."

        def has_permission(self, request, view):
            project = getattr(view, "project", None)
            if project is None or not request.user or not request.user.is_authenticated:
                return False
            token = request.auth
            if isinstance(token, ProjectToken):
                if roles is ADMIN_ROLES:
                    self.message = "Project tokens cannot manage serving; sign in as a data scientist or manager."
                    return False
                self.message = contract.scope_message(scope)
                return token.allows(scope, project)
            if token is not None and hasattr(token, "allows") and not token.allows(scope, project):
                self.message = f"This API token lacks the {scope!r} scope for this project."
                return False
            mine = roles_of(request.user, project)
            if not mine:
                return False
            if roles and not (mine & set(roles)):
                self.message = f"This needs the {' or '.join(Role(r).label for r in roles)} role in this project."
                return False
            return True

    return ServingPermission


PREDICT = [serving_permission(Scope.PREDICT.value, PREDICT_ROLES)]
READ = [serving_permission(Scope.READ.value)]
MANAGE = [serving_permission(Scope.WRITE.value, ADMIN_ROLES)]


class TokenRateThrottle(throttling.BaseThrottle):
    """The contract's one-minute window per token (project or personal) or per signed-in user."""

    def allow_request(self, request, view):
        ident, limit = contract.rate_ident(request.auth, request.user)
        if ident is None:
            return True
        try:
            contract.throttle(ident, limit)
        except contract.Refused as refused:
            self._wait = int(dict(refused.headers)["Retry-After"])
            return False
        return True

    def wait(self):
        return getattr(self, "_wait", 60)


try:
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class ProjectTokenScheme(OpenApiAuthenticationExtension):
        target_class = "apps.serving.auth.ProjectTokenAuthentication"
        name = "projectToken"

        def get_security_definition(self, auto_schema):
            return {
                "type": "http",
                "scheme": "bearer",
                "description": "A project token for a client application: `Bearer mlpp_…` (serving only)",
            }
except ImportError:  # pragma: no cover
    pass
