"""Real-browser tests of the Console: Playwright (sync API) driving Debian's Chromium against a served instance.

    pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]   # the served process reads committed rows

    expect = playwright_api().expect                     # skips without playwright (fails with CI=true)

    def test_x(console_browser):
        make_user("ada", [Role.KERNEL_ADMIN])                 # aion.testing.factories; password PASSWORD
        console_browser.login("ada")                          # through the real login form
        console_browser.goto("/console/proposals/")           # = page.goto(console_browser.url(path))
        expect(console_browser.page.get_by_role("heading", name="Proposals")).to_be_visible()
        bob = console_browser.new_session()                   # a second, separate browser session (own cookies)
        bob.login("bob")

``page`` is a Playwright ``Page``; use ``playwright.sync_api.expect`` (bounded by EXPECT_TIMEOUT_MS), never sleeps.

Accessibility, on every test for free: axe-core (``axe-playwright-python``'s bundled ``axe.min.js``, injected into the
page; no network) checks each kind of page (the path with ids blanked) once per test: after a ``goto``/``login``, at
teardown on each session's last page, and by a revisit at teardown (same session) for any other page the browser
loaded. Any ``serious`` or ``critical`` violation (colour contrast included) fails the test. A test may call
``session.check_accessibility()`` at a state worth checking (an open dialog). ``session.screenshot("name")`` writes
``docs/console/name.png`` when ``AION_SCREENSHOTS=1`` (docs/console.md says how to refresh them), else nothing.
Any uncaught page error or ``console.error`` (other than the browser's own "Failed to load resource" line for a 4xx
the test provoked) fails the test at teardown; ``session.errors`` lists them. On failure each session's screenshot
is saved in the test's tmp_path, with the server log tail printed. One Chromium per test (see chromium_browser).
Chromium: AION_CHROMIUM, else /usr/bin/chromium (apt ``chromium``; never
``playwright install``). A missing browser or playwright skips locally and fails with CI=true.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from aion.testing.services import service_missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

    from aion.testing.processes import ServedInstance

CHROMIUM = os.environ.get("AION_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "pw-for-tests-only"  # noqa: S105 - make_user's default test password
EXPECT_TIMEOUT_MS = 10_000
IGNORED_CONSOLE_ERRORS = ("Failed to load resource",)  # the browser's note about a 4xx/5xx the test asked for
AXE_FAILING_IMPACTS = frozenset({"serious", "critical"})
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "console"
_ID_IN_PATH = re.compile(r"/(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+)(?=/|$)")


def page_kind(url: str) -> str:
    """A URL as the kind of page it shows: no query, ids blanked (one axe check per template, not per row)."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    return _ID_IN_PATH.sub("/:id", path)


def axe_violations(page: Page) -> list[str]:
    """Serious and critical axe-core violations of PAGE's current document, one line per rule with its first nodes.
    ``Axe`` is only the bundled script here: injected once per document, run with the default rules (WCAG A/AA and
    best practices, ``color-contrast`` among them)."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe.axe_script)  # ~0.5 MB: once per document, not once per check
    response = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    lines = []
    for violation in response.get("violations", []):
        if violation.get("impact") not in AXE_FAILING_IMPACTS:
            continue
        targets = ", ".join(" ".join(map(str, node.get("target", []))) for node in violation.get("nodes", [])[:3])
        summary = violation.get("nodes", [{}])[0].get("failureSummary", "").replace("\n", " ")
        lines.append(f"{page.url}: {violation['impact']} {violation['id']} ({violation.get('help', '')}) at {targets}: {summary}")
    return lines


def playwright_api() -> Any:
    """``playwright.sync_api`` for a test module's top (``expect = playwright_api().expect``): skips the module when
    playwright is not installed, and fails it with CI=true, as the fixtures do."""
    try:
        import playwright.sync_api as api
    except ImportError as exc:
        service_missing("playwright", f"the Python package is not installed ({exc}); see requirements-dev.txt", module_level=True)
    return api


class ConsoleSession:
    """One browser session (its own context, cookies and page) on the served Console."""

    def __init__(self, context: BrowserContext, instance: ServedInstance, checked_kinds: set[str] | None = None) -> None:
        self.context = context
        self.instance = instance
        self.page: Page = context.new_page()
        self.errors: list[str] = []
        self.accessibility: list[str] = []  # axe violations found so far
        # Kinds of page axe has checked in this test, shared by its sessions (a second admin's dashboard is the same page).
        self.checked_kinds: set[str] = set() if checked_kinds is None else checked_kinds
        self.axe_seconds, self.axe_runs = 0.0, 0
        self.loaded: dict[str, str] = {}  # page kind -> the last URL of that kind the browser loaded
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        self.page.on("console", self._on_console)
        self.page.on("load", self._on_load)

    def _on_load(self, page: Any) -> None:
        # Only noted here: a load handler runs concurrently with the test, so axe runs at a point the test chose.
        if page.url.startswith(self.instance.url("/")):
            self.loaded[page_kind(page.url)] = page.url

    def check_accessibility(self, page: Page | None = None) -> list[str]:
        """Runs axe-core on PAGE (this session's page) now; failing violations are kept for the teardown."""
        page = page or self.page
        started = time.monotonic()
        found = axe_violations(page)
        self.axe_seconds += time.monotonic() - started
        self.axe_runs += 1
        self.accessibility.extend(v for v in found if v not in self.accessibility)
        self.checked_kinds.add(page_kind(page.url))
        return found

    def _check_new_kind(self) -> None:
        # goto/login check each kind of page once per test: a per-state check is the test's call.
        if page_kind(self.page.url) not in self.checked_kinds:
            self.check_accessibility()

    def check_loaded_pages(self) -> None:
        """The teardown's sweep: the current page, then one revisit of each kind of page loaded but not yet checked."""
        if not self.page.is_closed() and self.page.url.startswith(self.instance.url("/")):
            self._check_new_kind()
        pending = [url for kind, url in self.loaded.items() if kind not in self.checked_kinds]
        if not pending:
            return
        page = self.context.new_page()
        try:
            for url in pending:
                page.goto(url)
                self.check_accessibility(page)
        finally:
            page.close()

    def screenshot(self, name: str) -> Path | None:
        """Writes docs/console/NAME.png of the whole page when AION_SCREENSHOTS=1 (the docs' pictures), else nothing."""
        if os.environ.get("AION_SCREENSHOTS") != "1":
            return None
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
        return path

    def _on_console(self, message: Any) -> None:
        if message.type == "error" and not message.text.startswith(IGNORED_CONSOLE_ERRORS):
            self.errors.append(f"console.error: {message.text}")

    def url(self, path: str = "/") -> str:
        return self.instance.url(path)

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.url(path))
        self._check_new_kind()
        return response

    def login(self, username: str, password: str = PASSWORD, next_path: str = "/console/") -> None:
        """Logs in through the Console's login form and waits until the browser has left the login page."""
        from playwright.sync_api import expect

        self.page.goto(self.url(f"/console/login/?next={next_path}"))
        self._check_new_kind()
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page).not_to_have_url(self.url("/console/login/") + "*", timeout=EXPECT_TIMEOUT_MS)
        expect(self.page.get_by_text("Your username and password didn't match.")).to_have_count(0)
        self._check_new_kind()


