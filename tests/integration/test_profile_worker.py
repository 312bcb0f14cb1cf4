"""A real ``celery -A mlportal worker -Q profile`` process profiles a version: the start service
sends the task through the configured broker, the worker measures every image (progress and
heartbeats on the row), builds the profile and runs the assertions.

Uses the merged portal's worker fixture (tests/integration/conftest.py); a branch without it skips.
"""

from pathlib import Path

import pytest

if not (Path(__file__).with_name("conftest.py")).exists():
    pytest.skip(
        "needs tests/integration/conftest.py (the real-worker fixture of the merged portal)", allow_module_level=True
    )

from apps.core.jobs import JobStatus
from apps.profiling import services
from apps.profiling.models import ItemStats, ProfileRun
from tests.profiling.conftest import _fast_passwords, known  # noqa: F401  (fixtures)

from .conftest import wait_for

pytestmark = pytest.mark.integration


def test_a_real_worker_on_the_profile_queue_profiles_a_version(celery_worker_process, known, people):
    version, items = known
    worker = celery_worker_process(queues=["profile"])
    run = services.profile_run_start(version=version, user=people["ds"])  # dispatched on commit

    def finished():
        run.refresh_from_db()
        return run.status in JobStatus.FINISHED

    wait_for(finished, timeout=120, what=f"the profile run; worker said:\n{worker.output()[-3000:]}")
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.processed == run.total == 24 and run.heartbeat_at and run.started_at <= run.finished_at
    assert ItemStats.objects.filter(run=run).count() == 24
    assert [u["name"] for u in run.profile["unreadable"]] == ["broken.png"]
    assert not services.gate_check(version).passed
    assert ProfileRun.objects.filter(version=version).count() == 1
