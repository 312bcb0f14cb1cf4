"""The beat tick: what monitoring does every minute."""

import datetime as dt
import logging

from django.utils import timezone

from apps.projects.models import Project

from ..infra import infra_sample_take
from ..middleware import counters
from ..models import (
    AlertRule,
    PredictionRollup,
    Retrain,
    RetrainStatus,
)
from .alerts import drift_refresh, rules_evaluate
from .live import live_sample_collect
from .retrain import retrain_advance

log = logging.getLogger(__name__)


# The beat tick ----------------------------------------------------------------------------------------


def monitoring_tick(*, now=None):
    """What beat runs every minute: the infrastructure sample, then per project with traffic or
    rules: live sampling, rule evaluation (which refreshes drift) and pending retraining."""

    counters.flush()
    try:
        infra_sample_take(now=now)
    except Exception:
        log.exception("infrastructure sample failed")
    recent = (now or timezone.now()) - dt.timedelta(days=1)
    with_rules = set(AlertRule.objects.filter(enabled=True).values_list("project_id", flat=True))
    serving = set(PredictionRollup.objects.filter(minute__gte=recent).values_list("project_id", flat=True).distinct())
    for project in Project.objects.filter(pk__in=with_rules | serving).order_by("pk"):
        try:
            live_sample_collect(project=project)
            reports = drift_refresh(project=project, now=now)  # the drift charts' reports, rules or not
            if project.pk in with_rules:
                rules_evaluate(project=project, now=now, reports=reports)
        except Exception:  # one project's failure must not stop the others' monitoring
            log.exception("monitoring of project %s failed", project.pk)
    for retrain in Retrain.objects.filter(status=RetrainStatus.PROFILING):
        try:
            retrain_advance(retrain=retrain)
        except Exception:
            log.exception("retrain %s could not advance", retrain.pk)
