"""Requests the database could not even compare are refused before any view runs."""
from django.http import HttpResponseBadRequest


class RejectNulBytesMiddleware:
    """A NUL byte in the path or the query string is refused with 400.

    URL converters such as ``<str:kind>`` and query filters (``?status=``) hand their text to the
    ORM, and PostgreSQL refuses NUL in any string ("A string literal cannot contain NUL"), which
    would surface as a 500. Form and serializer fields already refuse NUL in bodies."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "\x00" in request.META.get("QUERY_STRING", "") or any(
                "\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()):
            return HttpResponseBadRequest("The address contains a NUL byte (%00); it cannot name anything here.\n",
                                          content_type="text/plain")
        return self.get_response(request)
