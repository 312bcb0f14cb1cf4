"""Turning a ValidationError into the lines a page shows."""


def validation_messages(exc):
    """Every message of ``exc`` (a field-keyed ValidationError or a plain one), in order."""
    if hasattr(exc, "error_dict"):
        return [m for msgs in exc.message_dict.values() for m in msgs]
    return list(exc.messages)
