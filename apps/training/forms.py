"""The run and sweep forms: shape only; ranges and dataset checks live in services."""

from django import forms

from .ml.backbones import CATALOGUE
from .ml.config import ACCELERATORS, ARCHITECTURES, AUGMENTATIONS, OPTIMIZERS, RANGES, TrainConfig

D = TrainConfig()
CONFIG_FIELDS = [
    "architecture",
    "image_size",
    "channels",
    "augmentation",
    "epochs",
    "batch_size",
    "optimizer",
    "learning_rate",
    "reduce_lr_on_plateau",
    "early_stopping",
    "early_stopping_patience",
    "class_weighting",
    "dropout",
    "seed",
    "accelerator",
    "mixed_precision",
    "freeze_base",
    "backbone",
    "crop",
    "crop_width",
    "crop_height",
    "top_k",
    "head_ensemble",
    "head_samples",
    "memory_bank",
    "search_budget_s",
]


def _num(cls, name, label, help_text="", **kw):
    lo, hi = RANGES[name]
    fmt = "{:d}" if isinstance(lo, int) and isinstance(hi, int) else "{:g}"
    return cls(
        label=label,
        initial=getattr(D, name),
        help_text=help_text or f"{fmt.format(lo)} – {fmt.format(hi)}",
        widget=(forms.NumberInput(attrs={"min": lo, "max": hi, "step": "any"})),
        **kw,
    )


class RunForm(forms.Form):
    dataset_version = forms.ModelChoiceField(queryset=None, label="Dataset version", empty_label=None)
    name = forms.CharField(required=False, max_length=120)
    architecture = forms.ChoiceField(choices=list(ARCHITECTURES.items()), initial=D.architecture)
    base_model = forms.FileField(
        required=False,
        label="Model to fine-tune (.keras)",
        help_text="Only for “Fine-tune”: loaded with Keras safe mode (no code runs).",
    )
    freeze_base = forms.BooleanField(required=False, initial=D.freeze_base, label="Freeze the uploaded layers")
    backbone = forms.ChoiceField(
        choices=[(k, b.title) for k, b in CATALOGUE.items()],
        initial=D.backbone,
        help_text="Only for the defect finder: its weights must be in the store (Backbones page)",
        required=False,
    )
    crop = forms.ChoiceField(
        required=False,
        choices=[
            ("object", "object: the part, turned along its axis, at full resolution"),
            ("none", "none: the whole image"),
        ],
        initial=D.crop,
    )
    crop_width = _num(forms.IntegerField, "crop_width", "Crop width (px)", required=False)
    crop_height = _num(forms.IntegerField, "crop_height", "Crop height (px)", required=False)
    top_k = _num(forms.IntegerField, "top_k", "Patches per image score (top k)", required=False)
    head_ensemble = _num(
        forms.IntegerField,
        "head_ensemble",
        "Heads averaged",
        "Only for the defect finder: heads trained from their own seeds, scores averaged (1 – 10)",
        required=False,
    )
    head_samples = _num(
        forms.IntegerField,
        "head_samples",
        "Maps budget",
        "Only for the defect finder: at most this many feature maps through the heads in all (0: epochs decide)",
        required=False,
    )
    memory_bank = _num(
        forms.IntegerField,
        "memory_bank",
        "Memory bank (patches)",
        "Only for the anomaly detector: normal patches kept (k-centre coreset)",
        required=False,
    )
    search_budget_s = _num(
        forms.IntegerField,
        "search_budget_s",
        "Search budget (s)",
        "Only for the automatic search: its time limit; a from-scratch candidate trains in what is left (0: none)",
        required=False,
    )
    image_size = _num(forms.IntegerField, "image_size", "Input size (px, square)")
    channels = forms.TypedChoiceField(choices=[(1, "1 (grayscale)"), (3, "3 (RGB)")], coerce=int, initial=D.channels)
    augmentation = forms.ChoiceField(
        choices=[(a, a) for a in AUGMENTATIONS],
        initial=D.augmentation,
        help_text="light: the 8 lossless flips/rotations; strong: + any-angle rotation, zoom, contrast, brightness",
    )
    epochs = _num(forms.IntegerField, "epochs", "Epochs")
    batch_size = _num(forms.IntegerField, "batch_size", "Batch size")
    optimizer = forms.ChoiceField(choices=[(o, o) for o in OPTIMIZERS], initial=D.optimizer)
    learning_rate = _num(forms.FloatField, "learning_rate", "Learning rate")
    reduce_lr_on_plateau = forms.BooleanField(
        required=False, initial=D.reduce_lr_on_plateau, label="Halve the learning rate on a val_loss plateau"
    )
    early_stopping = forms.BooleanField(required=False, initial=D.early_stopping)
    early_stopping_patience = _num(forms.IntegerField, "early_stopping_patience", "Patience (epochs)")
    class_weighting = forms.BooleanField(
        required=False, initial=D.class_weighting, label="Weight classes (for imbalanced data)"
    )
    dropout = _num(forms.FloatField, "dropout", "Dropout")
    seed = _num(forms.IntegerField, "seed", "Random seed")
    accelerator = forms.ChoiceField(
        choices=[(a, a) for a in ACCELERATORS],
        initial=D.accelerator,
        help_text="gpu: runs on the gpu queue, served by GPU workers",
    )
    mixed_precision = forms.BooleanField(
        required=False, initial=D.mixed_precision, help_text="float16 compute on a GPU (float32 output layer)"
    )

    def __init__(self, *args, versions, recipe=None, **kwargs):
        super().__init__(*args, **kwargs)
        for name, value in (recipe or {}).items():  # the portal's default recipe is what the form starts with
            if name in self.fields:
                self.fields[name].initial = value
        self.fields["dataset_version"].queryset = versions
        self.fields["dataset_version"].label_from_instance = lambda v: f"v{v.number} {v.name} ({v.item_count} items)"

    def config(self):
        """The hyperparameters the form sets (the defect finder's own fields may be left empty: defaults)."""
        return {
            k: self.cleaned_data[k]
            for k in CONFIG_FIELDS
            if k in self.cleaned_data and self.cleaned_data[k] not in (None, "")
        }


