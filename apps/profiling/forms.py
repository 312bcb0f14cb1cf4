"""The profiling pages' forms: the types come in here, the rules stay in the services."""

from django import forms

from apps.core.forms import PortalForm


class StartForm(PortalForm):
    version = forms.IntegerField(min_value=1, error_messages={"required": "Choose a dataset version to profile."})


class AssertionsForm(PortalForm):
    document = forms.CharField(required=False, strip=False)


class OverrideForm(PortalForm):
    reason = forms.CharField(required=False, max_length=2000)
