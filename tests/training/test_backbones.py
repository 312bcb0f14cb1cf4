"""Pretrained backbones without PyTorch: the allow-listed reader of legacy .pth files, the
EfficientNet-Lite0 conversion (proved on screw photographs: ImageNet class 783 "screw"), the other
catalogue backbones' patch features, and the layers the defect finder saves inside its model."""

import io
import pickle
import sys
import types

import numpy as np
import pytest
from PIL import Image

from apps.training.ml import backbones, torchfile

SCREW_CLASS = 783  # ImageNet "screw"


# A legacy (pre-1.6) PyTorch file, written here with stand-in torch modules --------------------


def _legacy_file(tensors, extra_global=None):
    """Bytes in torch's legacy format: magic, protocol, sys info, the state dict pickle (storages as
    persistent ids), the storage keys, then each storage's element count and raw data."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    torch.FloatStorage = FloatStorage

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils

    class Tensor:
        def __init__(self, key, offset, size, stride):
            self.args = (key, offset, size, stride)

        def __reduce__(self):
            key, offset, size, stride = self.args
            return _rebuild_tensor_v2, (Ref(key), offset, size, stride, False, {})

    class Ref:
        def __init__(self, key):
            self.key = key

    storages = {}

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Ref):
                return ("storage", FloatStorage, obj.key, "cpu", storages[obj.key].size, None)
            return None

    state = {}
    for name, (data, offset, size, stride) in tensors.items():
        storages[name] = np.asarray(data, np.float32).ravel()
        state[name] = Tensor(name, offset, size, stride)
    if extra_global is not None:
        state["evil"] = extra_global
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        buf = io.BytesIO()
        for header in (torchfile.MAGIC, 1001, {"little_endian": True}):
            pickle.dump(header, buf, protocol=2)
        Writer(buf, protocol=2).dump(state)
        pickle.dump(list(storages), buf, protocol=2)
        for _key, arr in storages.items():
            buf.write(np.int64(arr.size).tobytes())
            buf.write(arr.tobytes())
        return buf.getvalue()
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def test_tensors_are_read_with_their_strides():
    # a 2x3 tensor stored transposed (column-major): strides (1, 2), not the contiguous (3, 1)
    want = np.arange(6, dtype=np.float32).reshape(2, 3)
    data = _legacy_file(
        {"w": (want.T.ravel(), 0, (2, 3), (1, 2)), "b": (np.array([9, 9, 5, 6], np.float32), 2, (2,), (1,))}
    )
    state = torchfile.load_legacy_state_dict(data)
    np.testing.assert_array_equal(state["w"], want)
    np.testing.assert_array_equal(state["b"], [5, 6])


def test_any_global_off_the_allow_list_is_refused():
    import os

    data = _legacy_file({"w": (np.zeros(2), 0, (2,), (1,))}, extra_global=os.system)
    with pytest.raises(torchfile.UnsafeCheckpoint, match="posix.system|os.system|not on the allow-list"):
        torchfile.load_legacy_state_dict(data)


def test_a_tensor_that_reaches_past_its_storage_is_refused():
    data = _legacy_file({"w": (np.zeros(4), 0, (2, 3), (3, 1))})
    with pytest.raises(torchfile.UnsafeCheckpoint, match="past the end"):
        torchfile.load_legacy_state_dict(data)


def test_not_a_legacy_checkpoint():
    with pytest.raises(torchfile.UnsafeCheckpoint, match="magic"):
        torchfile.load_legacy_state_dict(pickle.dumps(12345, protocol=2) + b"rest")


# The real checkpoint --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lite0_weights(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("lite0") / "lite0.weights.h5")
    assert backbones.convert_lite0(backbones.lite0_pth_from_package(), path) == 296
    return path


def test_a_corrupted_checkpoint_is_refused_by_its_sha256(tmp_path):
    data = bytearray(backbones.lite0_pth_from_package())
    data[-1] ^= 1
    with pytest.raises(backbones.BackboneError, match="sha256"):
        backbones.convert_lite0(bytes(data), str(tmp_path / "w.h5"))


def test_converted_lite0_sees_screws_as_imagenet_class_783(lite0_weights, screws):
    from apps.training.ml import efficientnet_lite

    root, rows = screws
    picked = [r for r in rows if r["label"] == "good"][:6] + [r for r in rows if r["label"] == "defect"][:6]
    images = [
        np.asarray(Image.open(root / r["path"]).convert("RGB").resize((224, 224), Image.BILINEAR), np.float32)
        for r in picked
    ]
    model = efficientnet_lite.build((224, 224, 3), include_top=True)
    model.load_weights(lite0_weights)
    top1 = backbones.imagenet_top1(model, np.stack(images))
    assert (top1 == SCREW_CLASS).sum() >= 9, top1  # most of them; a random network would almost never


@pytest.mark.parametrize("name", sorted(backbones.CATALOGUE))
def test_every_catalogue_backbone_gives_patch_features_at_stride_8_and_16(name):
    net = backbones.build_backbone(name, (64, 128, 3))
    fine, coarse = backbones.feature_taps(net, name)
    assert tuple(fine.shape[1:3]) == (8, 16) and tuple(coarse.shape[1:3]) == (4, 8)
    b = backbones.CATALOGUE[name]
    assert b.licence and b.source and b.url.startswith("https://") and len(b.hash) in (32, 64)


def test_mirror_tta_averages_the_maps_and_their_mirror_image(tmp_path):
    import keras

    from apps.training.ml import patch

    net = patch.head(8, 1, top_k=3, dropout=0, mean=np.zeros(8), std=np.ones(8))
    x = np.random.default_rng(0).normal(size=(2, 5, 7, 8)).astype(np.float32)
    tta = patch.mirrored(net)
    want = (np.asarray(net(x)) + np.asarray(net(x[:, ::-1]))) / 2
    np.testing.assert_allclose(np.asarray(tta(x)), want, atol=1e-6)
    wrapper = keras.Model(tta.inputs, tta.outputs)
    wrapper.save(tmp_path / "tta.keras")  # the mirror layer is registered: a safe load gives the same answers
    again = keras.saving.load_model(tmp_path / "tta.keras", safe_mode=True, compile=False)
    np.testing.assert_allclose(np.asarray(again(x)), want, atol=1e-6)
