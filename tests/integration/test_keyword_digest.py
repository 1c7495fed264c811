"""The weekly "top keywords customers raised" digest: the workflow on the time-skipping server makes the
previous week's digests (tenant-wide and per team) once, each announced for notify; managers read their team's."""

# ruff: noqa: RUF001  (Chinese punctuation in transcripts)

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from kit import temporal
from kit.events import EventEnvelope, unpack_payload
from salesops.integration.v1 import events_pb2 as ev
from salesops.integration.v1 import insights_pb2 as i
from salesops.integration.v1 import integration_service_pb2 as pb
from services.integration.domain import keyword_digest as kd
from services.integration.insight_activities import InsightActivities, weekly_schedule
from services.integration.insight_workflows import (
    WORKFLOWS,
    DigestInput,
    Made,
    MakeInput,
    WeeklyKeywordDigestWorkflow,
)
from services.integration.store import outbox
from tests.integration.conftest import Integration
from tests.integration.test_insights_api import DICTIONARY

pytestmark = pytest.mark.timeout(120)
C, R = i.SPEAKER_CUSTOMER, i.SPEAKER_REP


def at(moment: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(moment)
    return out


async def submit(integration: Integration, user: str, when: datetime, *turns: tuple[int, str]) -> None:
    conv = i.Conversation(
        conversation_id=uuid.uuid4().hex,
        deal_id=f"D-{user}",
        channel=i.CONVERSATION_CHANNEL_WECOM,
        start_time=at(when),
        segments=[i.TranscriptSegment(speaker=s, text=t) for s, t in turns],
    )
    await integration.call("SubmitConversation", pb.SubmitConversationRequest(conversation=conv), user)


def test_the_week_is_the_previous_monday_to_sunday_in_the_tenant_zone() -> None:
    # Monday 2026-12-07 00:30 in Shanghai is still Sunday in UTC: the week before is Nov 30 - Dec 6.
    week = kd.previous_week(datetime(2026, 12, 6, 16, 30, tzinfo=UTC))
    assert week.key == "2026-11-30"
    assert week.start == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
    assert week.end - week.start == timedelta(days=7)
    assert week.before().key == "2026-11-23"
    spec = weekly_schedule("demo", "q").spec
    assert spec.time_zone_name == "Asia/Shanghai"
    assert [r.start for r in spec.calendars[0].day_of_week] == [1]  # Monday
    assert [r.start for r in spec.calendars[0].hour] == [8]


async def test_weekly_digest_per_team_once_and_read_by_its_managers(
    integration: Integration, temporal_skipping: WorkflowEnvironment
) -> None:
    for req in DICTIONARY:
        await integration.call("CreateInsightKeyword", req)
    week = kd.previous_week(datetime.now(UTC))
    mid = week.start + timedelta(days=2)
    await submit(
        integration, "rep-a1", mid, (R, "预算多少？"), (C, "预算不多，还要招标。"), (C, "budget is small")
    )
    await submit(integration, "rep-a2", mid, (C, "领导还没批，预算也没定"))
    await submit(integration, "rep-b1", mid, (R, "要招标吗？"), (C, "要招标"))
    # The week before: the trend's base. Our rep's own words never count.
    await submit(integration, "rep-a1", mid - timedelta(days=7), (C, "预算"), (R, "招标 招标 招标"))

    queue = f"insights-{uuid.uuid4().hex[:8]}"
    activities = InsightActivities(integration.db, None)
    worker = temporal.build_worker(
        temporal_skipping.client, queue, workflows=list(WORKFLOWS), activities=list(activities.all())
    )
    async with worker:
        made = await temporal_skipping.client.execute_workflow(
            WeeklyKeywordDigestWorkflow.run,
            DigestInput("demo"),
            id=f"digest-{queue}",
            task_queue=queue,
            result_type=Made,
        )
    assert len(made.digest_ids) == 3
    # A second run for the same week (a retried activity, a re-run schedule) makes nothing new.
    again = await activities.make(MakeInput("demo", datetime.now(UTC).isoformat()))
    assert again.digest_ids == []

    async with integration.db.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(outbox.c.envelope).where(outbox.c.type == "integration.KeywordDigestGenerated")
            )
        ).all()
    events = {
        e.org_path: e
        for e in (unpack_payload(EventEnvelope.FromString(r[0]), ev.KeywordDigestGenerated) for r in rows)
    }
    assert set(events) == {"", "east/team-a", "east/team-b"}
    company = events[""]
    assert company.conversations_analysed == 3
    assert [
        (k.term, k.mentions, k.conversations, k.deals, k.previous_mentions) for k in company.top_keywords
    ] == [
        ("预算", 3, 2, 2, 1),
        ("招标", 2, 2, 2, 0),
        ("领导还没批", 1, 1, 1, 0),
    ]
    team_b = events["east/team-b"]
    assert [(k.term, k.mentions) for k in team_b.top_keywords] == [("招标", 1)]

    # Managers read their team's digests; the tenant-wide one is for directors and admins.
    mine = await integration.call(
        "ListKeywordDigests", pb.ListKeywordDigestsRequest(org_path="east/team-a"), "sup-a"
    )
    assert [d.org_path for d in mine.digests] == ["east/team-a"]
    assert mine.digests[0].week_start_date.day == week.monday.day
    other = events["east/team-b"].digest_id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await integration.call("GetKeywordDigest", pb.GetKeywordDigestRequest(digest_id=other), "sup-a")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    for user, code in (
        ("sup-a", grpc.StatusCode.PERMISSION_DENIED),
        ("rep-a1", grpc.StatusCode.PERMISSION_DENIED),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await integration.call("ListKeywordDigests", pb.ListKeywordDigestsRequest(), user)
        assert err.value.code() == code
    whole = await integration.call("ListKeywordDigests", pb.ListKeywordDigestsRequest(), "director-east")
    assert [d.conversations_analysed for d in whole.digests] == [3]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await integration.call(
            "GetKeywordDigest", pb.GetKeywordDigestRequest(digest_id=other), "admin", "acme"
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_each_tenant_gets_its_schedule_and_a_trigger_makes_the_digests(
    integration: Integration, temporal_dev: Any
) -> None:
    """On a real Temporal dev server: the reconcile makes the tenant's schedule once; its action works."""
    import asyncio

    from kit.schedules import KeeperInput
    from services.integration.insight_activities import schedule_id
    from services.integration.repositories.insights import KeywordDigests
    from services.integration.store import transactions

    for req in DICTIONARY:
        await integration.call("CreateInsightKeyword", req)
    week = kd.previous_week(datetime.now(UTC))
    await submit(integration, "rep-a1", week.start + timedelta(days=1), (C, "预算不够"))
    client = temporal_dev.client
    queue = f"insights-{uuid.uuid4().hex[:8]}"
    acts = InsightActivities(integration.db, client)
    assert await acts.reconcile(KeeperInput(queue)) == 1
    assert await acts.reconcile(KeeperInput(queue)) == 0  # unchanged: left alone
    handle = client.get_schedule_handle(schedule_id("demo"))
    try:
        described = await handle.describe()
        [cal] = described.schedule.spec.calendars
        assert (cal.day_of_week[0].start, cal.hour[0].start) == (1, 8)
        async with temporal.build_worker(
            client, queue, workflows=list(WORKFLOWS), activities=list(acts.all())
        ):
            await handle.trigger()
            for _ in range(600):
                async with transactions(integration.db).read("demo") as uow:
                    found = await KeywordDigests(uow).of_week(week.key, "east/team-a")
                if found is not None:
                    break
                await asyncio.sleep(0.1)
        assert found is not None
    finally:
        await handle.delete()
