"""Every monitoring write, one concern per module, re-exported here so callers import from
``apps.monitoring.services`` as before:

- ``rules``: alert rules, their kinds' defaults and parameters;
- ``alerts``: evaluating the rules, the alerts they open, incidents, notifications, acknowledging and
  resolving (and the alert for lost prediction log rows);
- ``live``: live-accuracy samples sent to labeling;
- ``retrain``: retraining a model an alert asked for;
- ``embeddings``: the reference-embedding job;
- ``tick``: what beat runs every minute.
"""

from .alerts import (
    alert_acknowledge,
    alert_open,
    alert_resolve,
    breached,
    drift_refresh,
    on_predictions_lost,
    rule_check,
    rule_value,
    rules_evaluate,
)
from .embeddings import reference_embedding_execute, reference_embedding_start
from .live import live_sample_collect
from .retrain import retrain_advance, retrain_start
from .rules import (
    BELOW,
    DEFAULTS,
    DRIFT_KINDS,
    LOG_LOSS_RULE,
    PARAMS,
    RULE_EDITORS,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    alert_rules_defaults,
)
from .tick import monitoring_tick

__all__ = [
    "BELOW",
    "DEFAULTS",
    "DRIFT_KINDS",
    "LOG_LOSS_RULE",
    "PARAMS",
    "RULE_EDITORS",
    "alert_acknowledge",
    "alert_open",
    "alert_resolve",
    "alert_rule_create",
    "alert_rule_delete",
    "alert_rule_update",
    "alert_rules_defaults",
    "breached",
    "drift_refresh",
    "live_sample_collect",
    "monitoring_tick",
    "on_predictions_lost",
    "reference_embedding_execute",
    "reference_embedding_start",
    "retrain_advance",
    "retrain_start",
    "rule_check",
    "rule_value",
    "rules_evaluate",
]
