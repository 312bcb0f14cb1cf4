"""In a real Chromium: the PM plans the project (a milestone that slips shows on the plan, its
timeline and the project page), and a data scientist's @mention reaches the manager it names."""

import datetime as dt
import os

import pytest
from django.utils import timezone

from tests.factories import PASSWORD, make_item

from .conftest import watch

pytestmark = pytest.mark.e2e
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


def test_the_pm_plans_milestones_sees_the_timeline_and_a_slip_flagged(
    transactional_db, live_server, browser, login, project, people, shot
):
    for _ in range(3):
        make_item(project)
    today = timezone.localdate()
    ctx = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = watch(ctx.new_page())
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, "pm", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/")
    page.click("nav >> text=Plan")
    page.wait_for_selector("#plan-form")
    page.fill("#id_data_start", (today - dt.timedelta(days=10)).isoformat())
    page.fill("#id_data_end", (today - dt.timedelta(days=2)).isoformat())  # due, and no dataset version yet
    page.select_option("#id_data_owner", "ds")
    page.fill("#id_training_start", (today + dt.timedelta(days=3)).isoformat())
    page.fill("#id_training_end", (today + dt.timedelta(days=20)).isoformat())
    page.fill("#id_planned_items", "480")
    page.click("#plan-save")
    page.wait_for_selector("#plan-slipping")
    assert "Data — due" in page.inner_text("#plan-slipping") and "(owner ds)" in page.inner_text("#plan-slipping")
    # The timeline: Plotly drew planned and actual bars, and the legend names both.
    page.wait_for_selector("#chart-timeline .main-svg")
    assert page.locator("#chart-timeline .barlayer .point").count() >= 3
    legend = page.locator("#chart-timeline .legend").text_content()
    assert "Planned" in legend and "Actual" in legend
    # The storage forecast from the images' measured size becomes the estimate.
    row = page.locator('tr[data-resource="storage_gb"]')
    assert "kB per image over 3 images; 480 images expected" in row.inner_text()
    row.locator("button").click()
    page.wait_for_selector(".msg.success")
    assert "The estimate now takes the forecast" in page.inner_text(".messages")
    shot(page, "plan")
    page.goto(f"{live_server.url}/p/{project.slug}/")
    assert "1 milestone slipping" in page.inner_text("#plan-card")
    assert page.locator('.stage[data-stage="data"] .badge.slipping').count() == 1
    shot(page, "project-plan-card")
    assert errors == []
    ctx.close()


def test_a_mention_reaches_the_manager_it_names(transactional_db, live_server, browser, login, project, people, shot):
    from django.core import mail

    from tests.registry.conftest import make_run, tiny_dataset_version

    people["manager"].email = "manager@example.com"
    people["manager"].save()
    run = make_run(project, tiny_dataset_version(project, profiled=False), user=people["ds"])
    mail.outbox.clear()

    ctx = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = watch(ctx.new_page())
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, "ds", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.slug}/training/runs/{run.pk}/")
    page.fill("#comments textarea[name=body]", "@manager the val loss flattens after epoch 3 <b>not bold</b>")
    page.click("#comments button[type=submit]")
    page.wait_for_selector("#comments .comment")
    assert "<b>not bold</b>" in page.inner_text("#comments .comment .body")  # shown as text
    ctx.close()

    ctx = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = watch(ctx.new_page())
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, "manager", PASSWORD)
    assert "1" in page.inner_text("#notifications-link .badge")
    page.click("#notifications-link")
    page.click("#notifications >> text=ds mentioned you on run")
    page.wait_for_url(f"**/training/runs/{run.pk}/#comment-*")
    assert page.locator("#notifications-link .badge").count() == 0  # read once followed
    mention = page.locator("#comments .mention")
    assert mention.inner_text() == "@manager"
    assert page.locator("#comments .comment").first.is_visible()
    shot(page, "mention")
    assert [m.to for m in mail.outbox if "mentioned you" in m.subject] == [["manager@example.com"]]
    assert errors == []
    ctx.close()
