from django.conf import settings
from django.db import models


class Record(models.Model):
    """Base of the models that have no natural name: ``str()`` says which kind and which row
    ("Lease #12"), in the admin, in logs and in audit rows, where Django would say "Lease object (12)"."""

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self._meta.verbose_name.capitalize()} #{self.pk}"


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Blob(models.Model):
    """A file stored once by sha256 (path derived from the hash) through Django's storage API. Every stage
    keeps its files as blobs (images, thumbnails, artifacts, kept prediction inputs): ``apps.core.storage``."""

    sha256 = models.CharField(max_length=64, unique=True)
    path = models.CharField(max_length=300)  # storage name, e.g. blobs/ab/abcd….png
    size = models.BigIntegerField()
    content_type = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "datasets_blob"  # made by the datasets app before blobs moved to core

    def __str__(self):
        return self.sha256[:12]


class AuditEvent(models.Model):
    """Who did what to which object, when and why. Written only by ``audit_record``."""

    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"])]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_repr}"


class WorkerHeartbeat(models.Model):
    """A Celery worker's last sign of life, written by the worker itself every few seconds.

    Kept in the database rather than asked of the broker so that it works on every broker
    (the embedded filesystem broker has no broadcast) and so monitoring can chart it.
    """

    hostname = models.CharField(max_length=200, unique=True)
    pid = models.IntegerField(default=0)
    queues = models.JSONField(default=list)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    active = models.IntegerField(default=0)

    def __str__(self):
        return self.hostname


class WorkerProbe(Record):
    """A round trip through the broker: created by the web side, completed by a worker."""

    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
