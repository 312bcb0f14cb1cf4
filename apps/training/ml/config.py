"""A run's hyperparameters: one dataclass, its allowed ranges and the checks that name the field."""

from dataclasses import asdict, dataclass, field, fields

ARCHITECTURES = {
    "tiny_cnn": "Tiny CNN (2 conv blocks, ~1.4k parameters): smoke tests, very small data",
    "small_cnn": "Small CNN (5 conv blocks, ~190k parameters): the default",
    "medium_cnn": "Medium CNN (5 residual blocks, ~2M parameters): more capacity, slower",
    "finetune": "Fine-tune a Keras model you upload (.keras file, loaded safely)",
    "patch_mil": "Defect finder: a pretrained backbone's patch features at full resolution, a small head "
    "scoring each patch (needs the backbone's weights in the portal's store)",
    "patch_anomaly": "Anomaly detector: the same patch features, a memory bank of normal patches; learns from "
    "the normal class alone (two classes)",
    "patch_auto": "Automatic search: the defect finder, the anomaly detector, both together (one feature pass) "
    "and a small CNN from scratch in what is left of the time budget; the validation split picks",
}
PATCH_RECIPES = ("patch_mil", "patch_anomaly", "patch_auto")
INTEGER_FIELDS = (
    "image_size",
    "epochs",
    "batch_size",
    "early_stopping_patience",
    "seed",
    "crop_width",
    "crop_height",
    "top_k",
    "memory_bank",
    "head_samples",
    "head_ensemble",
    "search_budget_s",
)
CROPS = ("object", "none")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
AUGMENTATIONS = ("none", "light", "strong")
ACCELERATORS = ("cpu", "gpu")
SWEEPABLE = (
    "learning_rate",
    "batch_size",
    "epochs",
    "architecture",
    "optimizer",
    "augmentation",
    "image_size",
    "dropout",
    "class_weighting",
    "seed",
    "backbone",
    "top_k",
)

# field -> (min, max) inclusive, for numbers
RANGES = {
    "image_size": (16, 2048),
    "crop_width": (32, 2048),
    "crop_height": (32, 2048),
    "top_k": (1, 10000),
    "memory_bank": (16, 100000),
    "head_samples": (0, 10**9),
    "head_ensemble": (1, 10),
    "search_budget_s": (0, 86400),
    "epochs": (1, 500),
    "batch_size": (1, 512),
    "learning_rate": (1e-6, 1.0),
    "early_stopping_patience": (0, 100),
    "dropout": (0.0, 0.9),
    "seed": (0, 2**31 - 1),
}


@dataclass
class TrainConfig:
    architecture: str = "small_cnn"
    image_size: int = 128
    channels: int = 1
    augmentation: str = "light"
    epochs: int = 150
    batch_size: int = 16
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    early_stopping: bool = True
    early_stopping_patience: int = 40
    early_stopping_metric: str = "val_loss"
    class_weighting: bool = True
    # Halve the learning rate when val_loss stops improving for half the early-stopping patience.
    reduce_lr_on_plateau: bool = True
    dropout: float = 0.3
    seed: int = 42
    accelerator: str = "cpu"
    mixed_precision: bool = False
    # Fine-tuning only: freeze the uploaded model's layers and train only the new head first.
    freeze_base: bool = False
    # patch_mil only: the pretrained backbone, the object crop (the part turned along its axis and
    # scaled into crop_width × crop_height pixels, or "none" for the whole image) and how many of the
    # highest-scoring patches make an image's score.
    backbone: str = "efficientnet_lite0"
    crop: str = "object"
    crop_width: int = 768
    crop_height: int = 224
    top_k: int = 10
    memory_bank: int = 2000  # patch_anomaly: patches kept in the memory bank (k-centre coreset)
    # patch classifier: also try averaging each image's maps with their mirror image at test time, and
    # keep that only when the validation split says it helps
    tta: bool = True
    # patch classifier: at most this many feature maps (mirrored ones included) pass through the head
    # over the whole fit, so a large dataset trains fewer epochs of more maps; 0: epochs alone decide
    head_samples: int = 0
    # patch classifier: this many heads, each from its own seed, their scores averaged (the maps
    # budget above is shared among them)
    head_ensemble: int = 1
    # patch_auto: the search's time budget in seconds (feature pass and every candidate). The patch
    # candidates run first; a small CNN from scratch then trains in what is left of it, stopped at
    # the budget with its best weights so far (0: no from-scratch candidate)
    search_budget_s: int = 600
    extra: dict = field(default_factory=dict)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})


def planned_epochs(data):
    """How many epoch reports a run of ``data`` (a config dict) plans: the patch classifier's heads
    report their epochs one after another, and the automatic search's from-scratch candidate follows
    them on the same schedule (fewer where ``head_samples`` bounds the heads or the budget runs out)."""
    cfg = TrainConfig.from_dict(data)
    if cfg.architecture not in ("patch_mil", "patch_auto"):
        return cfg.epochs
    return cfg.epochs * max(1, cfg.head_ensemble) + (
        cfg.epochs if cfg.architecture == "patch_auto" and cfg.search_budget_s else 0
    )


def _backbone_names():
    from .backbones import CATALOGUE

    return sorted(CATALOGUE)


def config_errors(data):
    """{field: message} for every out-of-range or unknown value in ``data`` (a dict)."""
    errors = {}
    known = {f.name: f for f in fields(TrainConfig)}
    for key in data:
        if key not in known:
            errors[key] = f"Unknown hyperparameter {key!r}."
    choice_fields = {
        "architecture": tuple(ARCHITECTURES),
        "optimizer": OPTIMIZERS,
        "augmentation": AUGMENTATIONS,
        "accelerator": ACCELERATORS,
        "early_stopping_metric": ("val_loss", "val_accuracy"),
        "crop": CROPS,
        "backbone": tuple(_backbone_names()),
    }
    for name, allowed in choice_fields.items():
        if name in data and data[name] not in allowed:
            errors[name] = f"{name} must be one of {', '.join(allowed)}, not {data[name]!r}."
    if "channels" in data and data["channels"] not in (1, 3):
        errors["channels"] = f"channels must be 1 (grayscale) or 3 (RGB), not {data['channels']!r}."
    for name, (lo, hi) in RANGES.items():
        if name not in data:
            continue
        value = data[name]
        is_int = name in INTEGER_FIELDS
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (is_int and not float(value).is_integer()):
            errors[name] = f"{name} must be {'a whole number' if is_int else 'a number'}, not {value!r}."
        elif not lo <= value <= hi:
            errors[name] = f"{name} must be between {lo:g} and {hi:g}, not {value:g}."
    for name in ("early_stopping", "class_weighting", "mixed_precision", "freeze_base", "reduce_lr_on_plateau", "tta"):
        if name in data and not isinstance(data[name], bool):
            errors[name] = f"{name} must be true or false."
    if data.get("mixed_precision") and data.get("accelerator", "cpu") != "gpu":
        errors["mixed_precision"] = "Mixed precision needs the GPU accelerator (it slows CPUs down)."
    return errors
