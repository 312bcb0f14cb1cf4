"""Browser tests: Playwright driving the Debian Chromium against pytest-django's live_server."""

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"))


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


# Every page a browser test opens is watched for Content-Security-Policy violations (the portal's
# policy: mlportal/settings.py CONTENT_SECURITY_POLICY): the browser's securitypolicyviolation event
# and its console report both count, and a test that saw one fails.
CSP_WATCH = """document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " +
                e.sourceFile + ":" + e.lineNumber);
});"""


_WATCHED = []  # the pages the running test opened


def watch(pg):
    """Watch ``pg`` for CSP violations (checked when the test ends) and give it a CSP-safe
    ``wait_for_function``. Every page a browser test opens goes through here."""
    violations = []
    pg.add_init_script(CSP_WATCH)
    pg.on(
        "console",
        lambda m: (
            violations.append(f"{pg.url}: {m.text}")
            if m.type == "error" and ("Content Security Policy" in m.text or "CSP violation" in m.text)
            else None
        ),
    )
    pg.csp_violations = violations
    pg.wait_for_function = _polling_wait(pg)
    _WATCHED.append(pg)
    return pg


@pytest.fixture(autouse=True)
def _no_csp_violation(request):
    _WATCHED.clear()
    yield
    seen = [v for pg in _WATCHED for v in pg.csp_violations]
    _WATCHED.clear()
    if seen and request.node.rep_call_passed():
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(dict.fromkeys(seen)))


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15000)
    pg = watch(context.new_page())
    yield pg
    context.close()


def _polling_wait(pg):
    """``page.wait_for_function`` that polls ``page.evaluate`` (which the DevTools protocol runs outside
    the page's CSP): Playwright's own builds its predicate with eval inside the page, which the
    portal's policy (no unsafe-eval) refuses."""
    import time

    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    def wait(expression, arg=None, timeout=None, polling=None):
        deadline = time.monotonic() + (15000 if timeout is None else timeout) / 1000.0
        while True:
            value = pg.evaluate(expression) if arg is None else pg.evaluate(expression, arg)
            if value:
                return value
            if time.monotonic() > deadline:
                raise PlaywrightTimeout(f"wait_for_function: {expression!r} still false after {timeout} ms")
            pg.wait_for_timeout(50)

    return wait


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call_passed = lambda: rep.passed
    elif not hasattr(item, "rep_call_passed"):
        item.rep_call_passed = lambda: False


@pytest.fixture
def login(live_server):
    def do(page, username, password):
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")

    return do


@pytest.fixture
def shot():
    SHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name):
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    return take
