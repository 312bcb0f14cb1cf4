import io
import stat
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from apps.datasets.models import ImportJob
from apps.datasets.services import import_files_start, import_job_run
from tests.factories import png_bytes


def upload(name, data, content_type="application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def make_zip(entries):
    """entries: [(name, bytes, options)] where options may hold symlink=True or compress=False."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, *opts in entries:
            opts = opts[0] if opts else {}
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if opts.get("symlink"):
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def gif_bytes():
    buf = io.BytesIO()
    Image.new("L", (16, 16), 100).save(buf, format="GIF")
    return buf.getvalue()


@pytest.fixture
def ingest(django_capture_on_commit_callbacks):
    """Start an import of uploaded files and run its job right here; returns the finished job."""

    def run(project, user, files, **kw):
        with django_capture_on_commit_callbacks(execute=False):
            job = import_files_start(project=project, user=user, files=files, **kw)
        import_job_run(job_id=job.pk, inline=True)
        return ImportJob.objects.get(pk=job.pk)

    return run


@pytest.fixture
def good_png():
    return png_bytes(size=(48, 40), mode="RGB", seed=123)
