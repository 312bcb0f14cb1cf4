"""The portal's own error pages: never Django's debug page unless DEBUG is turned on."""

import pytest
from django.urls import path

from mlportal import urls as portal_urls

from .test_deploy import manage


def boom(request):
    raise RuntimeError("a bug in a view")


urlpatterns = [path("boom/", boom), *portal_urls.urlpatterns]
handler500 = portal_urls.handler500


@pytest.mark.parametrize("env,expected", [({}, "False"), ({"DEBUG": "true"}, "True")])
def test_make_run_profile_has_debug_off_unless_asked(env, expected):
    r = manage("shell", "-c", "from django.conf import settings; print(settings.DEBUG)", PORTAL_ENV="dev", **env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == expected


@pytest.mark.django_db
def test_an_error_in_a_view_shows_the_portals_page(client, settings):
    settings.ROOT_URLCONF = __name__
    client.raise_request_exception = False
    r = client.get("/boom/")
    body = r.content.decode()
    assert r.status_code == 500
    assert "Something went wrong" in body and "Traceback" not in body and "RuntimeError" not in body


@pytest.mark.django_db
def test_not_found_is_the_portals_page(client, people):
    client.force_login(people["labeler"])
    r = client.get("/p/no-such-project/")
    assert r.status_code == 404 and "Not found" in r.content.decode() and "your projects" in r.content.decode()


def test_make_run_profile_serves_compressed_static_files():
    r = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.STORAGES['staticfiles']['BACKEND'])",
        PORTAL_ENV="dev",
    )
    assert r.stdout.strip().splitlines()[-1] == "whitenoise.storage.CompressedStaticFilesStorage"


def test_plotly_is_served_gzipped_and_cached(settings, tmp_path):
    """What `make run` does: collectstatic with the compressed storage, then whitenoise serves the .gz."""
    from django.core.management import call_command
    from django.test import Client

    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    }
    call_command("collectstatic", "--noinput", verbosity=0)
    r = Client().get("/static/vendor/plotly-cartesian.min.js", HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert r.status_code == 200
    assert r["Content-Encoding"] == "gzip" and int(r["Content-Length"]) < 700_000
    assert "max-age=3600" in r["Cache-Control"]
