"""notify(): in-portal notifications by role, email through Django's mail backend, and webhook
deliveries signed with HMAC-SHA256, retried with backoff by the Celery task, every attempt recorded."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail

from apps.accounts.models import Role
from apps.registry import notify as notify_mod
from apps.registry import services
from apps.registry.models import Notification, WebhookDelivery
from apps.registry.notify import notify

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _receivers_on_loopback(settings):
    """These tests' webhook receiver listens on 127.0.0.1, which the SSRF guard refuses by default
    (tests/security/test_paths_and_ssrf.py covers the refusal)."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def hook_server():
    """A real HTTP endpoint answering with the given status codes in turn; records what it got."""
    got, codes = [], []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append({"headers": dict(self.headers), "body": body})
            code = codes.pop(0) if codes else 200
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got, codes
    server.shutdown()


def test_notify_reaches_members_with_the_roles_in_portal_and_email(project, people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        notes = notify(
            project=project,
            event="alert.firing",
            message="Drift on brightness",
            url="/p/x/monitoring/",
            roles=(Role.MANAGER, Role.DATA_SCIENTIST),
        )
    assert sorted(n.user.username for n in notes) == ["ds", "manager"]
    assert not Notification.objects.filter(user__in=[people["labeler"], people["outsider"]]).exists()
    assert sorted(m.to[0] for m in mail.outbox) == ["ds@example.com", "manager@example.com"]
    assert mail.outbox[0].subject.endswith("Drift on brightness") and "/p/x/monitoring/" in mail.outbox[0].body


def test_webhook_is_signed_and_retried_until_delivered(
    project, people, hook_server, monkeypatch, django_capture_on_commit_callbacks
):
    from celery.exceptions import Retry

    from apps.registry.tasks import webhook_deliver

    url, got, codes = hook_server
    codes.extend([500, 503])  # two failures, then 200
    hook = services.webhook_create(project=project, user=people["manager"], url=url, events=["promotion.approved"])
    sent = []  # the broker: what notify dispatched once the transaction committed
    monkeypatch.setattr(notify_mod, "dispatch", lambda task, *args: sent.append((task, args)))
    with django_capture_on_commit_callbacks(execute=True):
        notify(project=project, event="model_version.registered", message="not subscribed")
        notify(project=project, event="promotion.approved", message="v2 approved", data={"version": 2})
    delivery = WebhookDelivery.objects.get()
    assert [x for x in sent if x[0] != "apps.registry.tasks.send_emails"] == [
        ("apps.registry.tasks.webhook_deliver", (delivery.pk,))
    ]
    from mlportal.celery import app

    assert app.amqp.router.route({}, webhook_deliver.name)["queue"].name == "default"
    # The worker's side: each failed try is retried later with a growing countdown.
    for retries, countdown in ((0, 10), (1, 40)):
        with pytest.raises(Retry) as exc:
            webhook_deliver.apply(args=[delivery.pk], retries=retries)
        assert exc.value.when == countdown
    webhook_deliver.apply(args=[delivery.pk], retries=2)
    delivery.refresh_from_db()
    assert delivery.event == "promotion.approved"
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    assert [a["status_code"] for a in delivery.attempts_log] == [500, 503, 200]
    assert delivery.attempts_log[0]["error"] == "HTTP 500"
    assert len(got) == 3
    body = got[-1]["body"]
    expected = "sha256=" + hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
    assert got[-1]["headers"]["X-Portal-Signature"] == expected
    assert got[-1]["headers"]["X-Portal-Event"] == "promotion.approved"
    payload = json.loads(body)
    assert (payload["event"], payload["project"], payload["data"]) == (
        "promotion.approved",
        project.slug,
        {"version": 2},
    )


def test_webhook_gives_up_after_the_last_attempt_and_backs_off(project, people):
    hook = services.webhook_create(project=project, user=people["manager"], url="http://127.0.0.1:9/none")
    notify(project=project, event="promotion.requested", message="x")  # not dispatched: no commit in this test
    d = WebhookDelivery.objects.get(webhook=hook)
    retries = [notify_mod.webhook_delivery_attempt(delivery_id=d.pk) for _ in range(notify_mod.WEBHOOK_MAX_ATTEMPTS)]
    assert retries == [True, True, True, True, False]
    d.refresh_from_db()
    assert (d.status, d.attempts, len(d.attempts_log)) == ("failed", 5, 5)
    assert "ConnectionRefused" in d.attempts_log[0]["error"] or "URLError" in d.attempts_log[0]["error"]
    assert notify_mod.webhook_delivery_attempt(delivery_id=d.pk) is False  # settled: never resent
    assert [notify_mod.backoff_seconds(n) for n in (1, 2, 3, 4)] == [10, 40, 160, 640]


def test_webhook_input_is_checked(project, people):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        services.webhook_create(
            project=project, user=people["manager"], url="ftp://x", events=["Not An Event"], secret="short"
        )
    assert set(exc.value.message_dict) == {"url", "events", "secret"}


def test_unread_count_tag_and_context_processor(project, people, rf):
    from django.template import Context, Template

    from apps.registry.context_processors import notifications

    notify(project=project, event="e.x", message="one", roles=(Role.MANAGER,))
    request = rf.get("/")
    request.user = people["manager"]
    assert notifications(request) == {"unread_notifications": 1}
    out = Template("{% load registry_tags %}{% unread_notifications_count as n %}[{{ n }}]").render(
        Context({"request": request})
    )
    assert out == "[1]"
    services.notifications_mark_read(user=people["manager"])
    assert notifications(request) == {"unread_notifications": 0}


def test_links_become_absolute_with_the_portal_base_url(project, people, settings, django_capture_on_commit_callbacks):
    settings.PORTAL_BASE_URL = "https://portal.example.com/"
    with django_capture_on_commit_callbacks(execute=True):
        notify(
            project=project,
            event="promotion.requested",
            message="m",
            url="/p/x/registry/requests/1/",
            roles=(Role.MANAGER,),
        )
    assert "https://portal.example.com/p/x/registry/requests/1/" in mail.outbox[0].body
    assert Notification.objects.get().url == "/p/x/registry/requests/1/"  # in the portal: relative
