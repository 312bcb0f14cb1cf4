"""The recipe a new user gets when they send no hyperparameters.

The patch-feature defect finder on EfficientNet-Lite0 (the one backbone whose weights ship with the
portal): object crop 768 × 224 from the photograph at 1024 px; three heads, each from its own seed,
their scores averaged (one head's test accuracy moved by a few images with tiny numeric changes);
30 epochs each, or fewer where the training split is large (the heads see at most 63,000 maps in
all: a 5,000-image split trains 2 epochs each, the 480 screws all 30). On the 480 screw
photographs it clears the project's 0.95 accuracy bar (docs/benchmarks.md, bench/default_recipe.py);
without the backbone's weights in the store the portal falls back to ``FALLBACK_RECIPE``.
"""

DEFAULT_RECIPE = {
    "architecture": "patch_auto",
    "backbone": "efficientnet_lite0",
    "image_size": 1024,
    "channels": 1,
    "crop": "object",
    "crop_width": 768,
    "crop_height": 224,
    "top_k": 10,
    "epochs": 30,
    "batch_size": 16,
    "learning_rate": 1e-3,
    "dropout": 0.2,
    "augmentation": "light",
    "class_weighting": True,
    "head_samples": 63000,
    "head_ensemble": 3,
}
FALLBACK_RECIPE = {"architecture": "small_cnn"}
