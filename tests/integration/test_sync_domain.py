"""Pure rules of sync and stock: lag vs idle vs stuck, alert moves, record verdicts, stock verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration

from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import stock_pb2 as st
from salesops.integration.v1 import sync_pb2 as s
from services.integration.domain import stock
from services.integration.domain import sync as rules

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def progress(**kw: Any) -> rules.Progress:
    base: dict[str, Any] = {
        "created_at": NOW - timedelta(days=30),
        "complete_until": NOW - timedelta(minutes=10),
        "completed_once": True,
        "source_exhausted": True,
        "last_fetched": 0,
        "last_progress": False,
        "consecutive_failures": 0,
        "last_error": "",
    }
    return rules.Progress(**{**base, **kw})


def test_status_tells_idle_from_caught_up_behind_stuck_and_never_run() -> None:
    assert rules.status(progress())[0] is rules.Status.IDLE
    assert rules.status(progress(last_fetched=3, last_progress=True))[0] is rules.Status.CAUGHT_UP
    assert rules.status(progress(source_exhausted=False, last_progress=True))[0] is rules.Status.BEHIND
    stuck, why = rules.status(progress(source_exhausted=False, last_progress=False, last_fetched=100))
    assert stuck is rules.Status.STUCK and "no progress" in why
    failing, why = rules.status(progress(consecutive_failures=3, last_error="the source answered HTTP 503"))
    assert failing is rules.Status.STUCK and why.startswith("the last 3 runs in a row failed")
    assert rules.status(progress(completed_once=False, complete_until=None))[0] is rules.Status.NEVER_RUN


def test_lag_counts_from_complete_until_or_the_jobs_creation() -> None:
    assert rules.lag(progress(), NOW) == timedelta(minutes=10)
    assert rules.lag(progress(complete_until=None, created_at=NOW - timedelta(hours=30)), NOW) == timedelta(
        hours=30
    )
    naive = (NOW - timedelta(hours=2)).replace(tzinfo=None)  # SQLite hands back naive UTC
    assert rules.lag(progress(complete_until=naive), NOW) == timedelta(hours=2)
    assert rules.lag(progress(complete_until=NOW + timedelta(minutes=1)), NOW) == timedelta(0)


def test_alert_moves_open_keep_and_resolve_at_the_threshold() -> None:
    day = rules.DEFAULT_THRESHOLD
    assert rules.alert_move(day, day, False) is rules.AlertMove.NONE  # at the threshold: not over it
    assert rules.alert_move(day + timedelta(seconds=1), day, False) is rules.AlertMove.OPEN
    assert rules.alert_move(day * 2, day, True) is rules.AlertMove.KEEP
    assert rules.alert_move(timedelta(minutes=5), day, True) is rules.AlertMove.RESOLVE
    assert rules.threshold_of(0) == day and rules.threshold_of(7200) == timedelta(hours=2)


def test_record_verdicts_and_the_cursor() -> None:
    assert rules.compare(None, False, NOW).outcome == "created"
    assert rules.compare(NOW, True, NOW + timedelta(seconds=1)).outcome == "updated"
    assert rules.compare(NOW, True, NOW).outcome == "unchanged"
    assert rules.compare(NOW, True, NOW - timedelta(days=1)).outcome == "unchanged"  # an older version
    cursor = rules.Cursor("2026-12-01T08:00:00Z", "PAY-1")
    assert rules.Cursor.decode(cursor.encode()) == cursor and rules.Cursor().encode() == ""


def test_what_a_connector_kind_can_sync_and_schedules() -> None:
    assert rules.kind_problem(c.CONNECTOR_KIND_FINANCE, s.SYNC_DATA_KIND_PAYMENTS) == ""
    assert rules.kind_problem(c.CONNECTOR_KIND_FINANCE, s.SYNC_DATA_KIND_STOCK)
    assert rules.kind_problem(c.CONNECTOR_KIND_ERP, s.SYNC_DATA_KIND_CONVERSATIONS)
    assert rules.kind_problem(c.CONNECTOR_KIND_MESSAGING, s.SYNC_DATA_KIND_CONTRACTS)
    assert rules.schedule_problem(s.SyncSchedule(interval=Duration(seconds=300))) is None
    assert rules.schedule_problem(s.SyncSchedule(interval=Duration(seconds=60)))
    assert rules.schedule_problem(s.SyncSchedule(cron="0 */2 * * *")) is None
    assert rules.schedule_problem(s.SyncSchedule(cron="every hour"))
    assert rules.schedule_problem(s.SyncSchedule())


ITEM = {
    "sku": "A",
    "name": "Pump",
    "unit": "pcs",
    "warehouses": [{"code": "SH", "name": "Shanghai", "available": 3}, {"code": "BJ", "available": 2}],
    "incoming": [{"date": "2026-12-20", "quantity": 4}, {"date": "2026-12-10", "quantity": 2}],
    "substitutes": [
        {"sku": "B", "reason": "same_family"},
        {"sku": "C", "reason": "erp_defined", "price_delta_minor": 500},
        {"sku": "D", "reason": "successor"},
        {"sku": "E", "reason": "erp_defined"},
    ],
    "currency": "CNY",
}
SUBS = {
    "B": {"sku": "B", "name": "Pump B", "warehouses": [{"code": "SH", "available": 50}]},
    "C": {"sku": "C", "name": "Pump C", "warehouses": [{"code": "SH", "available": 1}]},
    "D": {"sku": "D", "name": "Pump D", "warehouses": [{"code": "SH", "available": 9}]},
    "E": {
        "sku": "E",
        "name": "Pump E",
        "status": "discontinued",
        "warehouses": [{"code": "SH", "available": 9}],
    },
}


def test_stock_verdicts_restock_dates_and_substitutes_best_first() -> None:
    line = st.StockCheckLine(sku="A", quantity=9)
    out = stock.assess(line, ITEM, SUBS, [], 3)
    assert out.status == st.STOCK_STATUS_PARTIAL and out.available_quantity == 5
    # 4 missing: the 10th brings 2, the 20th 4 more -> covered on the 20th.
    assert (out.restock_date.month, out.restock_date.day) == (12, 20)
    # Covering the whole line first (D successor, B family), then C (short); E discontinued is never offered.
    assert [x.sku for x in out.substitutes] == ["D", "B", "C"]
    assert out.substitutes[2].unit_price_delta.amount_minor == 500
    assert (
        stock.assess(st.StockCheckLine(sku="A", quantity=5), ITEM, SUBS, [], 3).status
        == st.STOCK_STATUS_AVAILABLE
    )
    only_bj = stock.assess(st.StockCheckLine(sku="A", quantity=3), ITEM, SUBS, ["BJ"], 1)
    # Substitutes count only in the warehouses considered (they are all in SH).
    assert only_bj.available_quantity == 2 and list(only_bj.substitutes) == []
    empty = {**ITEM, "warehouses": [], "incoming": []}
    none = stock.assess(st.StockCheckLine(sku="A", quantity=1), empty, SUBS, [], 3)
    assert none.status == st.STOCK_STATUS_OUT_OF_STOCK and not none.HasField("restock_date")
    assert (
        stock.assess(st.StockCheckLine(sku="Z", quantity=1), None, SUBS, [], 3).status
        == st.STOCK_STATUS_UNKNOWN_SKU
    )
    assert stock.substitute_skus({"A": ITEM}) == ["B", "C", "D", "E"]
