import pytest

from apps.core.models import WorkerHeartbeat, WorkerProbe
from apps.core.tasks import probe

from .conftest import wait_for

pytestmark = pytest.mark.integration


def test_a_real_worker_completes_a_task_and_beats(celery_worker_process, client):
    worker = celery_worker_process(queues=["default"])
    row = WorkerProbe.objects.create()
    probe.delay(row.pk)

    def done():
        row.refresh_from_db()
        return row.completed_at

    wait_for(done, timeout=90, what=f"the probe task; worker said:\n{worker.output()[-3000:]}")
    assert row.worker.startswith("test-")
    wait_for(lambda: WorkerHeartbeat.objects.filter(hostname=row.worker).exists(), timeout=30, what="a heartbeat")
    assert client.get("/readyz").json()["checks"]["workers"]["ok"] is True
