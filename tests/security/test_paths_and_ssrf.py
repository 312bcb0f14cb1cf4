"""Files stay inside storage, downloads cannot be steered to other paths or other projects, and the
portal's only outbound calls to user-chosen URLs (webhooks) cannot reach internal addresses."""

import os
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.accounts.models import Role
from apps.core.models import Blob
from apps.datasets.models import ImportFile
from apps.datasets.services import import_job_run
from tests.datasets.conftest import ingest, make_zip  # noqa: F401 (ingest: a fixture)
from tests.factories import ProjectFactory, member, png_bytes

from .conftest import build_world

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
EVIL_NAMES = [
    "../../evil.png",
    "/tmp/evil.png",
    "..\\..\\evil.png",
    "a/../../evil.png",
    "C:\\evil.png",
    "a/./../../../evil.png",
]


def files_outside(media, top):
    """Files under ``top`` (the test's own tmp dir) that are not under ``media``."""
    media = os.path.realpath(media)
    out = []
    for root, _, names in os.walk(top):
        for n in names:
            p = os.path.realpath(os.path.join(root, n))
            if not p.startswith(media + os.sep):
                out.append(p)
    return out


@pytest.mark.parametrize("name", EVIL_NAMES)
def test_resumable_upload_names_cannot_leave_storage(api, people, project, name):
    r = api(people["ds"]).post(
        reverse("api-uploads", args=[project.slug]), {"filename": name, "size": 3}, format="json"
    )
    assert r.status_code == 400, r.content
    assert "filename" in r.json() and (
        "absolute" in r.json()["filename"][0].lower() or "../" in r.json()["filename"][0]
    )


def test_multipart_import_paths_cannot_leave_storage(
    api, people, project, tmp_path, django_capture_on_commit_callbacks
):
    files = [
        SimpleUploadedFile(f"f{i}.png", png_bytes(seed=i), content_type="image/png") for i in range(len(EVIL_NAMES))
    ]
    with django_capture_on_commit_callbacks(execute=False):
        r = api(people["ds"]).post(
            reverse("api-imports", args=[project.slug]), {"files": files, "names": EVIL_NAMES}, format="multipart"
        )
    assert r.status_code == 201, r.content
    import_job_run(job_id=r.json()["id"], inline=True)
    rows = list(ImportFile.objects.filter(job_id=r.json()["id"]).values_list("name", "result", "reason"))
    assert len(rows) == len(EVIL_NAMES) and all(res == "rejected" for _, res, _ in rows), rows
    assert files_outside(django_settings.MEDIA_ROOT, tmp_path) == []


def test_zip_slip_absolute_and_symlink_entries_write_nothing_outside(people, project, ingest, tmp_path):
    from tests.datasets.conftest import upload

    data = make_zip(
        [
            ("../../evil.png", png_bytes(seed=1)),
            ("/tmp/evil2.png", png_bytes(seed=2)),
            ("..\\..\\evil3.png", png_bytes(seed=3)),
            ("link.png", b"/etc/passwd", {"symlink": True}),
            ("ok/fine.png", png_bytes(seed=4)),
        ]
    )
    job = ingest(project, people["ds"], [upload("set.zip", data)])
    results = dict(job.files.filter(kind="image").values_list("name", "result"))
    assert results.pop("ok/fine.png") == "accepted"
    assert set(results.values()) == {"rejected"} and len(results) == 4, results
    assert files_outside(django_settings.MEDIA_ROOT, tmp_path) == []
    assert not list(Path(tmp_path).rglob("evil*"))


def test_label_import_zip_with_traversal_names_writes_nothing(api, people, project, tmp_path):
    from tests.factories import label_classes

    label_classes(project)
    data = make_zip([("../../good/evil.png", png_bytes(seed=1)), ("/abs/good/evil.png", png_bytes(seed=2))])
    f = SimpleUploadedFile("labels.zip", data, content_type="application/zip")
    r = api(people["ds"]).post(
        reverse("api-labeling-import", args=[project.slug]), {"file": f, "kind": "folders"}, format="multipart"
    )
    assert r.status_code in (200, 400), r.content
    assert files_outside(django_settings.MEDIA_ROOT, tmp_path) == []