class ConsoleBrowser(ConsoleSession):
    """The first session, plus ``new_session()`` for more people on the same served instance."""

    def __init__(self, browser: Browser, instance: ServedInstance, shots: Path) -> None:
        self.browser = browser
        self.shots = shots
        self.sessions: list[ConsoleSession] = []
        super().__init__(self._context(), instance)
        self.sessions.append(self)

    def _context(self) -> BrowserContext:
        context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        return context

    def new_session(self) -> ConsoleSession:
        session = ConsoleSession(self._context(), self.instance, self.checked_kinds)
        self.sessions.append(session)
        return session

    def screenshots(self) -> list[Path]:
        saved = []
        for n, session in enumerate(self.sessions):
            path = self.shots / f"failure-session-{n}.png"
            try:
                session.page.screenshot(path=str(path), full_page=True)
            except Exception as exc:  # noqa: BLE001 - a screenshot is best-effort evidence, never the failure itself
                print(f"no screenshot of session {n}: {exc}")
            else:
                saved.append(path)
        return saved

    def close(self) -> None:
        for session in self.sessions:
            session.context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"aion_report_{report.when}", report)
    return report


@pytest.fixture()
def chromium_browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    """A fresh Chromium per test (Playwright's launch() gives it a new empty profile dir).

    Not session-scoped on purpose: while Playwright's sync API runs, its event loop is the thread's running loop,
    which would break ``async_to_sync`` in every later test of the run, and makes Django refuse ORM calls from
    the test body unless DJANGO_ALLOW_ASYNC_UNSAFE is set (here, for this test only)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        service_missing("playwright", f"the Python package is not installed ({exc}); see requirements-dev.txt")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        service_missing("Chromium", f"{CHROMIUM} does not exist (apt-get install chromium)")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def collected_static() -> None:
    """The served process serves STATIC_ROOT (this run's var dir) through WhiteNoise, as the image does after collectstatic."""
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture()
def console_browser(
    request: pytest.FixtureRequest, chromium_browser: Browser, collected_static: None, transactional_db: None, tmp_path: Path
) -> Iterator[ConsoleBrowser]:
    """A served instance of the product on the test database and a browser session on it (see the module docstring)."""
    from playwright.sync_api import expect

    from aion.testing.processes import serve, stop

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    instance = serve(tmp_path)
    console = ConsoleBrowser(chromium_browser, instance, tmp_path)
    try:
        yield console
        report = getattr(request.node, "aion_report_call", None)
        if report is not None and report.failed:
            shots = console.screenshots()
            print(f"browser screenshots: {[str(p) for p in shots]}\nserver log tail:\n{instance.log()[-3000:]}")
        errors = [error for session in console.sessions for error in session.errors]
        if errors:
            console.screenshots()
            pytest.fail("the page raised JavaScript errors:\n" + "\n".join(errors))
        if report is not None and report.passed:
            for session in console.sessions:
                session.check_loaded_pages()
        violations = [v for session in console.sessions for v in session.accessibility]
        if violations:
            console.screenshots()
            pytest.fail("axe-core found serious or critical accessibility violations:\n" + "\n".join(violations))
        print(f"axe-core: {sum(s.axe_seconds for s in console.sessions):.1f} s over {sum(s.axe_runs for s in console.sessions)} checks")
    finally:
        console.close()
        stop(instance.process)