def _values(text, cast):
    """``a, b, c`` → a list; ``lo..hi`` (or ``lo..hi log``) → a range for random search."""
    text = (text or "").strip()
    if ".." in text:
        bounds, _, flag = text.partition(" ")
        lo, _, hi = bounds.partition("..")
        if cast is str or flag.strip() not in ("", "log"):
            raise forms.ValidationError(f"{text!r}: a range is lo..hi or lo..hi log, for numbers.")
        try:
            return {"min": cast(lo.strip()), "max": cast(hi.strip()), "log": flag.strip() == "log"}
        except ValueError:
            raise forms.ValidationError(f"{text!r} is not a valid range.") from None
    out = []
    for part in text.split(","):
        part = part.strip()
        if part:
            try:
                out.append(cast(part))
            except ValueError:
                raise forms.ValidationError(f"{part!r} is not a valid value.") from None
    return out


SPACE_FIELDS = {
    "learning_rate": float,
    "batch_size": int,
    "epochs": int,
    "dropout": float,
    "image_size": int,
    "architecture": str,
    "optimizer": str,
    "augmentation": str,
    "seed": int,
}


class SweepForm(RunForm):
    sweep_name = forms.CharField(required=False, max_length=120, label="Sweep name")
    method = forms.ChoiceField(choices=[("grid", "grid: every combination"), ("random", "random: N combinations")])
    max_trials = forms.IntegerField(initial=4, min_value=1, max_value=32, label="Trials (random search)")
    metric = forms.ChoiceField(
        choices=[("val_accuracy", "val_accuracy (higher is better)"), ("val_loss", "val_loss (lower is better)")]
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("base_model", "freeze_base", "name"):
            del self.fields[name]
        self.fields["architecture"].choices = [c for c in ARCHITECTURES.items() if c[0] != "finetune"]
        for name in SPACE_FIELDS:
            self.fields[f"space_{name}"] = forms.CharField(
                required=False,
                label=f"Search {name}",
                help_text="comma-separated values, or lo..hi (lo..hi log: log-uniform) for random search; "
                "empty: use the base value",
            )

    def clean(self):
        data = super().clean()
        space = {}
        for name, cast in SPACE_FIELDS.items():
            try:
                values = _values(data.get(f"space_{name}"), cast)
            except forms.ValidationError as exc:
                self.add_error(f"space_{name}", exc)
                continue
            if values:
                space[name] = values
        if not space and not self.errors:
            raise forms.ValidationError("Choose at least one hyperparameter to search.")
        data["space"] = space
        return data
