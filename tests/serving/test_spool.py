"""The prediction log's durable spool (apps/serving/spool.py, logwriter.py): rows on disk before the
answer, a stopped process's spool replayed by the next one without a duplicate, a bound that loses
rows (counted exactly, alerted, shown) instead of answers, and a real full disk."""

import os
import shutil
import subprocess

import pytest

from apps.monitoring.models import Alert, AlertRule, RuleKind
from apps.serving.logwriter import LogWriter, decode, encode
from apps.serving.models import PredictionLog, PredictionLogLoss
from apps.serving.spool import Spool

pytestmark = pytest.mark.django_db


def _row(version, i, image=None):
    from django.utils import timezone

    return {
        "project_id": version.registered_model.project_id,
        "registered_model_id": version.registered_model_id,
        "model_version_id": version.pk,
        "created_at": timezone.now(),
        "request_id": f"r{i}",
        "batch_index": 0,
        "route": "production",
        "latency_ms": 1.0,
        "input_sha256": "0" * 64,
        "input_stats": {"width": 32},
        "predicted_class": "good",
        "confidence": 0.9,
        "probabilities": {"good": 0.9, "defect": 0.1},
        "image": image,
    }


def _die(writer):
    """What SIGKILL leaves: the segments on disk, their locks released, nothing drained or deleted."""
    for seg in writer.spool.segments():
        os.close(seg.fd)


def test_a_row_round_trips_through_a_spool_line_with_its_image(served):
    row = _row(served, 1, image=(b"\x89PNG\r\n...", "PNG"))
    back = decode(encode(dict(row)))
    assert back["created_at"] == row["created_at"] and back["image"] == row["image"]
    assert back["probabilities"] == row["probabilities"] and back["input_stats"] == {"width": 32}


def test_the_spool_of_a_stopped_process_is_replayed_once_by_the_next(served, tmp_path):
    a = LogWriter(directory=tmp_path / "spool", background=False, flush_rows=4)
    for i in range(10):
        assert a.put(_row(served, i)) is True
    assert a.drain(limit_batches=1) == 4  # four rows reached the database…
    seg = a.spool.segments()[0]
    (seg.path.parent / (seg.path.name + ".off")).unlink()  # …but the offset was never recorded (killed between)
    _die(a)

    b = LogWriter(directory=tmp_path / "spool", background=False, flush_rows=4)
    assert b.flush() == 6  # the other six, replayed; the first four recognised by their keys
    assert b.replayed == 6 and b.duplicates == 4
    assert PredictionLog.objects.count() == 10
    assert sorted(PredictionLog.objects.values_list("request_id", flat=True)) == sorted(f"r{i}" for i in range(10))
    assert list((tmp_path / "spool").iterdir()) == []  # the replayed segment is gone once drained
    b.stop()


def test_a_live_process_segments_are_not_taken_by_another(served, tmp_path):
    a = LogWriter(directory=tmp_path / "spool", background=False)
    a.put(_row(served, 1))
    b = LogWriter(directory=tmp_path / "spool", background=False)
    assert b.spool.adopt_orphans() == 0 and b.flush() == 0  # a's lock: a drains its own
    assert a.flush() == 1
    a.stop()
    b.stop()


def test_a_torn_last_line_of_a_killed_writer_is_skipped(served, tmp_path):
    a = LogWriter(directory=tmp_path / "spool", background=False)
    a.put(_row(served, 1))
    seg = a.spool.segments()[0]
    with open(seg.path, "ab") as fh:
        fh.write(encode(_row(served, 2))[:40])  # killed mid-write: never acknowledged
    _die(a)
    b = LogWriter(directory=tmp_path / "spool", background=False)
    assert b.flush() == 1 and b.lost_total == 0
    assert list(PredictionLog.objects.values_list("request_id", flat=True)) == ["r1"]
    b.stop()


