"""Every write of the datasets app, one concern per module, re-exported here so callers import from
``apps.datasets.services`` as before:

- ``staging``: imports started from a folder or a request's files (staged, a job made and dispatched);
- ``uploads``: resumable uploads, chunk by chunk, assembled and imported;
- ``jobs``: the ingest job a worker runs (archives expanded, files inspected and recorded in batches),
  finished, resumed;
- ``versions``: dataset versions frozen with their splits.
"""

from .jobs import import_chunk_run, import_job_run, import_jobs_resume
from .staging import BATCH, import_files_start, import_folder_start
from .uploads import OffsetMismatch, import_uploads_start, upload_assemble, upload_chunk_append, upload_create
from .versions import content_hash, dataset_version_create, split_assign

__all__ = [
    "BATCH",
    "OffsetMismatch",
    "content_hash",
    "dataset_version_create",
    "import_chunk_run",
    "import_files_start",
    "import_folder_start",
    "import_job_run",
    "import_jobs_resume",
    "import_uploads_start",
    "split_assign",
    "upload_assemble",
    "upload_chunk_append",
    "upload_create",
]
