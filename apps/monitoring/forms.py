from django import forms

from apps.core.forms import PortalForm

from .models import RuleKind


class RuleForm(PortalForm):
    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(choices=RuleKind.choices)
    threshold = forms.FloatField(required=False, min_value=0, help_text="empty: the kind's default")
    window_minutes = forms.IntegerField(required=False, min_value=1)
    min_n = forms.IntegerField(required=False, min_value=1, label="Minimum sample")
    endpoint = forms.CharField(required=False, max_length=120, help_text='URL route name, or "serving"')
    queue = forms.CharField(required=False, max_length=40)
    retrain = forms.BooleanField(required=False, label="Start a retraining run when it fires")

    def rule_data(self):
        d = self.cleaned_data
        params = {k: d[k] for k in ("window_minutes", "min_n", "endpoint", "queue") if d.get(k) not in (None, "")}
        return {
            "name": d["name"],
            "kind": d["kind"],
            "threshold": d["threshold"],
            "params": params,
            "retrain": d["retrain"],
        }


class AlertNoteForm(PortalForm):
    """Acknowledge or resolve an alert: the note (resolving requires one; the service says so)."""

    note = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(
            attrs={"rows": 2, "cols": 70, "placeholder": "What was seen, what was done (required to resolve)"}
        ),
    )
