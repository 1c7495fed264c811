"""The managers' dashboards in a desktop Chromium against the real stack: a director sees every
panel drawn from data (canvas painted, table rows), in one or two gateway calls per panel; a
supervisor sees only their team. Screenshots are kept in build/test-artifacts/web."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from ulid import ULID

from tests.web.conftest import ARTIFACTS, Stack, axe_violations, new_page, screenshot, sign_in
from tests.web.rep_api import a_lead_for, call

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web")]

PANELS = (
    "forecast",
    "changes",
    "accuracy",
    "won",
    "funnel",
    "sla",
    "dormant",
    "health",
    "anomalies",
    "approvals",
    "stuck",
    "customer",
)


def _utc_midnight() -> str:
    return time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime())


NOTHING_YET: dict[str, Any] = {
    "dormant": lambda stack: (
        call(stack, "director-east", "GET", "/v1/dormantLeads?pageSize=20&minIdleDays=7")
        .json()
        .get("leads", [])
    ),
    "anomalies": lambda stack: (
        call(
            stack,
            "director-east",
            "GET",
            f"/v1/processAnomalies?pageSize=100&detectTimeAfter={_utc_midnight()}",
        )
        .json()
        .get("anomalies", [])
    ),
    "stuck": lambda stack: (
        call(stack, "director-east", "GET", "/v1/deals?filter.frozen=true&pageSize=1").json().get("deals", [])
        + call(stack, "director-east", "GET", "/v1/deals?filter.dwellExceeded=true&pageSize=1")
        .json()
        .get("deals", [])
    ),
}


def panel_of(url: str) -> str | None:
    """Which dashboard panel a gateway call is for (None: the shell's own calls)."""
    parsed = urlparse(url)
    path, q = parsed.path, parse_qs(parsed.query)
    if path == "/v1/forecast":  # by rep: the won panel's average deal size this month
        return "won" if q.get("groupBy") == ["ORG_LEVEL_REP"] else "forecast"
    if path in ("/v1/forecastSnapshots", "/v1/forecastSnapshots:compare"):
        return "changes"
    if path == "/v1/forecastBias":  # the won panel asks for the weighted basis explicitly
        return "won" if q.get("basis") == ["FORECAST_BASIS_WEIGHTED"] else "accuracy"
    if path == "/v1/forecastAccuracy":
        return "accuracy"
    if path == "/v1/leadMetrics":
        return "sla" if q.get("groupBy") == ["METRICS_DIMENSION_CREATE_DAY"] else "funnel"
    if path == "/v1/dormantLeads":
        return "dormant"
    if path == "/v1/processHealth":
        return "health"
    if path == "/v1/processAnomalies":
        return "anomalies"
    if path == "/v1/approvals":
        return "approvals"
    if path == "/v1/deals":
        return "stuck"
    if path == "/v1/customers" or re.fullmatch(r"/v1/customers/[^/]+:view", path):
        return "customer"
    return None


def wait_for_history(stack: Stack, user: str, limit: float = 420.0) -> None:
    """The demo history is written behind READY ("demo history: ready"): poll until the user's
    forecast bias has six months and snapshots exist, with a generous limit on a busy machine."""
    deadline = time.monotonic() + limit
    while True:
        bias = call(
            stack,
            user,
            "GET",
            "/v1/forecastBias?level=ORG_LEVEL_REP&granularity=PERIOD_GRANULARITY_MONTH&periodCount=6",
        )
        since = time.gmtime(time.time() - 21 * 86400)  # the history is written oldest first
        snaps = call(
            stack,
            user,
            "GET",
            f"/v1/forecastSnapshots?pageSize=10&takeDateFrom.year={since.tm_year}"
            f"&takeDateFrom.month={since.tm_mon}&takeDateFrom.day={since.tm_mday}",
        )
        if bias.status_code == 200 and snaps.status_code == 200:
            months = [len(b.get("history", [])) for b in bias.json().get("biases", [])]
            if months and max(months) >= 3 and len(snaps.json().get("snapshots", [])) >= 2:
                return
        assert time.monotonic() < deadline, f"no demo history after {limit} s: {bias.text[:300]}"
        time.sleep(2)  # polling an external process, not a fixed wait for a result


def an_approval_waiting(stack: Stack) -> None:
    """The demo tenant starts with no approval running: rep-a1 asks for a 20 % discount on an open
    deal (over the 15 % threshold: supervisor, then director), as the approvals page would."""
    deals = call(
        stack,
        "rep-a1",
        "GET",
        "/v1/deals?filter.ownerUserIds=rep-a1&filter.statuses=DEAL_STATUS_OPEN&pageSize=1",
    )
    deal = deals.json()["deals"][0]
    body = {
        "approvalId": str(ULID()),
        "kind": "APPROVAL_KIND_DISCOUNT",
        "dealId": deal["dealId"],
        "title": f"Discount 20% {deal.get('title', '')}",
        "discountBps": 2000,
    }
    deadline = time.monotonic() + 180
    while True:  # a busy machine (the history still being written) may time a call out: same id again
        got = call(stack, "rep-a1", "POST", "/v1/approvals", body)
        if got.status_code in (200, 409):  # 409: it exists (an earlier try) or the flow already runs
            return
        assert got.status_code in (503, 504) and time.monotonic() < deadline, got.text


def open_dashboard(page: Any, stack: Stack, user: str) -> Counter[str]:
    calls: Counter[str] = Counter()
    page.on("request", lambda r: (p := panel_of(r.url)) and calls.update([p]))
    sign_in(page, stack, user)
    page.goto(stack.app + "dashboard")
    page.locator("section.manager h1").wait_for()
    for panel in PANELS:  # every panel settles: drawn, empty, or an error
        page.locator(
            f'[data-panel="{panel}"] canvas, [data-panel="{panel}"] [role=status]:not(:has-text("…")), '
            f'[data-panel="{panel}"] [role=alert]'
        ).first.wait_for(timeout=90_000)
    return calls


def painted(page: Any, panel: str) -> bool:
    """The panel's chart canvas exists and has non-blank pixels."""
    return bool(
        page.evaluate(
            """(panel) => {
                const c = document.querySelector(`[data-panel="${panel}"] canvas`);
                if (!c || !c.width || !c.height) return false;
                const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return true;
                return false;
            }""",
            panel,
        )
    )


def rows(page: Any, panel: str) -> list[str]:
    return [r.inner_text() for r in page.locator(f'[data-panel="{panel}"] table tbody tr').all()]


def test_a_director_sees_every_panel_with_data_in_few_calls(browser: Any, stack: Stack) -> None:
    wait_for_history(stack, "director-east")
    an_approval_waiting(stack)
    for company in ("Wuxi Dashboard Motors", "Suzhou Dashboard Optics"):  # the funnel's and SLA's leads
        a_lead_for(stack, "rep-a2", company)
    page = new_page(browser, phone=False, axe=True)
    calls = open_dashboard(page, stack, "director-east")
    errors = {p: page.locator(f'[data-panel="{p}"] [role=alert]').all_inner_texts() for p in PANELS}
    state = {p: (painted(page, p), len(rows(page, p))) for p in PANELS}
    report = {"calls_per_panel": dict(calls), "painted_and_rows": state, "errors": errors}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "manager-dashboard-calls.json").write_text(json.dumps(report, indent=2))
    screenshot(page, "manager-dashboard-director-desktop")
    print(json.dumps(report, indent=2))
    assert not any(errors.values()), errors
    empty = {p for p, (drawn, n) in state.items() if not (drawn and n)}
    # The demo tenant is days old: no lead idle for a week yet, and anomalies are detected by the
    # weekly schedule. Such a panel may be empty only when the server has nothing for it either.
    assert empty <= set(NOTHING_YET), report
    for p in empty:
        assert page.locator(f'[data-panel="{p}"] [role=status]').inner_text() == "暂无数据"
        assert NOTHING_YET[p](stack) == [], p
    assert all(1 <= calls[p] <= 2 for p in PANELS), calls  # one or two gateway calls, never N+1
    assert axe_violations(page) == []
    page.context.close()


def test_a_supervisor_sees_only_their_team(browser: Any, stack: Stack) -> None:
    wait_for_history(stack, "sup-a")
    page = new_page(browser, phone=False)
    open_dashboard(page, stack, "sup-a")
    reps = " ".join(rows(page, "accuracy") + rows(page, "forecast") + rows(page, "won"))
    print(reps)
    assert reps and not re.search(r"rep-b\d|Rep B\d|team-b|Team B", reps), reps
    screenshot(page, "manager-dashboard-supervisor-desktop")
    page.context.close()
