from django import forms
from django.forms import formset_factory

from apps.accounts.models import Role
from apps.core.forms import PortalForm
from apps.core.stages import STAGES

from .models import ANSWERS, CHECKLIST, COMPARATORS
from .plan import ESTIMATES, SIZES


class ScopeForm(forms.Form):
    """Plain text inputs: the one validator is ``services.scope_clean``, whose errors land on fields."""

    name = forms.CharField(label="Project name", required=False)
    dataset = forms.CharField(required=False, help_text="What data, how much, where it comes from.")
    dataset_link = forms.CharField(
        label="Dataset resource link",
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "https://… or s3://…"}),
    )
    model = forms.CharField(required=False, help_text="The kind of model you expect to train.")
    code_language = forms.CharField(required=False, widget=forms.TextInput(attrs={"placeholder": "Python"}))
    goal = forms.CharField(label="Project goal", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    delivery = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="One deliverable per line."
    )

    def __init__(self, *args, checklist=None, **kwargs):
        super().__init__(*args, **kwargs)
        checklist = checklist or {}
        for key, question in CHECKLIST:
            item = checklist.get(key, {})
            self.fields[f"check_{key}"] = forms.ChoiceField(
                label=question,
                choices=[(a, a.capitalize()) for a in ANSWERS],
                widget=forms.RadioSelect,
                initial=item.get("answer", "unsure"),
                required=False,
            )
            self.fields[f"note_{key}"] = forms.CharField(
                required=False, initial=item.get("note", ""), widget=forms.TextInput(attrs={"placeholder": "note"})
            )

    def checklist_rows(self):
        return [(self[f"check_{k}"], self[f"note_{k}"]) for k, _ in CHECKLIST]

    def to_data(self):
        d = self.cleaned_data
        data = {k: d.get(k, "") for k in ("name", "dataset", "dataset_link", "model", "code_language", "goal")}
        data["delivery"] = (d.get("delivery") or "").splitlines()
        data["checklist"] = {
            k: {"answer": d.get(f"check_{k}") or "unsure", "note": d.get(f"note_{k}", "")} for k, _ in CHECKLIST
        }
        return data


class CreatorRolesForm(forms.Form):
    """On the new-project page: the roles the creator takes (all five checked; PM always)."""

    creator_roles = forms.MultipleChoiceField(
        label="Your roles in this project",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="You are always its PM. Uncheck what you will not do; a PM can change roles later.",
    )

    def __init__(self, *args, **kwargs):

        super().__init__(*args, **kwargs)
        self.fields["creator_roles"].choices = Role.choices
        self.fields["creator_roles"].initial = list(Role.values)


class TargetForm(forms.Form):
    metric = forms.CharField(
        required=False, widget=forms.TextInput(attrs={"placeholder": "accuracy", "list": "metric-names"})
    )
    comparator = forms.ChoiceField(choices=[(c, s) for c, s in COMPARATORS.items()], required=False)
    target = forms.CharField(
        required=False, widget=forms.TextInput(attrs={"placeholder": "0.95", "inputmode": "decimal"})
    )
    unit = forms.CharField(required=False, widget=forms.TextInput(attrs={"placeholder": "ms"}))


TargetFormSet = formset_factory(TargetForm, extra=1, can_delete=True)


def targets_from_formset(formset):
    rows = []
    for f in formset.forms:
        d = getattr(f, "cleaned_data", None) or {}
        if d.get("DELETE") or not (d.get("metric") or d.get("target")):
            continue
        rows.append(
            {
                "metric": d.get("metric", ""),
                "comparator": d.get("comparator", ""),
                "target": d.get("target", ""),
                "unit": d.get("unit", ""),
            }
        )
    return rows


class MemberForm(PortalForm):
    username = forms.CharField(label="Username or email", max_length=254)
    roles = forms.MultipleChoiceField(choices=(), widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, **kwargs):

        super().__init__(*args, **kwargs)
        self.fields["roles"].choices = Role.choices


class ScopeDecisionForm(PortalForm):
    """A manager approves or returns a submitted scope: the comment (required to return)."""

    reason = forms.CharField(required=False, max_length=2000)


class PlanForm(PortalForm):
    """The plan page: per stage a planned start, end and owner; the resource estimate and sizes.
    Fields are plain text so that ``plan.plan_clean`` is the one validator (its errors name these
    fields: ``<stage>_start``, ``<stage>_end``, ``<stage>_owner``, ``labeling_hours``…)."""

    def __init__(self, *args, owners=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "—")] + [(u, u) for u in owners]
        for key, title in STAGES:
            self.fields[f"{key}_start"] = forms.CharField(
                label=f"{title} start", required=False, widget=forms.DateInput(attrs={"type": "date"})
            )
            self.fields[f"{key}_end"] = forms.CharField(
                label=f"{title} end", required=False, widget=forms.DateInput(attrs={"type": "date"})
            )
            self.fields[f"{key}_owner"] = forms.ChoiceField(label=f"{title} owner", choices=choices, required=False)
        for field, title, unit in ESTIMATES:
            self.fields[field] = forms.CharField(
                label=f"{title} ({unit})", required=False, widget=forms.TextInput(attrs={"inputmode": "decimal"})
            )
        for field, title in SIZES:
            self.fields[field] = forms.CharField(
                label=title, required=False, widget=forms.TextInput(attrs={"inputmode": "numeric"})
            )

    def stage_rows(self):
        return [(key, title, self[f"{key}_start"], self[f"{key}_end"], self[f"{key}_owner"]) for key, title in STAGES]

    def to_plan(self):
        d = self.cleaned_data
        milestones = {
            key: {"planned_start": d[f"{key}_start"], "planned_end": d[f"{key}_end"], "owner": d[f"{key}_owner"]}
            for key, _ in STAGES
        }
        estimate = {f: d[f] for f, _, _ in ESTIMATES} | {f: d[f] for f, _ in SIZES}
        return milestones, estimate


class ForecastAcceptForm(PortalForm):
    resource = forms.CharField(max_length=40)


class CommentForm(PortalForm):
    """A comment: ``comments.comment_post`` checks the text (empty, too long) and names the field."""

    body = forms.CharField(
        label="Comment",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 3, "maxlength": 4000, "placeholder": "Write a comment; @username tells a member"}
        ),
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput)
