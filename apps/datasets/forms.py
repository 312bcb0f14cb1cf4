"""The data pages' forms: the types come in here, the rules stay in the services."""

from django import forms

from apps.core.forms import PortalForm

FRACTION = {"invalid": "Fractions must be numbers like 0.7."}


class FreezeForm(PortalForm):
    name = forms.CharField(required=False, max_length=120)
    note = forms.CharField(required=False, max_length=2000)
    train = forms.FloatField(initial=0.7, error_messages=FRACTION)
    val = forms.FloatField(initial=0.15, error_messages=FRACTION)
    test = forms.FloatField(initial=0.15, error_messages=FRACTION)
    seed = forms.IntegerField(required=False, initial=0, error_messages={"invalid": "The seed must be a whole number."})
    split_from = forms.ChoiceField(choices=[("seeded", "seeded"), ("folders", "folders")], required=False)