@pytest.mark.parametrize(
    "kind", ["../../etc/passwd", "..%2F..%2Fsettings.py", "%2e%2e", "keras.", "KERAS", "model_card%00", "savedmodel"]
)
def test_artifact_downloads_cannot_be_steered(api, people, project, kind):
    w = build_world(project, people)
    url = reverse("api-training-run-artifact", kwargs={"project_slug": project.slug, "pk": w.run.pk, "kind": "x"})
    r = api(people["labeler"]).get(url.replace("/x/", f"/{kind}/"))
    assert r.status_code == (400 if "%00" in kind else 404), r.content[:200]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/projects/{slug}/registry/requests/?status=open%00",
        "/api/v1/projects/{slug}/monitoring/alerts/?status=%00",
        "/api/v1/projects/{slug}/data/items/?label=good%00",
        "/api/v1/projects/{slug}/scope/export.md%00",
        "/p/{slug}/data/?q%00=1",
    ],
)
def test_nul_bytes_in_addresses_are_a_clear_400_not_a_database_error(api, people, project, path):
    """PostgreSQL refuses NUL in any string; the middleware answers before a view hands one to it."""
    r = api(people["pm"]).get(path.format(slug=project.slug))
    assert r.status_code == 400 and b"NUL" in r.content


def test_stored_paths_cannot_point_outside_storage(project):
    """Defence in depth: even a Blob row whose path was tampered with cannot be read from outside."""
    from apps.core.storage import blob_open

    for path in ("../../../../etc/passwd", "/etc/passwd"):
        blob = Blob(sha256="0" * 64, path=path, size=1)
        with pytest.raises(SuspiciousFileOperation):
            blob_open(blob)


def _other_project_objects(people):
    """The same kinds of objects in a second project, where our user is not a member."""
    other = ProjectFactory()
    them = {
        k: member(other, role, username=f"o-{k}")
        for k, role in (
            ("pm", Role.PM),
            ("labeler", Role.LABELER),
            ("reviewer", Role.REVIEWER),
            ("ds", Role.DATA_SCIENTIST),
            ("manager", Role.MANAGER),
        )
    }
    them["outsider"] = people["outsider"]
    return build_world(other, them)


def test_ids_of_another_project_are_404_even_for_a_member_with_every_role(project, people):
    """Object ids are always looked up inside the project in the URL: a member of project A asking
    for project B's item, run, artifact, model, request or alert through A's URLs gets 404."""
    from django.test import Client

    build_world(project, people)
    b = _other_project_objects(people)
    boss = member(project, *Role.values, username="boss")
    s = project.slug
    api_urls = [
        reverse("api-labeling-item", args=[s, b.item.pk]),
        reverse("api-import", args=[s, b.job.pk]),
        reverse("api-upload", args=[s, b.upload.pk]),
        reverse("api-profiling-run", args=[s, b.profile.pk]),
        reverse("api-training-run", args=[s, b.run.pk]),
        reverse("api-training-run-artifact", args=[s, b.run.pk, "keras"]),
        reverse("api-training-sweep", args=[s, b.sweep.pk]),
        reverse("api-registry-model", args=[s, b.rm.pk]),
        reverse("api-registry-bundle", args=[s, b.rm.pk, 1]),
        reverse("api-registry-request", args=[s, b.req.pk]),
        reverse("api-monitoring-rule", args=[s, b.rule.pk]),
        reverse("api-monitoring-alert", args=[s, b.alert.pk]),
    ]
    writes = [
        (reverse("api-labeling-accept", args=[s, b.annotation.pk]), {}),
        (reverse("api-registry-approve", args=[s, b.req.pk]), {"comment": "x"}),
        (reverse("api-monitoring-acknowledge", args=[s, b.alert.pk]), {"note": "x"}),
        (reverse("api-training-run-rerun", args=[s, b.run.pk]), {}),
    ]
    pages = [
        reverse("datasets-item-image", args=[s, b.item.pk]),
        reverse("datasets-item-thumb", args=[s, b.item.pk]),
        reverse("datasets-item", args=[s, b.item.pk]),
        reverse("training-run", args=[s, b.run.pk]),
        reverse("registry-bundle", args=[s, b.rm.pk, 1]),
        reverse("registry-request", args=[s, b.req.pk]),
        reverse("monitoring-alert", args=[s, b.alert.pk]),
        reverse("profiling-run", args=[s, b.profile.pk]),
    ]
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(boss)
    bad = [f"GET {u}: {r.status_code}" for u in api_urls if (r := client.get(u)).status_code != 404]
    bad += [
        f"POST {u}: {r.status_code}" for u, d in writes if (r := client.post(u, d, format="json")).status_code != 404
    ]
    html = Client()
    html.force_login(boss)
    bad += [f"GET {u}: {r.status_code}" for u in pages if (r := html.get(u)).status_code != 404]
    assert not bad, "\n".join(bad)
    b.req.refresh_from_db()
    assert b.req.status == "open"


