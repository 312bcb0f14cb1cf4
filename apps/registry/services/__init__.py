"""Every write of the registry, one concern per module, re-exported here so callers import from
``apps.registry.services`` as before. Each runs in one transaction and writes the audit log.

- ``versions``: registering a run's model, moving stages, aliases;
- ``promotion``: promotion requests and their decisions (four eyes, the gate), rollback;
- ``webhooks``: the registry's settings, webhooks, notifications marked read.
"""

from .promotion import (
    model_version_rollback,
    previous_production,
    promotion_request_approve,
    promotion_request_create,
    promotion_request_reject,
    promotion_request_withdraw,
)
from .versions import (
    ALIAS_RE,
    EVERYONE,
    MANAGERS_AND_DS,
    NAME_RE,
    model_alias_delete,
    model_alias_set,
    model_version_register,
    model_version_stage_set,
    request_url,
    version_url,
)
from .webhooks import WEBHOOK_EVENTS, notifications_mark_read, registry_settings_update, webhook_create, webhook_delete

__all__ = [
    "ALIAS_RE",
    "EVERYONE",
    "MANAGERS_AND_DS",
    "NAME_RE",
    "WEBHOOK_EVENTS",
    "model_alias_delete",
    "model_alias_set",
    "model_version_register",
    "model_version_rollback",
    "model_version_stage_set",
    "notifications_mark_read",
    "previous_production",
    "promotion_request_approve",
    "promotion_request_create",
    "promotion_request_reject",
    "promotion_request_withdraw",
    "registry_settings_update",
    "request_url",
    "version_url",
    "webhook_create",
    "webhook_delete",
]
