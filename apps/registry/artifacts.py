"""Reading a version's artifacts: the bytes are checked against the recorded sha256 on every load."""

import hashlib

from apps.core.models import Blob
from apps.core.storage import blob_read


class ArtifactIntegrityError(Exception):
    """The stored bytes are not the ones registered: the artifact must not be loaded."""


def artifact_bytes(version, kind="keras") -> bytes:
    meta = (version.artifacts or {}).get(kind)
    if not meta:
        raise ArtifactIntegrityError(f"{version} has no {kind} artifact.")
    blob = Blob.objects.filter(pk=meta["blob_id"]).first()
    if blob is None:
        raise ArtifactIntegrityError(f"{version}: the {kind} artifact's file is missing from storage.")
    data = blob_read(blob)
    actual = hashlib.sha256(data).hexdigest()
    if actual != meta["sha256"]:
        raise ArtifactIntegrityError(
            f"{version}: the {kind} artifact's sha256 is {actual[:12]}…, not the registered {meta['sha256'][:12]}…; "
            "refusing to load it."
        )
    return data
