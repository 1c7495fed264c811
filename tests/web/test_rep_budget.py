"""The rep's budget: the worklist interactive in under 2 s with Chromium's CPU at 1/4 speed.

Measured in the page, not by the test's round trips: an init script notes (MutationObserver) when
the first worklist row, or the sign-in page's first user button, is in the document, in ms from
navigation start. The sign-in page (same shell, same JavaScript, one anonymous call) is the
baseline, loaded alternately with the worklist under the same throttling: the figures are written
with their ratio and the load average to build/test-artifacts/web/rep-budgets.json, and the report
quotes those. The machine running the tests is shared and loaded, so the absolute time is asserted
with a wide margin; what must hold exactly is the shape: the list is asked for as the app starts
(app/early.ts), not after React's first render.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

import pytest

from tests.web.conftest import ARTIFACTS, Stack, new_page, sign_in
from tests.web.rep_api import a_lead_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web"), pytest.mark.timeout(900)]

INTERACTIVE_BUDGET_MS = 2000
ASSERTED_MS = 3 * INTERACTIVE_BUDGET_MS
ROUNDS = 7
# The list request starts in the same task as the app's first line (app:start): a few ms, not the
# hundreds a request from the worklist's effect (after React's first render) starts later.
EARLY_START_MS = 100

OBSERVE = """
(() => {
  const want = 'li.lead-row, button[data-user]';
  const seen = () => {
    if (window.__firstRowMs === undefined && document.querySelector(want)) {
      window.__firstRowMs = performance.now();
      observer.disconnect();
    }
  };
  const observer = new MutationObserver(seen);
  observer.observe(document, { childList: true, subtree: true });
})();
"""

FIGURES = """() => {
  const mark = (name) => performance.getEntriesByName(name)[0]?.startTime ?? null;
  const list = performance.getEntriesByType('resource').find((r) => r.name.includes('/v1/leads?filter.ownerUserIds=me'));
  return {
    firstRowMs: window.__firstRowMs,
    appStartMs: mark('app:start'),
    rowsMarkMs: mark('worklist:rows'),
    listStartMs: list ? list.startTime : null,
    listEndMs: list ? list.responseEnd : null,
  };
}"""


def _load(page: Any, url: str, selector: str) -> dict[str, Any]:
    """One navigation with the CPU at 1/4 speed: the in-page figures once `selector` shows."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
    try:
        page.goto(url)
        page.locator(selector).first.wait_for(state="visible")
        page.wait_for_function("() => window.__firstRowMs !== undefined")
        figures: dict[str, Any] = page.evaluate(FIGURES)
    finally:
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
        cdp.detach()
    return figures


def _load_average() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def test_the_worklist_is_interactive_within_budget_at_a_4x_cpu_slowdown(browser: Any, stack: Stack) -> None:
    hot = a_lead_for(stack, "rep-a1", "Budget Fasteners Co.")
    page = new_page(browser)
    page.context.add_init_script(OBSERVE)
    sign_in(page, stack, "rep-a1")
    row = f'li.lead-row[data-lead="{hot["leadId"]}"]'
    page.goto(f"{stack.app}worklist")
    page.locator(row).wait_for()
    # Warm, as a rep's phone is: the service worker controls the page and holds the shell.
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=60_000)
    token = page.evaluate("localStorage.getItem('salesops.token')")

    load_before = _load_average()
    baseline: list[dict[str, Any]] = []
    worklist: list[dict[str, Any]] = []
    for _ in range(ROUNDS):
        page.evaluate("localStorage.removeItem('salesops.token')")
        baseline.append(_load(page, stack.app, "button[data-user]"))
        page.evaluate("t => localStorage.setItem('salesops.token', t)", token)
        worklist.append(_load(page, f"{stack.app}worklist", row))
    load_after = _load_average()

    base_ms = statistics.median(f["firstRowMs"] for f in baseline)
    rows_ms = statistics.median(f["firstRowMs"] for f in worklist)
    early = [f["listStartMs"] - f["appStartMs"] for f in worklist if f["listStartMs"] is not None]
    figures = {
        "budgetMs": INTERACTIVE_BUDGET_MS,
        "cpuThrottling": 4,
        "worklistRowsMedianMs": round(rows_ms),
        "signInBaselineMedianMs": round(base_ms),
        "ratioToBaseline": round(rows_ms / base_ms, 2),
        "worklistRunsMs": [round(f["firstRowMs"]) for f in worklist],
        "baselineRunsMs": [round(f["firstRowMs"]) for f in baseline],
        "listRequestAfterAppStartMs": [round(x) for x in early],
        "worklistRuns": worklist,
        "loadAverage": {"before": load_before, "after": load_after},
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "rep-budgets.json").write_text(json.dumps(figures, indent=1))

    assert len(early) == ROUNDS, worklist  # every worklist load asked for the list itself
    assert statistics.median(early) < EARLY_START_MS, figures
    assert all(f["rowsMarkMs"] is not None for f in worklist), worklist
    assert rows_ms < ASSERTED_MS, figures
    page.context.close()
