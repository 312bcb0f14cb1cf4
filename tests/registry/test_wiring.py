"""Registry pieces shown on other apps' pages: models per dataset version, unread notifications."""

import pytest

pytestmark = pytest.mark.django_db


def test_dataset_version_page_lists_models_trained_on_it(client, project, people, dv, good_run, register):
    version = register(good_run)
    client.force_login(people["labeler"])
    body = client.get(f"/p/{project.slug}/data/versions/{dv.number}/").content.decode()
    assert 'id="models-trained-on"' in body and version.registered_model.name in body
    assert f"/p/{project.slug}/training/runs/{good_run.pk}/" in body


def test_top_bar_counts_unread_notifications(client, project, people, dv, good_run, register):
    client.force_login(people["manager"])
    assert 'id="notifications-link"' in client.get("/").content.decode()
    register(good_run)  # "version registered" notifies managers and data scientists
    body = client.get("/").content.decode()
    assert 'Notifications <span class="badge attention">' in body
