"""The registry pages' forms, one per view: the types come in here, the rules stay in the services."""

from django import forms

from apps.core.forms import PortalForm

from .gate import CHAMPION_METRICS
from .models import Stage


class RegisterForm(PortalForm):
    run = forms.IntegerField(
        error_messages={"required": "Choose a succeeded training run of this project to register."}
    )
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, max_length=500)


class StageForm(PortalForm):
    stage = forms.ChoiceField(choices=[(s, s) for s in (Stage.NONE, Stage.STAGING, Stage.ARCHIVED)])
    reason = forms.CharField(required=False, max_length=500)


class AliasForm(PortalForm):
    name = forms.CharField(max_length=100)


class PromoteForm(PortalForm):
    note = forms.CharField(required=False, max_length=2000)


class ApproveForm(PortalForm):
    comment = forms.CharField(required=False, max_length=2000)
    exception_reason = forms.CharField(required=False, max_length=2000)


class CommentForm(PortalForm):
    """Reject and withdraw: a comment only."""

    comment = forms.CharField(required=False, max_length=2000)


class RollbackForm(PortalForm):
    reason = forms.CharField(required=False, max_length=500)


class SettingsForm(PortalForm):
    required_approvals = forms.IntegerField(
        error_messages={"invalid": "Approvals required must be a whole number from 1 to 5."}
    )
    champion_metric = forms.ChoiceField(choices=[(m, m) for m in CHAMPION_METRICS])
    champion_margin = forms.FloatField(error_messages={"invalid": "Margin must be a number from 0 to 0.5."})
    require_export_parity = forms.BooleanField(required=False)


class WebhookForm(PortalForm):
    url = forms.CharField(max_length=500)
    events = forms.CharField(required=False, max_length=1000)
    secret = forms.CharField(required=False, max_length=200)

    def clean_events(self):
        return [e.strip() for e in self.cleaned_data["events"].split(",") if e.strip()]


class MarkReadForm(PortalForm):
    """Mark the notifications whose ``id``s are sent read; none sent: all of them."""

    def clean(self):
        ids = self.data.getlist("id") if hasattr(self.data, "getlist") else []
        bad = [i for i in ids if not str(i).isdigit()]
        if bad:
            raise forms.ValidationError(f"Not a notification id: {', '.join(bad)}.")
        self.cleaned_data["ids"] = [int(i) for i in ids] or None
        return self.cleaned_data
