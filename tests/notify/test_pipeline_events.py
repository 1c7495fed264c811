"""Pipeline's discipline, health and reconciliation events become inbox items for the right people.

End to end: the freeze and the dwell flag are made by pipeline's own use cases into
pipeline's outbox, its relay publishes them to the stream, notify's consumer group
reads them (real SQLite, Redis Streams). The anomaly and reconciliation events go the
same way from a producer outbox.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask
from google.type import date_pb2  # type: ignore[import-untyped]

from kit.auth import Principal
from kit.db import Database
from kit.events import OutboxRelay, new_envelope, service_stream
from kit.migrations import upgrade_to_head
from kit.runtime import build_consumer
from salesops.common.v1.types_pb2 import Money
from salesops.notify.v1 import inbox_pb2
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from salesops.pipeline.v1 import events_pb2 as pipeline_events
from salesops.pipeline.v1 import process_health_pb2, reconciliation_pb2, settings_pb2, types_pb2
from services.notify import consumers
from services.notify.app import SPEC
from services.pipeline import deals, discipline, members, stage_models
from services.pipeline import store as pipeline_store
from tests.notify.conftest import REP_A1, SUP_A, TENANT, NotifyStack, auth
from tests.notify.test_event_consumption import _publish, _wait_items
from tests.pipeline.helpers import new_deal

FAR = datetime(2100, 1, 1, tzinfo=UTC)
ADMIN = Principal("admin", TENANT, frozenset({"admin"}), "", FAR)
REP = Principal("rep-a1", TENANT, frozenset({"rep"}), "east/team-a", FAR)


async def _pipeline_freezes_and_flags(tmp_path: Path, redis: Any) -> None:
    """A deal missed its weekly window and outstayed a 2-day limit: pipeline's own code emits both."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'pipeline.db'}")
    await upgrade_to_head("pipeline", db)
    tx = pipeline_store.transactions(db)
    profile = settings_pb2.MemberProfile(
        user_id="rep-a1", display_name="A1", org_path="east/team-a", manager_user_id="sup-a", active=True
    )
    await tx.run(
        TENANT, lambda uow: members.update_profile(uow, ADMIN, profile, FieldMask(), True, datetime.now(UTC))
    )

    async def limit(uow: Any) -> None:
        model = await stage_models.current(uow)
        model.stages[0].dwell_limit.CopyFrom(
            types_pb2.TimeLimit(value=2, unit=types_pb2.TIME_UNIT_CALENDAR_DAYS)
        )
        await stage_models.update(uow, model, FieldMask(paths=["stages"]), "admin", {}, {})

    await tx.run(TENANT, limit)
    created = datetime(2026, 11, 2, 3, tzinfo=UTC)  # Monday
    await tx.run(TENANT, lambda uow: deals.create_deal(uow, REP, new_deal("D7"), created))
    deadline = datetime(2026, 11, 13, 10, tzinfo=UTC)  # the second Friday 18:00 Shanghai after it
    assert await tx.run(TENANT, lambda uow: discipline.freeze_overdue(uow, deadline)) == 1
    assert await tx.run(TENANT, lambda uow: discipline.flag_dwell(uow, deadline)) == 1
    relay = OutboxRelay(
        db, redis, service_stream("pipeline"), table=pipeline_store.outbox, poll_interval=0.05
    )
    task = asyncio.create_task(relay.run())
    for _ in range(300):
        if relay.published >= 4:  # DealCreated, DealFrozen, DealDwellExceeded (+ settings-free model)
            break
        await asyncio.sleep(0.02)
    await relay.stop()
    await task
    await db.dispose()


def inbox(notify: NotifyStack) -> Any:
    """The notify stub, untyped: the generated aio stubs type calls as plain responses."""
    return notify.stub


def _anomaly() -> pipeline_events.ProcessAnomalyDetected:
    value = process_health_pb2.ProcessMetricValue(
        metric=process_health_pb2.PROCESS_METRIC_WIN_RATE,
        value=0.1,
        baseline_mean=0.3,
        baseline_stddev=0.05,
        lower_bound=0.2,
        upper_bound=0.4,
        baseline_periods=8,
        anomalous=True,
        direction=process_health_pb2.ANOMALY_DIRECTION_BELOW,
        higher_is_better=True,
    )
    e = pipeline_events.ProcessAnomalyDetected(
        anomaly_id="AN1",
        org_path="east/team-a",
        manager_user_id="sup-a",
        value=value,
        z_score=-4.0,
        adverse=True,
    )
    e.period.start_date.CopyFrom(date_pb2.Date(year=2026, month=11, day=23))
    return e


def _issue() -> pipeline_events.ReconciliationIssueRaised:
    return pipeline_events.ReconciliationIssueRaised(
        issue_id="RI1",
        kind=reconciliation_pb2.RECONCILIATION_ISSUE_KIND_PAID_AMOUNT_MISMATCH,
        deal_id="D9",
        deal_title="Plant upgrade",
        owner_user_id="rep-a1",
        supervisor_user_id="sup-a",
        expected_amount=Money(amount_minor=1_000_000, currency="CNY"),
        actual_amount=Money(amount_minor=900_000, currency="CNY"),
    )


