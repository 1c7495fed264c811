"""Scheduled sync on a real database against a loopback ERP that pages by updated_since:
the cursor moves only with durable events, lag vs idle vs stuck, lag alerts raised and cleared,
explanations, and the run workflow on Temporal's time-skipping server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.struct_pb2 import Struct
from sqlalchemy import select
from temporalio.worker import Worker

from deploy.local.infra import free_port
from kit.auth import Principal
from kit.db import Database
from kit.errors import NotFound
from kit.migrations import upgrade_to_head
from kit.net import OutboundPolicy, SafeClient
from kit.resources import Transactions
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import sync_pb2 as s
from services.integration import connectors, demo_erp, links, sync_alerts, sync_jobs
from services.integration.domain import sync as rules
from services.integration.repositories.sync import SyncJobs, SyncRuns
from services.integration.store import outbox, transactions
from services.integration.store_sync import SyncLagAlertRow
from services.integration.sync_activities import SyncActivities, drive
from services.integration.sync_workflows import SyncInput, SyncJobRunWorkflow

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ADMIN = Principal("admin", "demo", frozenset({"admin"}), "", datetime.max.replace(tzinfo=UTC))
OPS = Principal("ops-li", "demo", frozenset({"rep"}), "", datetime.max.replace(tzinfo=UTC))


@dataclass
class Clock:
    at: datetime = T0

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Env:
    db: Database
    tx: Transactions
    erp: demo_erp.ErpData
    client: SafeClient
    clock: Clock

    async def run(self, job: str = "job-pay") -> s.SyncRun:
        out = await drive(self.tx, self.client, SyncInput("demo", job, s.SYNC_TRIGGER_MANUAL), self.clock)
        async with self.tx.read("demo") as uow:
            run = await SyncRuns(uow).get(out.run_id)
            return s.SyncRun(run_id=run.run_id, state=run.state, records_fetched=run.fetched)  # type: ignore[arg-type]

    async def job(self, job: str = "job-pay") -> s.SyncJob:
        from services.integration.sync_presenters import SyncJobPresenter

        async with self.tx.read("demo") as uow:
            row = await SyncJobs(uow).get(job)
        return SyncJobPresenter().present(ADMIN, row, self.clock())

    async def events(self, kind: str = "") -> list[str]:
        async with self.db.system_session() as session:
            types = list(await session.scalars(select(outbox.c.type)))
        return [t for t in types if not kind or t == kind]


async def _setup(
    tx: Transactions, base_url: str, clock: Clock, kind: int = s.SYNC_DATA_KIND_PAYMENTS
) -> None:
    settings = Struct()
    settings.update({"base_url": base_url})
    conn = c.Connector(
        connector_id="erp-1",
        display_name="ERP east",
        kind=c.CONNECTOR_KIND_ERP,
        provider="erp_http",
        settings=settings,
        secrets={"api_key": "the-api-key"},
        owner_user_id="ops-li",
    )
    await tx.run("demo", lambda uow: connectors.create_connector(uow, ADMIN, conn, clock()))
    await tx.run(
        "demo",
        lambda uow: connectors.set_state(uow, ADMIN, "erp-1", c.CONNECTOR_STATE_ENABLED, "", "", clock()),
    )
    job = s.SyncJob(
        sync_job_id="job-pay" if kind == s.SYNC_DATA_KIND_PAYMENTS else "job-stock",
        connector_id="erp-1",
        data_kind=kind,  # type: ignore[arg-type]
        schedule=s.SyncSchedule(interval=Duration(seconds=3600)),
    )
    await tx.run("demo", lambda uow: sync_jobs.create_sync_job(uow, ADMIN, job, clock()))


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    db = Database(database_url)
    await upgrade_to_head("integration", db)
    tx = transactions(db)
    erp = demo_erp.ErpData(api_key="the-api-key")
    clock = Clock()
    async with demo_erp.serve(erp, free_port()) as url:
        await _setup(tx, url, clock)
        yield Env(db, tx, erp, SafeClient(OutboundPolicy.parse("127.0.0.1")), clock)
    await db.dispose()


def _payments(erp: demo_erp.ErpData, n: int, start: datetime, prefix: str = "PAY") -> None:
    for i in range(n):
        at = start + timedelta(minutes=i)
        erp.add(
            "payments",
            f"{prefix}-{i:03d}",
            at,
            amount_minor=1000 + i,
            currency="CNY",
            occurred_at=demo_erp.iso(at),
        )


async def test_a_failed_read_leaves_the_cursor_and_a_retry_picks_up_everything(env: Env) -> None:
    _payments(env.erp, 5, T0 - timedelta(hours=2))
    env.erp.fail_next = 1
    failed = await env.run()
    assert failed.state == s.SYNC_RUN_STATE_FAILED
    job = await env.job()
    assert job.cursor == "" and job.consecutive_failures == 1
    assert job.status == s.SYNC_JOB_STATUS_STUCK and "HTTP 503" in job.status_reason
    assert await env.events() == []

    env.clock.at += timedelta(minutes=5)
    ok = await env.run()
    assert ok.state == s.SYNC_RUN_STATE_SUCCEEDED and ok.records_fetched == 5
    job = await env.job()
    assert job.cursor.endswith("|PAY-004") and job.status == s.SYNC_JOB_STATUS_CAUGHT_UP
    assert len(await env.events("integration.PaymentReceived")) == 5


async def test_a_page_that_cannot_be_stored_keeps_neither_its_events_nor_the_cursor(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    _payments(env.erp, 3, T0 - timedelta(hours=2))
    calls = 0
    real = links.resolve

    async def flaky(*args: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:  # the third record's mapping fails after two events were staged
            raise RuntimeError("database went away")
        await real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(links, "resolve", flaky)
    run = await env.run()
    assert run.state == s.SYNC_RUN_STATE_FAILED
    job = await env.job()
    assert job.cursor == "" and await env.events() == []  # the two staged events rolled back with the page
    async with env.tx.read("demo") as uow:
        stored = await SyncRuns(uow).get(run.run_id)
    assert stored.cursor_after == "" and "cursor stays" in stored.error_message


async def test_idle_source_is_not_lag_but_failing_runs_are_stuck_and_alert_until_caught_up(env: Env) -> None:
    # Records ten days old: the source has been quiet since.
    _payments(env.erp, 2, T0 - timedelta(days=10))
    assert (await env.run()).state == s.SYNC_RUN_STATE_SUCCEEDED
    env.clock.at += timedelta(hours=30)
    assert (await env.run()).records_fetched == 0
    job = await env.job()
    assert job.status == s.SYNC_JOB_STATUS_IDLE
    assert job.lag.ToTimedelta() == timedelta(0)  # complete up to this run, however old the newest record
    assert job.newest_record_time.ToDatetime(tzinfo=UTC) < T0 - timedelta(days=9)
    assert job.open_lag_alert_id == ""

    # The source goes down: runs fail, the lag grows past 24 h, an alert asks the connector's owner.
    env.erp.fail_next = 100
    env.clock.at += timedelta(hours=12)
    await env.run()
    assert (await env.job()).open_lag_alert_id == ""  # 12 h behind: under the threshold
    env.clock.at += timedelta(hours=13)
    await env.run()
    job = await env.job()
    assert job.status == s.SYNC_JOB_STATUS_STUCK and job.consecutive_failures == 2
    assert job.lag.ToTimedelta() == timedelta(hours=25)
    alert_id = job.open_lag_alert_id
    assert alert_id and await env.events("integration.SyncLagDetected") == ["integration.SyncLagDetected"]
    env.clock.at += timedelta(hours=5)
    await env.run()  # still failing: the same alert, its max lag grows
    async with env.tx.read("demo") as uow:
        alert = await uow.session.get(SyncLagAlertRow, ("demo", alert_id))
        assert alert is not None and alert.max_lag_seconds == 30 * 3600
        assert alert.status_at_detection == s.SYNC_JOB_STATUS_STUCK

    # The owner explains; another user is not asked (NOT_FOUND: nothing to learn).
    why = s.LagExplanation(reason=s.LAG_REASON_SOURCE_OUTAGE, text="ERP 机房断电")
    explained = await env.tx.run(
        "demo", lambda uow: sync_alerts.explain(uow, OPS, alert_id, why, env.clock())
    )
    assert explained.state == s.LAG_ALERT_STATE_EXPLAINED
    stranger = Principal("rep-wang", "demo", frozenset({"rep"}), "", datetime.max.replace(tzinfo=UTC))
    with pytest.raises(NotFound):
        await env.tx.run("demo", lambda uow: sync_alerts.explain(uow, stranger, alert_id, why, env.clock()))

    # The source is back: caught up, the alert resolves, SyncRecovered goes out.
    env.erp.fail_next = 0
    env.clock.at += timedelta(hours=1)
    assert (await env.run()).state == s.SYNC_RUN_STATE_SUCCEEDED
    job = await env.job()
    assert job.open_lag_alert_id == "" and job.status == s.SYNC_JOB_STATUS_IDLE
    assert await env.events("integration.SyncRecovered") == ["integration.SyncRecovered"]
    async with env.tx.read("demo") as uow:
        alert = await uow.session.get(SyncLagAlertRow, ("demo", alert_id))
        assert alert is not None and alert.state == s.LAG_ALERT_STATE_RESOLVED


async def test_a_source_with_more_than_a_run_reads_is_behind_and_lag_is_its_newest_record(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "MAX_PAGES", 1)
    monkeypatch.setattr(rules, "PAGE_SIZE", 2)
    _payments(env.erp, 5, T0 - timedelta(hours=48))
    await env.run()
    job = await env.job()
    assert job.status == s.SYNC_JOB_STATUS_BEHIND
    # Complete up to the newest record synced (the second one): 48 h - 1 min behind, alerting.
    assert job.lag.ToTimedelta() == timedelta(hours=48) - timedelta(minutes=1)
    assert job.open_lag_alert_id
    for _ in range(2):
        await env.run()
    job = await env.job()
    assert job.status == s.SYNC_JOB_STATUS_CAUGHT_UP and job.open_lag_alert_id == ""
    assert len(await env.events("integration.PaymentReceived")) == 5
    # An update at the source is an update, not a duplicate; the same version is unchanged.
    env.erp.add("payments", "PAY-001", T0 + timedelta(minutes=1), amount_minor=5, currency="CNY")
    env.clock.at += timedelta(minutes=5)
    await env.run()
    assert len(await env.events("integration.PaymentReceived")) == 6


async def test_the_run_workflow_on_the_time_skipping_server(env: Env, temporal_skipping) -> None:  # type: ignore[no-untyped-def]
    _payments(env.erp, 3, T0 - timedelta(hours=1))
    queue = f"sync-{uuid.uuid4().hex[:8]}"
    acts = SyncActivities(env.db)
    acts._client = env.client
    async with Worker(
        temporal_skipping.client, task_queue=queue, workflows=[SyncJobRunWorkflow], activities=acts.all()
    ):
        out = await temporal_skipping.client.execute_workflow(
            SyncJobRunWorkflow.run,
            SyncInput("demo", "job-pay", s.SYNC_TRIGGER_SCHEDULE),
            id=f"sync-{uuid.uuid4().hex}",
            task_queue=queue,
        )
    assert out.state == s.SYNC_RUN_STATE_SUCCEEDED and out.fetched == 3
    # Disabled connector: a scheduled run does nothing.
    await env.tx.run(
        "demo", lambda uow: connectors.set_state(uow, ADMIN, "erp-1", c.CONNECTOR_STATE_DISABLED, "", "", T0)
    )
    skipped = await drive(env.tx, env.client, SyncInput("demo", "job-pay", s.SYNC_TRIGGER_SCHEDULE))
    assert skipped.run_id == "" and "disabled" in skipped.skipped


def test_notify_turns_a_lag_alert_into_an_inbox_item_and_recovery_resolves_it() -> None:
    from kit.events import new_envelope
    from salesops.integration.v1 import events_pb2 as ev
    from salesops.notify.v1 import notification_pb2 as n
    from services.notify import consumers

    detected = ev.SyncLagDetected(
        alert_id="A1",
        sync_job_id="job-pay",
        connector_id="erp-1",
        data_kind=s.SYNC_DATA_KIND_PAYMENTS,
        lag=Duration(seconds=25 * 3600),
        threshold=Duration(seconds=24 * 3600),
        requested_user_ids=["ops-li"],
    )
    [item] = consumers.translate(
        new_envelope("integration.SyncLagDetected", "demo", detected, source="integration")
    )
    assert item.category == n.NOTIFICATION_CATEGORY_SYNC_LAG
    assert [r.user_id for r in item.recipients] == ["ops-li"] and item.subject.id == "A1"
    assert "25 h behind" in str(item.template.variables["title"])
    recovered = ev.SyncRecovered(alert_id="A1", sync_job_id="job-pay")
    [resolve] = consumers.resolutions(
        new_envelope("integration.SyncRecovered", "demo", recovered, source="integration")
    )
    assert (resolve.kind, resolve.id, resolve.categories) == ("sync_lag_alert", "A1", ("sync_lag",))


async def test_one_run_per_job_at_a_time_and_an_abandoned_run_gives_way(env: Env) -> None:
    from services.integration import sync_runs

    def begin(at: datetime) -> Any:
        return env.tx.run(
            "demo", lambda uow: sync_runs.begin(uow, "job-pay", s.SYNC_TRIGGER_MANUAL, "admin", at)
        )

    first, plan = await begin(T0)
    again, second = await begin(T0 + timedelta(minutes=1))
    assert plan.new and not second.new and again.run_id == first.run_id  # RunSyncJob returns the running one
    later, third = await begin(T0 + rules.ABANDONED_AFTER + timedelta(minutes=1))
    assert third.new and later.run_id != first.run_id
    async with env.tx.read("demo") as uow:
        old = await SyncRuns(uow).get(first.run_id)
    assert old.state == s.SYNC_RUN_STATE_FAILED and "abandoned" in old.error_message
