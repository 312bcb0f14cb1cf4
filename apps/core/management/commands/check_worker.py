import time

from django.core.management import BaseCommand, CommandError

from apps.core.models import WorkerProbe
from apps.core.tasks import probe


class Command(BaseCommand):
    help = "Send a probe task through the broker and wait for a worker to complete it."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args, **opts):
        row = WorkerProbe.objects.create()
        probe.delay(row.pk)
        deadline = time.monotonic() + opts["timeout"]
        while time.monotonic() < deadline:
            row.refresh_from_db()
            if row.completed_at:
                took = (row.completed_at - row.created_at).total_seconds()
                self.stdout.write(self.style.SUCCESS(f"{row.worker} completed the probe in {took:.2f}s"))
                return
            time.sleep(0.2)
        raise CommandError(f"No worker completed the probe within {opts['timeout']:.0f}s")
