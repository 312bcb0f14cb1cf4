"""Stored XSS: script-bearing text in every free-text field, then every page of the project read
by a member holding every role. No page may carry the payload raw: not in the HTML, not in the JSON
embedded for Plotly and the page scripts (json_script escapes < > & as \\u003C …)."""

import re
from pathlib import Path

import pytest
from django.test import Client

from apps.accounts.models import Role
from tests.factories import member

from .conftest import build_world, in_production
from .test_access_matrix import SITE_PAGES, _page_url, project_pages

pytestmark = pytest.mark.django_db

PAYLOADS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
TEXT = "".join(PAYLOADS)
ROOT = Path(__file__).resolve().parents[2]


def poison(w, boss):
    """Every other free-text field a person can fill, through the real services."""
    from apps.accounts.services import api_token_create
    from apps.datasets import services as datasets
    from apps.labeling import services as labeling
    from apps.monitoring import services as monitoring
    from apps.profiling import services as profiling
    from apps.projects import services as projects
    from apps.registry import services as registry
    from apps.training.models import TrainingRun

    p = w.project
    projects.scope_update(
        project=p,
        user=w.people["pm"],
        comment=f"edit{TEXT}",
        data={
            "name": f"Screws{TEXT}",
            "dataset": f"data{TEXT}",
            "dataset_link": "https://example.com/d",
            "model": f"model{TEXT}",
            "code_language": f"lang{TEXT}",
            "goal": f"goal{TEXT}",
            "measurement": [{"metric": "accuracy", "comparator": ">=", "target": 0.5, "unit": f"u{TEXT}"}],
            "delivery": [f"deliver{TEXT}"],
            "checklist": {},
        },
    )
    p.refresh_from_db()
    # The draft stays pending; a manager's override keeps the later stages open (its reason on pages too).
    projects.scope_gate_override(project=p, user=w.people["manager"], reason=f"pilot{TEXT}")
    p.refresh_from_db()
    w.item.original_name = f"img{TEXT}.png"
    w.item.save(update_fields=["original_name"])
    labeling.review_resolve(
        item=w.items[1], reviewer=w.people["reviewer"], label_class=w.defect, comment=f"resolved{TEXT}"
    )
    labeling.annotation_review(
        annotation=w.annotation, reviewer=w.people["reviewer"], accept=False, comment=f"rejected{TEXT}"
    )
    labeling.queue_for_review(item=w.items[2], reason=f"second look{TEXT}", requested_by=w.people["ds"])
    bad = datasets.upload_create(project=p, user=w.people["ds"], filename=f"up{TEXT}.png", size=0)
    w.job2 = datasets.import_uploads_start(project=p, user=w.people["ds"], upload_ids=[bad.pk])
    from apps.datasets.services import import_job_run

    import_job_run(job_id=w.job2.pk, inline=True)
    profiling.gate_override(version=_unprofiled(w), user=w.people["ds"], reason=f"override{TEXT}")
    in_production(w)
    registry.promotion_request_reject(request=w.req2, user=w.people["manager"], comment=f"no{TEXT}")
    monitoring.alert_acknowledge(alert=w.alert, user=w.people["manager"], note=f"ack{TEXT}")
    TrainingRun.objects.filter(pk=w.run.pk).update(error=f"boom{TEXT}", log=f"log{TEXT}")
    api_token_create(user=boss, name=f"token{TEXT}", scopes=["read"])
    from apps.serving.services import project_token_create, serving_route_set

    project_token_create(project=p, user=w.people["ds"], name=f"line{TEXT}", scopes=["predict"])
    staging = registry.model_version_stage_set(version=w.v2, stage="staging", user=w.people["ds"])
    serving_route_set(
        registered_model=w.rm, user=w.people["manager"], mode="shadow", candidate=staging, reason=f"shadow{TEXT}"
    )
    registry.webhook_create(project=p, user=w.people["manager"], url="https://hooks.example.com/x?a=%3Cscript%3E")


def _unprofiled(w):
    from tests.factories import make_version

    return make_version(
        w.project, [(w.items[0], "train", "good"), (w.items[1], "test", "defect")], number=w.dv.number + 1
    )


QUERIES = {
    "training-compare": lambda w: f"?runs={w.run.pk}",
    "datasets-version-diff": lambda w: "?a=1&b=2",
    "profiling-compare": lambda w: f"?a={w.profile.pk}&b={w.profile.pk}",
}


def test_free_text_is_escaped_on_every_page(project, people):
    w = build_world(project, people, text=TEXT)
    boss = member(project, *Role.values, username="boss")
    poison(w, boss)
    client = Client()
    client.force_login(boss)
    pages, leaks, escaped = 0, [], 0
    urls = []
    for name, converters, methods in project_pages():
        if "get" in methods:
            url = _page_url(name, converters, w).split("?")[0]
            urls.append((name, url + (QUERIES[name](w) if name in QUERIES else "")))
    from django.urls import reverse

    urls += [(n, reverse(n)) for n in SITE_PAGES]
    author = Client()  # a comment's edit page opens to its author only
    author.force_login(w.people["ds"])
    for name, url in urls:
        r = (author if name == "project-comment-edit" else client).get(url)
        assert r.status_code in (200, 302), f"{name} {url}: {r.status_code}"
        if not r.get("Content-Type", "").startswith("text/html"):
            continue
        pages += 1
        body = r.content.decode()
        for payload in PAYLOADS:
            if payload in body:
                at = body.index(payload)
                leaks.append(f"{name} ({url}): raw {payload!r} … {body[max(0, at - 120) : at + 60]!r}")
        escaped += body.count("&lt;script&gt;alert(1)&lt;/script&gt;") + body.count("\\u003Cscript\\u003E")
    assert not leaks, "\n".join(leaks)
    assert pages > 40 and escaped > 40, (pages, escaped)


def test_templates_never_mark_user_text_safe():
    """No |safe, {% autoescape off %}, mark_safe or format_html-less HTML building in our code."""
    found = []
    for path in list((ROOT / "templates").rglob("*.html")) + list((ROOT / "apps").rglob("*.py")):
        if path.name == "redoc.html" and "drf_spectacular" in str(path):
            continue
        text = path.read_text()
        for pattern in (r"\|\s*safe\b", r"autoescape\s+off", r"\bmark_safe\(", r"\bSafeString\(", r"\|\s*safeseq\b"):
            for m in re.finditer(pattern, text):
                found.append(f"{path.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}: {m.group(0)}")
    assert not found, "\n".join(found)


def test_page_scripts_never_build_html_from_data():
    """The portal's own JS writes data with textContent / DOM nodes; innerHTML only takes constant
    markup (no string concatenation into innerHTML or insertAdjacentHTML)."""
    found = []
    for path in (ROOT / "static").rglob("*.js"):
        if "vendor" in path.parts:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"(innerHTML|outerHTML)\s*\+?=|insertAdjacentHTML|document\.write", line):
                rhs = line.split("=", 1)[1] if "=" in line else line
                if "+" in rhs or "`" in rhs or "insertAdjacentHTML" in line or "document.write" in line:
                    found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_embedded_json_is_escaped_by_json_script():
    """Data reaches scripts through json_script; a {{ value }} written inside a <script> must pass
    through |escapejs (HTML escaping does not protect a JavaScript string)."""
    found = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for block in re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", text, re.S):
            for expr in re.findall(r"{{(.*?)}}", block):
                if not expr.strip().endswith("|escapejs"):
                    found.append(f"{path.relative_to(ROOT)}: {{{{{expr}}}}} in a <script> without |escapejs")
    assert not found, "\n".join(found)
