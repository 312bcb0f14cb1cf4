"""The audit log's one writer. Every state change that matters goes through ``audit_record``."""

from .models import AuditEvent


def audit_record(*, actor, action, project=None, obj=None, reason="", data=None):
    return AuditEvent.objects.create(
        project=project,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        reason=reason or "",
        data=data or {},
    )