# Outbound calls (SSRF) -----------------------------------------------------------------------

INTERNAL = [
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8000/",
    "http://10.0.0.5/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://localhost:8000/",
    "http://api.localhost/",
    "http://0.0.0.0/",
    "http://[fe80::1]/",
    "http://100.64.0.1/",
]


@pytest.mark.parametrize("url", INTERNAL)
def test_webhooks_refuse_internal_addresses(api, people, project, url):
    r = api(people["manager"]).post(reverse("api-registry-webhooks", args=[project.slug]), {"url": url}, format="json")
    assert r.status_code == 400, (url, r.content)
    assert "public addresses" in r.json()["url"][0]


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1:6379/_INFO", "data:text/plain,hi"]
)
def test_webhooks_refuse_other_schemes(api, people, project, url):
    r = api(people["manager"]).post(reverse("api-registry-webhooks", args=[project.slug]), {"url": url}, format="json")
    assert r.status_code == 400 and "http(s)" in r.json()["url"][0]


@pytest.fixture
def receivers():
    """Two real HTTP servers on loopback: ``a`` answers 302 → ``b``; each records what it got."""
    got = {"a": [], "b": []}
    servers = {}

    def make(name, redirect_to=None):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                got[name].append(self.path)
                if redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to())
                else:
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers[name] = server
        return f"http://127.0.0.1:{server.server_port}/"

    b = make("b")
    a = make("a", redirect_to=lambda: b + "inside")
    yield a, b, got
    for s in servers.values():
        s.shutdown()


def _delivery(project, people, url, settings):
    from apps.registry import services
    from apps.registry.models import WebhookDelivery
    from apps.registry.notify import notify

    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    hook = services.webhook_create(project=project, user=people["manager"], url=url)
    notify(project=project, event="promotion.requested", message="x")
    return WebhookDelivery.objects.get(webhook=hook)


def test_a_webhook_that_now_resolves_inside_is_refused_when_called(people, project, receivers, settings):
    """Saved while allowed (as a name that later resolves to 127.0.0.1 would be): the call itself
    checks the connected address and sends nothing."""
    from apps.registry.notify import webhook_delivery_attempt

    a, b, got = receivers
    d = _delivery(project, people, b, settings)
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    webhook_delivery_attempt(delivery_id=d.pk)
    d.refresh_from_db()
    assert got["b"] == [] and d.status == "pending"
    assert "loopback" in d.attempts_log[-1]["error"], d.attempts_log


def test_webhook_redirects_are_not_followed(people, project, receivers, settings):
    from apps.registry.notify import webhook_delivery_attempt

    a, b, got = receivers
    d = _delivery(project, people, a, settings)
    webhook_delivery_attempt(delivery_id=d.pk)
    d.refresh_from_db()
    assert got["a"] == ["/"] and got["b"] == []
    assert d.attempts_log[-1]["status_code"] == 302 and d.status == "pending"


def test_no_import_from_url_exists_and_every_outbound_call_goes_through_the_guard():
    """There is no dataset "import from URL" (imports take uploads, multipart files or a server-side
    folder). The only outbound HTTP in the apps is the webhook sender, through apps.core.netguard;
    a new caller of urlopen/requests/httpx must use it too."""
    from apps.datasets.api import ImportIn

    assert not {"url", "urls", "source_url"} & set(ImportIn().fields)
    callers = []
    for path in (ROOT / "apps").rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"urlopen\(|requests\.(get|post|put|request)\(|httpx\.|urllib3\.|\.build_opener\(", text):
            callers.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert callers == [], callers