def test_a_full_spool_answers_counts_each_lost_row_alerts_and_shows_it(
    project, people, served, engine, api, client_for, settings
):
    from tests.training.conftest import tiny_png

    from .conftest import predict_url
    from .test_api import post_files

    settings.SERVING_LOG_SAMPLE_RATE = 0.0
    answers = [post_files(api(people["ds"]), predict_url(project), ("a.png", tiny_png(0, "defect")))]
    engine.writer.spool.max_bytes = int(2.5 * engine.writer.pending_bytes())  # room for two rows, not yet drained
    answers += [post_files(api(people["ds"]), predict_url(project), ("a.png", tiny_png(i, "defect"))) for i in range(4)]
    assert [r.status_code for r in answers] == [200] * 5  # every prediction answered
    assert engine.writer.lost_total == 3 and engine.writer.spool.records == 2
    assert engine.writer.flush() == 2
    loss = PredictionLogLoss.objects.get()
    assert (loss.count, loss.reason, loss.project, loss.registered_model) == (
        3,
        "spool full",
        project,
        served.registered_model,
    )
    rule = AlertRule.objects.get(project=project, kind=RuleKind.LOG_LOSS)  # made for the project, audited
    alert = Alert.objects.get(rule=rule, status="firing")
    assert "3 spool full" in alert.title
    page = client_for(people["labeler"]).get(f"/p/{project.slug}/monitoring/").content.decode()
    assert 'id="log-losses"' in page and "3 prediction log rows lost" in page
    r = api(people["ds"]).get(f"/api/v1/projects/{project.slug}/serving/")
    assert r.status_code == 200 and r.json()["log"]["lost"] == 3


def test_the_log_loss_rule_recovers_and_a_switched_off_rule_stays_off(project, people, served, tmp_path):
    AlertRule.objects.create(project=project, name="loss", kind=RuleKind.LOG_LOSS, threshold=0, enabled=False)
    w = LogWriter(directory=tmp_path / "spool", background=False, max_bytes=10)
    assert w.put(_row(served, 1)) is False
    w.flush()
    assert PredictionLogLoss.objects.get().count == 1 and not Alert.objects.exists()
    w.stop()


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 64 KiB filesystem (tmpfs): root only, else skipped."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tiny tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True, text=True
    )
    if done.returncode:
        pytest.skip(f"could not mount a tiny tmpfs: {done.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_loses_rows_counted_never_half_written(served, tiny_disk):
    w = LogWriter(directory=tiny_disk / "spool", background=False)
    kept, lost = 0, 0
    big = os.urandom(6000)  # a kept image: rows of ~8 KB fill 64 KiB fast
    for i in range(30):
        if w.put(_row(served, i, image=(big, "PNG"))):
            kept += 1
        else:
            lost += 1
    assert kept and lost and w.lost_total == lost and kept + lost == 30
    assert {r for (_, _, r) in w.lost} == {"disk full"}
    seg = w.spool.segments()[0]
    assert seg.path.stat().st_size == seg.size  # truncated back to whole groups
    assert w.flush() == kept and PredictionLog.objects.count() == kept
    assert PredictionLogLoss.objects.get().count == lost
    # Room again (the segment the disk refused is deleted once drained): rows are kept again.
    assert w.put(_row(served, 99)) and w.flush() == 1
    w.stop()


def test_group_commit_under_concurrency_keeps_every_row(served, tmp_path):
    import threading

    s = Spool(tmp_path / "spool")
    results = []

    def client(k):
        for i in range(50):
            results.append(s.append(f'{{"k":"{k}-{i}"}}\n'.encode(), [None]))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 400 and s.records == 400 and s.groups < 400  # grouped
    lines = []
    while True:
        seg, got, end = s.read(limit_records=1000)
        if seg is None:
            break
        lines += got
        s.advance(seg, end)
    assert len(lines) == 400 and len(set(lines)) == 400
    s.close()


def test_a_backlog_is_read_a_block_at_a_time_in_whole_lines(tmp_path):
    s = Spool(tmp_path / "spool")
    for i in range(50):
        assert s.append(f'{{"n":{i},"pad":"{"x" * (i % 7)}"}}\n'.encode(), [None])
    got = []
    while True:
        seg, lines, end = s.read(limit_records=7, block=16)  # blocks smaller than a line
        if seg is None:
            break
        assert len(lines) <= 7
        got += lines
        s.advance(seg, end)
    assert [int(line.split(b",")[0][5:]) for line in got] == list(range(50))
    s.close()
