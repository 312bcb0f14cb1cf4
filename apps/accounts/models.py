import hashlib
import secrets

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    PM = "pm", "PM"
    LABELER = "labeler", "Labeler"
    REVIEWER = "reviewer", "Reviewer"
    DATA_SCIENTIST = "data_scientist", "Data scientist"
    MANAGER = "manager", "Manager"


class ProjectMember(models.Model):
    """One role of one user in one project; a user may hold several rows in a project."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="members")
    role = models.CharField(max_length=20, choices=Role.choices)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "project", "role"], name="uniq_member_role")]
        indexes = [models.Index(fields=["project", "user"])]

    def __str__(self):
        return f"{self.user} {self.get_role_display()} in {self.project}"


class Scope(models.TextChoices):
    READ = "read", "Read project data"
    WRITE = "write", "Change project data"
    PREDICT = "predict", "Call the prediction API"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """A per-user API token. Only its sha256 is stored; the key is shown once at creation.

    A token may be limited to one project and to scopes; it never grants more than its user has.
    """

    PREFIX = "mlp_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    key_prefix = models.CharField(max_length=12)
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.key_prefix}…)"

    @classmethod
    def new_key(cls):
        return cls.PREFIX + secrets.token_urlsafe(32)

    @staticmethod
    def hash_key(key: str) -> str:
        return _hash(key)

    def allows(self, scope: str, project=None) -> bool:
        if self.project_id and project is not None and project.pk != self.project_id:
            return False
        return scope in self.scopes
