"""The serving pages' forms: the types come in here, the rules stay in the services."""

from django import forms

from apps.core.forms import PortalForm

from .models import RouteMode, TokenScope


class ProjectTokenForm(PortalForm):
    name = forms.CharField(
        max_length=100, widget=forms.TextInput(attrs={"id": "t-name", "placeholder": "inspection line 3"})
    )
    scopes = forms.MultipleChoiceField(
        choices=TokenScope.choices, required=False, initial=[TokenScope.PREDICT], widget=forms.CheckboxSelectMultiple
    )
    rate_per_minute = forms.IntegerField(
        label="Requests per minute (empty: the default)",
        required=False,
        min_value=1,
        widget=forms.NumberInput(attrs={"id": "t-rate", "min": 1}),
        error_messages={"invalid": "Rate per minute must be a whole number."},
    )


class RouteForm(PortalForm):
    mode = forms.ChoiceField(choices=RouteMode.choices)
    candidate = forms.IntegerField(required=False, min_value=1)
    canary_share = forms.FloatField(
        required=False,
        min_value=0,
        max_value=100,
        error_messages={
            "invalid": "Canary share must be a percentage between 0 and 100.",
            "min_value": "Canary share must be a percentage between 0 and 100.",
            "max_value": "Canary share must be a percentage between 0 and 100.",
        },
    )
    engine = forms.ChoiceField(choices=[("keras", "Keras"), ("onnx", "ONNX Runtime")], required=False)
    reason = forms.CharField(required=False, max_length=500)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImagesField(forms.FileField):
    """Up to ``limit`` files from one input (the rest are ignored, as the API does)."""

    def __init__(self, *args, limit=8, **kwargs):
        self.limit = limit
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else ([data] if data else [])
        if not files:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        return [super(MultipleImagesField, self).clean(f, initial) for f in files[: self.limit]]


class TryForm(PortalForm):
    """ "Try it": the model (pk or name), a version reference, and the image(s) to predict."""

    model = forms.CharField()
    version = forms.CharField(required=False, max_length=100)
    image = MultipleImagesField(error_messages={"required": "Choose an image file to send."})
    explain = forms.BooleanField(required=False, label="Show where the model looked")
