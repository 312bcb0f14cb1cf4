"""Login throttling (django-axes): repeated failed sign-ins lock the username and the address for a
while (429 and a page saying so), the lockout is logged and audited, a success resets the count,
the lock ends by itself after the cool-off, and a site admin lifts it in the admin site."""

import datetime as dt
import logging

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from apps.core.models import AuditEvent

pytestmark = pytest.mark.django_db
PASSWORD = "portal-test-pass-42"


@pytest.fixture
def user():
    u = get_user_model().objects.create_user("dana", password=PASSWORD)
    return u


def sign_in(username, password, ip="10.0.0.1"):
    return Client(REMOTE_ADDR=ip).post("/login/", {"username": username, "password": password})


def test_five_failures_lock_the_username_even_with_the_right_password(user, settings, caplog):
    settings.AXES_FAILURE_LIMIT = 5
    for i in range(4):
        r = sign_in("dana", "wrong", ip=f"10.0.0.{i + 1}")  # from several addresses
        assert r.status_code == 200 and b"match" in r.content
    with caplog.at_level(logging.WARNING, logger="apps.accounts.security"):
        r = sign_in("dana", "wrong", ip="10.0.0.9")
    assert r.status_code == 429 and b"Too many failed sign-ins" in r.content
    r = sign_in("dana", PASSWORD, ip="10.0.0.77")  # the right password, a new address: still locked
    assert r.status_code == 429 and "_auth_user_id" not in r.client.session
    assert any("sign-in locked" in m and "'dana'" in m for m in caplog.messages)
    event = AuditEvent.objects.filter(action="accounts.login_locked").order_by("id").first()  # (each locked try too)
    assert event.data["username"] == "dana" and event.data["ip_address"] == "10.0.0.9" and event.project is None


def test_failures_from_one_address_lock_that_address_for_every_username(user, settings):
    settings.AXES_FAILURE_LIMIT = 5
    for i in range(5):
        sign_in(f"guess{i}", "x", ip="10.9.9.9")
    assert sign_in("dana", PASSWORD, ip="10.9.9.9").status_code == 429
    assert sign_in("dana", PASSWORD, ip="10.1.1.1").status_code == 302  # another address signs in


def test_a_success_resets_the_count_and_the_lock_ends_after_the_cool_off(user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        sign_in("dana", "wrong")
    assert sign_in("dana", PASSWORD).status_code == 302
    for _ in range(2):
        assert sign_in("dana", "wrong").status_code == 200  # counted afresh
    assert sign_in("dana", "wrong").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=5))
    assert sign_in("dana", PASSWORD).status_code == 302


def test_a_site_admin_lifts_the_lock_in_the_admin_site_and_others_cannot(user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        sign_in("dana", "wrong")
    assert sign_in("dana", PASSWORD).status_code == 429
    attempt = AccessAttempt.objects.get(username="dana")
    staff_nobody = get_user_model().objects.create_user("clerk", password=PASSWORD, is_staff=True)
    c = Client()
    c.force_login(staff_nobody)  # staff without the permission
    assert c.get("/admin/axes/accessattempt/").status_code == 403
    c.force_login(user)
    assert c.get("/admin/axes/accessattempt/").status_code == 302  # not staff: to the admin's login
    admin = get_user_model().objects.create_superuser("root", password=PASSWORD)
    c.force_login(admin)
    assert c.get("/admin/axes/accessattempt/").status_code == 200
    r = c.post(
        "/admin/axes/accessattempt/", {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"}
    )
    assert r.status_code == 302 and not AccessAttempt.objects.exists()
    assert sign_in("dana", PASSWORD).status_code == 302
