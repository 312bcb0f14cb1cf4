"""Every HTML form posts to a Django form: one form, one view.

``PortalForm`` takes a service's ``ValidationError`` onto the fields it names (the rest go above
the form); ``FormActionView`` is the one way a page's form is handled: bind, validate, call the
service in ``form_valid``, and on any error render the page again with the bound form, its errors
beside its fields and the user's input kept (status 400), never a redirect that loses them."""

from django import forms
from django.core.exceptions import ValidationError


class PortalForm(forms.Form):
    # A service's name for a field -> this form's (the service takes seconds, the page asks minutes).
    service_fields: dict[str, str] = {}

    def adopt(self, exc: ValidationError):
        """Put ``exc``'s messages on the fields they name; the others (and a plain one) above the form."""
        if hasattr(exc, "error_dict"):
            for field, msgs in exc.message_dict.items():
                field = self.service_fields.get(field, field)
                self.add_error(field if field in self.fields else None, msgs)
        else:
            self.add_error(None, exc.messages)


class FormActionView:
    """Mixed in before a page view (a ``TemplateView`` whose context names its forms).

    ``form_class`` is bound to the POST under ``form_name`` in the page's context; ``form_valid(form)``
    calls the service and returns the answer (usually a redirect). A form error, or a
    ``ValidationError`` from the service, renders the page with the bound form (400)."""

    form_class: type[PortalForm]
    form_name = "form"

    def form_kwargs(self):
        """What else the bound form takes (choices that depend on the project, say)."""
        return {}

    def post(self, request, *args, **kwargs):
        form = self.form_class(request.POST, request.FILES or None, **self.form_kwargs())
        if form.is_valid():
            try:
                return self.form_valid(form)
            except ValidationError as exc:
                form.adopt(exc)
        return self.form_invalid(form)

    def form_valid(self, form):  # pragma: no cover - every subclass says what its form does
        raise NotImplementedError

    def form_invalid(self, form):
        ctx = self.get_context_data(**self.kwargs)
        ctx[self.form_name] = form
        return self.render_to_response(ctx, status=400)
