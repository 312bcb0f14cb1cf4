"""The labeling pages' forms: the types come in here, the rules stay in the services."""

from django import forms

from apps.core.forms import PortalForm


def _ids(data, name):
    """Whole-number ids sent as ``name`` (repeated), or a form error naming the stray ones."""
    raw = data.getlist(name) if hasattr(data, "getlist") else []
    bad = [v for v in raw if not str(v).isdigit()]
    if bad:
        raise forms.ValidationError(f"Not an item id: {', '.join(bad)}.")
    return [int(v) for v in raw]


class GridForm(PortalForm):
    """Bulk labeling: the selected items and the class button pressed."""

    label_class = forms.IntegerField(error_messages={"required": "Press the class to apply."})
    show = forms.CharField(required=False, max_length=120)

    def clean(self):
        data = super().clean()
        data["items"] = _ids(self.data, "items")
        if not data["items"]:
            raise forms.ValidationError("Select the images to label first.")
        return data


class SchemaForm(PortalForm):
    """The label schema: the class rows (repeated id/name/color/hotkey/order inputs, delete-N boxes)
    and the queue's settings, in the page's units (per cent, minutes)."""

    overlap = forms.IntegerField(min_value=1, max_value=10, label="Labels per sampled item")
    overlap_pct = forms.FloatField(
        min_value=0,
        max_value=100,
        label="Overlap sample (%)",
        error_messages={"invalid": "The sample share must be a percentage, e.g. 10."},
    )
    lease_minutes = forms.FloatField(min_value=0.5, label="Abandoned items return after (minutes)")
    regions_enabled = forms.BooleanField(required=False)
    service_fields = {"overlap_share": "overlap_pct", "lease_seconds": "lease_minutes"}

    def clean(self):
        data = super().clean()
        p, classes = self.data, []
        ids, colors, hotkeys, orders = (p.getlist(k) for k in ("id", "color", "hotkey", "order"))
        for i, name in enumerate(p.getlist("name")):
            row = {
                "id": ids[i] if i < len(ids) else "",
                "name": name,
                "color": colors[i] if i < len(colors) else "",
                "hotkey": hotkeys[i] if i < len(hotkeys) else "",
                "order": orders[i] if i < len(orders) else "",
            }
            if not (row["name"].strip() or row["id"]):
                continue  # an empty spare row
            if p.get(f"delete-{i}") and row["id"]:
                continue
            classes.append(row)
        data["classes"] = classes
        return data

    def schema_data(self):
        d = self.cleaned_data
        return {
            "classes": d["classes"],
            "overlap": d["overlap"],
            "overlap_share": d["overlap_pct"] / 100,
            "lease_seconds": int(d["lease_minutes"] * 60),
            "regions_enabled": d["regions_enabled"],
        }


class ResolveForm(PortalForm):
    label_class = forms.IntegerField(error_messages={"required": "Choose the final label."})
    comment = forms.CharField(required=False, max_length=2000)


class ReviewCommentForm(PortalForm):
    comment = forms.CharField(required=False, max_length=2000)


class ImportForm(PortalForm):
    kind = forms.ChoiceField(
        choices=[("csv", "csv"), ("folders", "folders"), ("coco", "coco")],
        error_messages={"required": "Choose what the file holds: a CSV, a zip of class folders or COCO boxes."},
    )
    file = forms.FileField(error_messages={"required": "Choose a file to import."})
