"""Import a folder of images on this server into a project (class-per-subfolder → labels)."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.core.jobs import QueueUnavailable
from apps.core.storage import StorageFull
from apps.datasets.services import import_folder_start, import_job_run
from apps.projects.models import Project


class Command(BaseCommand):
    help = "Stage a folder's images and ingest them into a project (optionally labels from subfolder names)."

    def add_arguments(self, parser):
        parser.add_argument("project_slug")
        parser.add_argument("folder")
        parser.add_argument(
            "--labels-from-folders",
            action="store_true",
            help="Label each image with its parent folder's name (train/good/x.png → good).",
        )
        parser.add_argument("--user", help="Username recorded as the uploader.")
        parser.add_argument("--wait", action="store_true", help="Run the ingest here, now, printing progress.")

    def handle(self, project_slug, folder, labels_from_folders=False, user=None, wait=False, **opts):
        project = Project.objects.filter(slug=project_slug).first()
        if project is None:
            raise CommandError(f"No project with slug {project_slug!r}.")
        account = None
        if user:
            account = get_user_model().objects.filter(username=user).first()
            if account is None:
                raise CommandError(f"No user {user!r}.")
        try:
            job = import_folder_start(
                project=project,
                user=account,
                folder=Path(folder),
                labels_from_folders=labels_from_folders,
                dispatch_job=not wait,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        except (QueueUnavailable, StorageFull) as exc:
            raise CommandError(str(exc.detail)) from exc
        self.stdout.write(f"Import #{job.pk}: {job.total} file(s) staged from {folder}.")
        if not wait:
            self.stdout.write("The ingest job is queued; a worker on the 'ingest' queue will process it.")
            return

        def progress(j):
            self.stdout.write(
                f"  {j.processed}/{j.total}  accepted {j.accepted}  duplicate {j.duplicates}  rejected {j.rejected}"
            )

        job = import_job_run(job_id=job.pk, inline=True, progress=progress)
        self.stdout.write(
            self.style.SUCCESS(
                f"Import #{job.pk} {job.status}: {job.accepted} accepted, {job.duplicates} duplicate, "
                f"{job.rejected} rejected."
            )
        )
        for f in job.files.filter(result="rejected")[:20]:
            self.stdout.write(f"  rejected {f.name}: {f.reason}")
