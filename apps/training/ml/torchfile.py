"""Read a legacy (pre-1.6, non-zip) PyTorch state-dict file with no PyTorch installed.

Unpickling is restricted to an allow-list: OrderedDict, the tensor rebuild function and the typed
storages; any other global in the file is refused. Tensors are rebuilt with their strides.
"""

import collections
import io
import pickle
import struct

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
STORAGES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafeCheckpoint(ValueError):
    pass


class _Storage:
    def __init__(self, dtype):
        self.dtype = dtype
        self.array = None


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self):
        base = self.storage.array
        item = base.itemsize
        need = self.offset + sum((s - 1) * st for s, st in zip(self.size, self.stride)) + 1 if all(self.size) else 0
        if need > base.size:
            raise UnsafeCheckpoint("a tensor reaches past the end of its storage")
        view = np.lib.stride_tricks.as_strided(
            base[self.offset :], shape=self.size, strides=tuple(st * item for st in self.stride)
        )
        return np.array(view)  # a contiguous copy


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *rest):
    return _Tensor(storage, storage_offset, size, stride)


class _StorageType:
    def __init__(self, name):
        self.name = name


class _Unpickler(pickle.Unpickler):
    def __init__(self, fh, storages):
        super().__init__(fh)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGES:
            return _StorageType(name)
        raise UnsafeCheckpoint(f"the checkpoint refers to {module}.{name}, which is not on the allow-list")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or pid[0] != "storage":
            raise UnsafeCheckpoint(f"unexpected persistent id {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise UnsafeCheckpoint("a storage of an unknown type")
        if len(pid) > 5 and pid[5] is not None:
            raise UnsafeCheckpoint("storage views are not supported")
        st = self.storages.get(key)
        if st is None:
            st = self.storages[key] = _Storage(STORAGES[storage_type.name])
            st.numel = int(numel)
        return st


class _Plain(pickle.Unpickler):
    def find_class(self, module, name):
        raise UnsafeCheckpoint(f"the checkpoint header refers to {module}.{name}")


def load_legacy_state_dict(data):
    """{name: numpy array} from the bytes of a legacy .pth state dict."""
    fh = io.BytesIO(data)
    if _Plain(fh).load() != MAGIC:
        raise UnsafeCheckpoint("not a legacy PyTorch checkpoint (wrong magic number)")
    if _Plain(fh).load() != 1001:
        raise UnsafeCheckpoint("unsupported checkpoint protocol version")
    _Plain(fh).load()  # sys info
    storages = {}
    result = _Unpickler(fh, storages).load()
    keys = _Plain(fh).load()
    for key in keys:
        st = storages[key]
        (numel,) = struct.unpack("<q", fh.read(8))
        nbytes = numel * np.dtype(st.dtype).itemsize
        raw = fh.read(nbytes)
        if len(raw) != nbytes:
            raise UnsafeCheckpoint("the checkpoint is truncated")
        st.array = np.frombuffer(raw, dtype=st.dtype)
    if not isinstance(result, dict):
        raise UnsafeCheckpoint("the checkpoint is not a state dict")
    return {k: v.numpy() for k, v in result.items() if isinstance(v, _Tensor)}
