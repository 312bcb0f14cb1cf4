"""Model builders: built-in CNNs of three sizes, and fine-tuning from an uploaded .keras file.

Inputs are float 0..255 images; every model rescales inside itself so that serving feeds raw
pixels. The output layer is a float32 softmax even under mixed precision (a float16 softmax
loses the small probabilities the loss needs).
"""

import keras
from keras import layers

from .config import ARCHITECTURES, PATCH_RECIPES


class BaseModelError(ValueError):
    """An uploaded model that cannot be fine-tuned (not a Keras model, wrong input, unsafe)."""


def _head(x, num_classes, dropout):
    # Average and max pooling side by side: a small defect anywhere in the image lights up the max
    # even where the average barely moves.
    x = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    if dropout:
        x = layers.Dropout(dropout)(x)
    x = layers.Dense(num_classes, name="logits")(x)
    return layers.Activation("softmax", dtype="float32", name="probs")(x)


def _conv_bn(x, filters, stride=1):
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def tiny_cnn(inputs, num_classes, dropout):
    x = layers.Rescaling(1 / 255.0)(inputs)
    for filters in (8, 16):
        x = _conv_bn(x, filters)
        x = layers.MaxPooling2D()(x)
    return _head(x, num_classes, dropout)


def small_cnn(inputs, num_classes, dropout):
    x = layers.Rescaling(1 / 255.0)(inputs)
    x = _conv_bn(x, 16, stride=2)
    for filters in (32, 64, 96, 128):
        x = _conv_bn(x, filters)
        x = layers.MaxPooling2D()(x)
    return _head(x, num_classes, dropout)


def medium_cnn(inputs, num_classes, dropout):
    x = layers.Rescaling(1 / 255.0)(inputs)
    x = _conv_bn(x, 32, stride=2)
    for filters in (32, 64, 128, 192, 256):
        shortcut = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False)(x)
        y = _conv_bn(x, filters)
        y = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(y)
        y = layers.BatchNormalization()(y)
        x = layers.ReLU()(layers.Add()([shortcut, y]))
    return _head(x, num_classes, dropout)


BUILDERS = {"tiny_cnn": tiny_cnn, "small_cnn": small_cnn, "medium_cnn": medium_cnn}
assert set(BUILDERS) | {"finetune"} | set(PATCH_RECIPES) == set(ARCHITECTURES)


def load_base_model(path):
    """Load an uploaded .keras file with ``safe_mode=True``: no pickled lambdas, no user code.

    Returns the model; raises BaseModelError with the reason when it cannot be used.
    """
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad file; the message is what matters
        raise BaseModelError(f"The file is not a Keras model that loads safely: {exc}") from exc
    if not isinstance(model, keras.Model):
        raise BaseModelError("The file does not hold a Keras model.")
    shape = tuple(model.inputs[0].shape) if model.inputs else ()
    if len(shape) != 4 or shape[3] not in (1, 3):
        raise BaseModelError(f"The model's input must be images (batch, height, width, 1 or 3), not {shape}.")
    return model


def base_model_input(path):
    """(height, width, channels) of an uploaded model's input."""
    shape = tuple(load_base_model(path).inputs[0].shape)
    return shape[1], shape[2], shape[3]


def finetune(inputs, num_classes, dropout, *, base_path, freeze_base=False):
    """Reuse everything below the uploaded model's last layer; put a fresh classifier on top."""
    base = load_base_model(base_path)
    want = tuple(inputs.shape[1:])
    have = tuple(base.inputs[0].shape[1:])
    if None not in have and have != want:
        raise BaseModelError(
            f"The uploaded model takes inputs of shape {have}, but the run is set to {want}; "
            "set the input size and channels to match it."
        )
    if len(base.layers) < 2:
        raise BaseModelError("The uploaded model has no layers to reuse below its output.")
    features = keras.Model(base.inputs, base.layers[-2].output, name="base")
    features.trainable = not freeze_base
    x = features(inputs, training=False if freeze_base else None)
    if len(x.shape) == 4:
        x = layers.GlobalAveragePooling2D()(x)
    elif len(x.shape) != 2:
        raise BaseModelError(
            f"The layer below the uploaded model's output has shape {tuple(x.shape)}; "
            "expected image features (4-D) or a feature vector (2-D)."
        )
    if dropout:
        x = layers.Dropout(dropout)(x)
    x = layers.Dense(num_classes, name="logits")(x)
    return layers.Activation("softmax", dtype="float32", name="probs")(x)


def build_model(cfg, num_classes, *, base_path=None):
    """A compiled model for ``cfg`` (a TrainConfig). Mixed precision is the caller's policy."""
    inputs = keras.Input((cfg.image_size, cfg.image_size, cfg.channels), name="image")
    if cfg.architecture == "finetune":
        if not base_path:
            raise BaseModelError("Fine-tuning needs an uploaded .keras model.")
        outputs = finetune(inputs, num_classes, cfg.dropout, base_path=base_path, freeze_base=cfg.freeze_base)
    else:
        outputs = BUILDERS[cfg.architecture](inputs, num_classes, cfg.dropout)
    model = keras.Model(inputs, outputs, name=cfg.architecture)
    model.compile(optimizer=make_optimizer(cfg), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def make_optimizer(cfg):
    lr = float(cfg.learning_rate)
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True)
    if cfg.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(lr)
    return keras.optimizers.Adam(lr)
