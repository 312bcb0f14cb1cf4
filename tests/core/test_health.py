from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_needs_a_live_worker(client):
    r = client.get("/readyz")
    body = r.json()
    assert r.status_code == 503 and body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] and body["checks"]["storage"]["ok"] and body["checks"]["broker"]["ok"]
    assert "no worker heartbeat" in body["checks"]["workers"]["detail"]
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="w1@test", started_at=now, last_seen=now - timedelta(minutes=5))
    assert client.get("/readyz").status_code == 503  # a stale heartbeat is not a live worker
    WorkerHeartbeat.objects.create(hostname="w2@test", started_at=now, last_seen=now)
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"]["workers"]["detail"] == ["w2@test"]


def test_readyz_reports_a_broken_broker(client, monkeypatch):
    from kombu import Connection

    from mlportal.celery import app

    monkeypatch.setattr(app, "connection_for_write", lambda: Connection("redis://127.0.0.1:1/0"))
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["broker"]["ok"] is False
