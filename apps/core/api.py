from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from .jobs import QueueUnavailable


def exception_handler(exc, context):
    """Django's ValidationError from a service becomes a 400 with field-level messages."""
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            detail = {field: [str(m) for e in errs for m in e.messages] for field, errs in exc.error_dict.items()}
        else:
            detail = {"detail": exc.messages if len(exc.messages) > 1 else exc.messages[0]}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if isinstance(exc, QueueUnavailable) and response is not None:
        # Which job rows were marked failed, so that a client can show or retry them.
        response.data = {"detail": str(exc.detail), "code": "queue_unavailable", "jobs": exc.jobs}
        response["Retry-After"] = "30"
    return response
