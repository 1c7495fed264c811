"""Browser tests: the console in Debian's Chromium (driven by Playwright) against the real stack.

The stack is started once per worker for this package's tests, exactly as `make run` starts it (the
launcher on free ports with its own var/), the console built by it. Chromium is `/usr/bin/chromium` (`apt-get install -y
chromium`; `.ci/run` installs it and sets SALESOPS_TEST_REQUIRE_BROWSER=1 so a missing browser
fails there); without it these tests skip, saying so. Playwright's own browser download is never
used. Screenshots go to build/test-artifacts/web/.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_local_stack import _start, _stop, _wait_ready
from tests.web import diagnostics

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts" / "web"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}

# Test modules here mark themselves `pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web")]`
# (a conftest's marks are not inherited): one worker starts the stack once for all of them.


# The first browser test on a worker also starts the stack (minutes on a loaded machine): every
# browser test gets room for that; the stack's own wait below is the tighter bound.
BROWSER_TEST_TIMEOUT = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if item.path.resolve().parent == here and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(BROWSER_TEST_TIMEOUT))


def chromium_path() -> str | None:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    return found


def _need(reason: str) -> None:
    if os.environ.get("SALESOPS_TEST_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required here (SALESOPS_TEST_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


@dataclass
class Stack:
    gateway: str
    tokens: dict[str, str]
    services: dict[str, str]
    logs: Path  # the launcher's var/logs: what a failed test reports (tests.web.diagnostics)

    @property
    def app(self) -> str:
        return f"{self.gateway}/app/"


# Per package, not per session: the stack stops once this worker's last browser test ran (the web
# xdist group runs them back to back), instead of idling, a fifth of a core, until the run ends.
@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if chromium_path() is None:
        _need("no Chromium at /usr/bin/chromium (apt-get install -y chromium)")
    if shutil.which("node") is None:
        _need("no Node.js to build the console (web/ needs Node.js 20.19+)")
    base = tmp_path_factory.mktemp("web-stack")
    tokens_file = base / "tokens.json"
    proc = _start(base / "var", tokens_file, history=True)  # the dashboards show the demo history
    try:
        out, _took = _wait_ready(proc, timeout=600)  # the first start builds the console (npm ci)
        assert "console" in out and "NOT BUILT" not in out, out
        info = json.loads(tokens_file.read_text())
        yield Stack(info["gateway"], info["tokens"], info["services"], base / "var" / "logs")
    finally:
        _stop(proc) if proc.poll() is None else None


# Per module, not per session: Playwright's sync API keeps an event loop running in this thread
# while it lives, and the asyncio tests this worker runs after the browser tests need none.
@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(autouse=True)
def _browser_diagnostics(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test's browser contexts are watched from its start (see `pytest_runtest_makereport`)."""
    diagnostics.reset()
    request.node.stash[_STARTED] = time.time()
    yield


_STARTED = pytest.StashKey[float]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed browser test also reports what its browser and the stack saw (tests.web.diagnostics)."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    stack = getattr(item, "funcargs", {}).get("stack")
    if report.when == "call" and report.failed and isinstance(stack, Stack):
        since = item.stash.get(_STARTED, time.time() - 60)
        try:
            text = diagnostics.report(stack.gateway, stack.logs, since)
        except Exception as exc:  # a report that fails must not end the worker's session
            text = f"(the report itself failed: {exc!r})"
        report.sections.append(("browser and stack", text))


def new_page(browser: Any, *, phone: bool = True, locale: str = "zh-CN", axe: bool = False) -> Any:
    """A fresh browser context (no shared storage) and its page.

    `axe`: the page may inject axe-core (an inline script the console's CSP refuses, rightly);
    other pages run under the real CSP, and a violation of it is a console error the tests see.
    """
    context = browser.new_context(
        bypass_csp=axe,
        viewport=PHONE if phone else DESKTOP,
        is_mobile=phone,
        has_touch=phone,
        locale=locale,
        service_workers="allow",
    )
    context.set_default_timeout(30_000)
    diagnostics.watch(context, f"{'phone' if phone else 'desktop'} {locale}")
    return context.new_page()


def sign_in(page: Any, stack: Stack, user_id: str) -> None:
    """Sign in through the console's "sign in as" page, as a person would."""
    page.goto(stack.app)
    page.locator(f'button[data-user="{user_id}"]').click()
    page.locator("header.topbar").wait_for()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """axe-core's violations of the page as it is now, of the given impacts."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in impacts]
