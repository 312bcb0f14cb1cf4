"""Errors every stage may raise, and turning a ValidationError into the lines a page shows."""

from rest_framework.exceptions import APIException


class StorageFull(APIException):
    """The storage has no room left: nothing was stored for this request (an operator must free
    space or grow the volume; docs/operations.md)."""

    status_code = 507
    default_code = "storage_full"
    default_detail = "Storage full: the file could not be stored and nothing was kept. Ask an operator to free space."


def validation_messages(exc):
    """Every message of ``exc`` (a field-keyed ValidationError or a plain one), in order."""
    if hasattr(exc, "error_dict"):
        return [m for msgs in exc.message_dict.values() for m in msgs]
    return list(exc.messages)
