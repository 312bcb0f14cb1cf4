"""The Content-Security-Policy in Chromium: the watcher every browser test runs under (conftest.page)
does see a violation, and the API docs pages (Swagger UI, ReDoc) work under the policy with none."""

import pytest

from tests.factories import ProjectFactory, member

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_inline_script_is_refused_and_reported(page, live_server):
    page.goto(f"{live_server.url}/login/")
    page.evaluate("""() => { const s = document.createElement("script"); s.textContent = "window.__ran = 1";
                             document.body.appendChild(s); }""")
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__ran") is None  # blocked
    assert any("script-src" in v for v in page.csp_violations), page.csp_violations
    page.csp_violations.clear()  # (seen; the test passes)


def test_the_api_docs_render_under_the_policy(page, live_server, login):
    from apps.accounts.models import Role

    user = member(ProjectFactory(), Role.DATA_SCIENTIST, username="docs-reader")
    user.set_password("portal-test-pass-42")
    user.save()
    login(page, "docs-reader", "portal-test-pass-42")
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30000)  # the operations, drawn from the schema
    assert not page.csp_violations, page.csp_violations
    page.goto(f"{live_server.url}/api/redoc/")
    page.wait_for_selector(".api-content", timeout=30000)
    page.wait_for_timeout(500)
    # ReDoc's footer logo from its CDN is refused (the portal loads nothing from a CDN); nothing else.
    assert all("cdn.redoc.ly" in v for v in page.csp_violations), page.csp_violations
    page.csp_violations.clear()
