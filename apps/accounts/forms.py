"""The personal API token page's forms (the rules are the services')."""

from django import forms

from apps.core.forms import PortalForm

from .models import Scope


class ApiTokenForm(PortalForm):
    name = forms.CharField(
        max_length=100, widget=forms.TextInput(attrs={"placeholder": "Token name, e.g. ci-pipeline"})
    )
    project = forms.CharField(required=False)
    scopes = forms.MultipleChoiceField(choices=Scope.choices, required=False)