async def test_discipline_health_and_reconciliation_events_reach_their_people(
    notify: NotifyStack, tmp_path: Path
) -> None:
    consumer = build_consumer(notify.rt, SPEC, consumers.CONSUMER, block=0.05)
    task = asyncio.create_task(consumer.run())
    try:
        await _pipeline_freezes_and_flags(tmp_path, notify.rt.redis)
        # rep: frozen + dwell; sup-a: frozen + dwell
        assert await _wait_items(notify, 4) == 4
        events: list[tuple[str, object]] = [
            ("pipeline.ProcessAnomalyDetected", _anomaly()),
            ("pipeline.ProcessAnomalyDetected", _anomaly()),  # re-emitted: one item
            ("pipeline.ReconciliationIssueRaised", _issue()),
        ]
        await _publish(tmp_path, notify.rt.redis, "pipeline", events)
        assert await _wait_items(notify, 6) == 6
    finally:
        await consumer.stop()
        await task

    rep = (await inbox(notify).ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(REP_A1))).items
    sup = (await inbox(notify).ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(SUP_A))).items

    def kinds(items: Any) -> list[tuple[str, str]]:
        return sorted((N.NotificationCategory.Name(i.category), i.subject.id) for i in items)

    assert kinds(rep) == [
        ("NOTIFICATION_CATEGORY_ANOMALY", "RI1"),
        ("NOTIFICATION_CATEGORY_DWELL_ALERT", "D7"),
        ("NOTIFICATION_CATEGORY_FROZEN_DEAL", "D7"),
    ]
    assert kinds(sup) == [
        ("NOTIFICATION_CATEGORY_ANOMALY", "AN1"),
        ("NOTIFICATION_CATEGORY_DWELL_ALERT", "D7"),
        ("NOTIFICATION_CATEGORY_FROZEN_DEAL", "D7"),
    ]
    dwell = next(i for i in rep if i.category == N.NOTIFICATION_CATEGORY_DWELL_ALERT)
    assert "initial_contact" in dwell.body and "2" in dwell.body  # the stage and its limit in days
    anomaly = next(i for i in sup if i.category == N.NOTIFICATION_CATEGORY_ANOMALY)
    assert "east/team-a: win rate 0.1" in anomaly.title
    issue = next(i for i in rep if i.category == N.NOTIFICATION_CATEGORY_ANOMALY)
    assert "Plant upgrade: paid amount mismatch" in issue.title
    assert "10,000.00 CNY" in issue.body and "9,000.00 CNY" in issue.body


async def test_an_update_and_a_resolution_resolve_the_open_notices(
    notify: NotifyStack, tmp_path: Path
) -> None:
    deal = pipeline_events.DealContext(
        deal_id="D8", title="Kiln", owner_user_id="rep-a1", supervisor_user_id="sup-a"
    )
    frozen = pipeline_events.DealFrozen(deal=deal)
    frozen.frozen_time.FromDatetime(datetime(2026, 11, 13, 10, tzinfo=UTC))
    consumer = build_consumer(notify.rt, SPEC, consumers.CONSUMER, block=0.05)
    task = asyncio.create_task(consumer.run())
    try:
        await _publish(
            tmp_path,
            notify.rt.redis,
            "pipeline",
            [("pipeline.DealFrozen", frozen), ("pipeline.ReconciliationIssueRaised", _issue())],
        )
        assert await _wait_items(notify, 3) == 3
        thawed = pipeline_events.DealUnfrozen(deal=deal, unfrozen_by="rep-a1")
        thawed.frozen_duration.FromTimedelta(timedelta(hours=3))
        settled = pipeline_events.ReconciliationIssueResolved(
            issue_id="RI1", deal_id="D9", state=reconciliation_pb2.RECONCILIATION_ISSUE_STATE_RESOLVED
        )
        await _publish(
            tmp_path,
            notify.rt.redis,
            "pipeline",
            [("pipeline.DealUnfrozen", thawed), ("pipeline.ReconciliationIssueResolved", settled)],
        )
        for _ in range(300):
            items = (
                await inbox(notify).ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(REP_A1))
            ).items
            if all(i.state == inbox_pb2.INBOX_ITEM_STATE_RESOLVED for i in items):
                break
            await asyncio.sleep(0.02)
    finally:
        await consumer.stop()
        await task
    rep = (await inbox(notify).ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(REP_A1))).items
    assert sorted((i.subject.id, i.state) for i in rep) == [
        ("D8", inbox_pb2.INBOX_ITEM_STATE_RESOLVED),
        ("RI1", inbox_pb2.INBOX_ITEM_STATE_RESOLVED),
    ]
    sup = (await inbox(notify).ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(SUP_A))).items
    assert [(i.subject.id, i.state) for i in sup] == [("D8", inbox_pb2.INBOX_ITEM_STATE_RESOLVED)]


def test_translate_names_the_metric_and_the_money() -> None:
    [n] = consumers.translate(
        new_envelope("pipeline.ProcessAnomalyDetected", TENANT, _anomaly(), source="pipeline")
    )
    assert [r.user_id for r in n.recipients] == ["sup-a"]
    assert n.dedupe_key == "process_anomaly:east/team-a:2026-11-23:WIN_RATE:"
    assert "worse than usual" in str(n.template.variables["message"])
    [r] = consumers.translate(
        new_envelope("pipeline.ReconciliationIssueRaised", TENANT, _issue(), source="pipeline")
    )
    assert [x.user_id for x in r.recipients] == ["rep-a1"] and r.dedupe_key == "reconciliation:RI1"
    assert r.subject.kind == "reconciliation_issue"
