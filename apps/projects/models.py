from django.conf import settings
from django.db import models

from apps.core.models import TimeStampedModel

COMPARATORS = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "="}

# The suitability checklist: key -> question shown beside the scope table.
CHECKLIST = [
    ("ml_suited", "Is the problem suited to machine learning (a pattern to learn, not a rule to write)?"),
    ("data_available", "Is enough representative data available?"),
    ("labelable", "Can the data be labeled consistently by people?"),
    ("metric_measurable", "Is the success metric measurable on held-out data?"),
    ("outcome_owner", "Does someone own the outcome and act on the model's answers?"),
]
ANSWERS = ("yes", "no", "unsure")

# Fields of the scope table, in the order the PM fills them (name lives on Project itself).
SCOPE_FIELDS = [
    ("name", "Project name"),
    ("dataset", "Dataset"),
    ("dataset_link", "Dataset resource link"),
    ("model", "Model"),
    ("code_language", "Code language"),
    ("goal", "Project goal"),
    ("measurement", "Measurement"),
    ("delivery", "Delivery"),
]


class ScopeStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"


class Project(TimeStampedModel):
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    # The project-scope table (the current state; every change is kept as a ScopeRevision).
    dataset = models.CharField(max_length=300, blank=True)
    dataset_link = models.URLField(max_length=500, blank=True)
    model = models.CharField(max_length=300, blank=True)
    code_language = models.CharField(max_length=60, blank=True)
    goal = models.TextField(blank=True)
    # [{"metric": "accuracy", "comparator": ">=", "target": 0.95, "unit": ""}]
    measurement = models.JSONField(default=list, blank=True)
    # ["A REST endpoint that answers good/defect", ...]
    delivery = models.JSONField(default=list, blank=True)
    # {"ml_suited": {"answer": "yes", "note": ""}, ...}
    checklist = models.JSONField(default=dict, blank=True)
    scope_status = models.CharField(max_length=12, choices=ScopeStatus.choices, default=ScopeStatus.DRAFT)
    # A manager's word that work may go on although the scope is not approved (or not suited): the
    # training runs and promotion requests the scope gate would refuse (see services.scope_gate).
    scope_override_reason = models.TextField(blank=True)
    scope_override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scope_override_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def targets(self):
        """The measurable targets later steps read: a list of Target."""
        return [Target.from_dict(m) for m in self.measurement or []]

    def approved_revision(self):
        """The latest scope revision a manager approved (None when none ever was)."""
        return self.scope_revisions.filter(status=ScopeStatus.APPROVED).order_by("-number").first()

    def targets_state(self):
        """(approved, pending, revision) from one read: the approved revision's targets (None when
        none was ever approved), the draft's targets as text where they differ from those (None when
        nothing waits), and that revision's number. The gate and monitoring apply only ``approved``."""
        rev = self.approved_revision()
        approved = None if rev is None else [Target.from_dict(m) for m in rev.data.get("measurement") or []]
        draft = [str(t) for t in self.targets]
        pending = (draft or None) if approved is None else (draft if draft != [str(t) for t in approved] else None)
        return approved, pending, (rev.number if rev else None)

    @property
    def approved_targets(self):
        """The targets in force (None when the scope was never approved): see ``targets_state``."""
        return self.targets_state()[0]

    def targets_pending(self):
        """The draft's targets when they differ from the approved ones (None when nothing waits)."""
        return self.targets_state()[1]

    def scope_snapshot(self):
        return {
            "name": self.name,
            "dataset": self.dataset,
            "dataset_link": self.dataset_link,
            "model": self.model,
            "code_language": self.code_language,
            "goal": self.goal,
            "measurement": list(self.measurement or []),
            "delivery": list(self.delivery or []),
            "checklist": dict(self.checklist or {}),
        }


class Target:
    """One measurable target: ``metric comparator target`` (e.g. accuracy >= 0.95)."""

    def __init__(self, metric, comparator, target, unit=""):
        self.metric, self.comparator, self.target, self.unit = metric, comparator, float(target), unit or ""

    @classmethod
    def from_dict(cls, d):
        return cls(d["metric"], d["comparator"], d["target"], d.get("unit", ""))

    def met_by(self, value) -> bool:
        if value is None:
            return False
        v, t = float(value), self.target
        return {">=": v >= t, "<=": v <= t, ">": v > t, "<": v < t, "==": v == t}[self.comparator]

    def __str__(self):
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.metric} {COMPARATORS[self.comparator]} {self.target:g}{unit}"


class ScopeRevision(models.Model):
    """Every saved state of the scope table, numbered from 1 per project."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="scope_revisions")
    number = models.PositiveIntegerField()
    data = models.JSONField()
    status = models.CharField(max_length=12, choices=ScopeStatus.choices)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    comment = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="uniq_scope_revision")]

    def __str__(self):
        return f"{self.project} r{self.number}"


class ProjectPlan(models.Model):
    """The scope's resource estimate, entered by the PM or accepted from the portal's forecast
    (apps.projects.plan), and the sizes the forecasts extrapolate to."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="plan")
    labeling_hours = models.FloatField(null=True, blank=True)
    compute_hours = models.FloatField(null=True, blank=True)
    storage_gb = models.FloatField(null=True, blank=True)
    planned_items = models.PositiveIntegerField(null=True, blank=True)  # images the project expects in all
    planned_runs = models.PositiveIntegerField(null=True, blank=True)  # training runs it expects in all
    # When the milestones' actual dates were last read from the stages (the portfolio reads them).
    actuals_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"plan of {self.project}"


class Milestone(models.Model):
    """One stage's planned dates and owner; ``actual_*`` are read from the stage's own records."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="milestones")
    stage = models.CharField(max_length=20)  # a key of apps.core.stages.STAGES
    planned_start = models.DateField(null=True, blank=True)
    planned_end = models.DateField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actual_start = models.DateTimeField(null=True, blank=True)
    actual_end = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "stage"], name="uniq_milestone_stage")]
        indexes = [models.Index(fields=["planned_end"])]

    def __str__(self):
        return f"{self.project} {self.stage}"


class Comment(models.Model):
    """A member's comment on one object of the project (an item, a run, a model version, a promotion
    request, an alert: the kinds apps.projects.comments knows). ``mentions``: the members it names."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comments")
    kind = models.CharField(max_length=20)
    target_id = models.PositiveBigIntegerField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField()
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["project", "kind", "target_id"])]

    def __str__(self):
        return f"comment {self.pk} on {self.kind} {self.target_id}"
