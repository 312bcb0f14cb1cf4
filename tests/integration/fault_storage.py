"""A test double for a disk that fills up: local storage with a byte budget.

Configured by the fault tests only — in this process through settings.STORAGES (OPTIONS
``free_bytes``), in a worker through STORAGE_BACKEND=tests.integration.fault_storage.FullDiskStorage
and FAULT_STORAGE_FREE_BYTES. A write that does not fit writes what fits, then raises
OSError(ENOSPC), as a real full disk does: the partial file stays unless the caller removes it."""

import errno
import os

from django.core.files.storage import FileSystemStorage


class FullDiskStorage(FileSystemStorage):
    hard_links = False  # every stored file is written and counted against the budget

    def __init__(self, location=None, free_bytes=None, **kwargs):
        super().__init__(location=location, **kwargs)
        env = os.environ.get("FAULT_STORAGE_FREE_BYTES")
        self.free_bytes = int(free_bytes if free_bytes is not None else env if env else 0)

    def _save(self, name, content):
        data = b"".join(content.chunks()) if hasattr(content, "chunks") else content.read()
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if len(data) > self.free_bytes:
            with open(path, "wb") as fh:
                fh.write(data[: self.free_bytes])
            self.free_bytes = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        self.free_bytes -= len(data)
        with open(path, "wb") as fh:
            fh.write(data)
        return name.replace("\\", "/")
