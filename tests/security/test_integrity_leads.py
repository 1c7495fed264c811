"""Integrity in leads: activity times are bounded (no backdating before the lead or its assignment,
no future beyond a small skew), behaviour events come only from those who own or manage the lead,
and LIKE wildcards in text filters match themselves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import timestamp_pb2

from salesops.leads.v1 import activity_pb2, lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, hot_lead
from tests.leads.test_api import call_activity


def at(dt: datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(dt)
    return t


def activity_at(dt: datetime) -> activity_pb2.Activity:
    act = call_activity()
    act.occur_time.CopyFrom(at(dt))
    return act


async def test_backdated_activity_cannot_meet_the_sla(leads: Leads) -> None:
    await configure(leads)
    lead = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("SLA-1")))).lead
    assert lead.first_response.state == lead_pb2.FIRST_RESPONSE_STATE_PENDING
    assigned = lead.assign_time.ToDatetime(tzinfo=UTC)
    for when in (assigned - timedelta(hours=2), datetime(2020, 1, 1, tzinfo=UTC)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await leads.call(
                "CreateActivity",
                pb.CreateActivityRequest(lead_id="SLA-1", activity=activity_at(when)),
                user=lead.owner_user_id,
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    after = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="SLA-1"))).lead
    assert after.first_response.state == lead_pb2.FIRST_RESPONSE_STATE_PENDING and after.activity_count == 0


async def test_activity_in_the_future_beyond_the_skew_is_refused(leads: Leads) -> None:
    await configure(leads)
    lead = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("SLA-2")))).lead
    future = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call(
            "CreateActivity",
            pb.CreateActivityRequest(lead_id="SLA-2", activity=activity_at(future)),
            user=lead.owner_user_id,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    near = datetime.now(UTC) + timedelta(minutes=2)  # within the skew: accepted
    await leads.call(
        "CreateActivity",
        pb.CreateActivityRequest(lead_id="SLA-2", activity=activity_at(near)),
        user=lead.owner_user_id,
    )


async def test_behaviour_events_only_from_owner_or_manager(leads: Leads) -> None:
    await configure(leads)
    cold = hot_lead("BEH-1", phone="13800000501", budget=100_000_00, channel=1)  # grade C: in the pool
    created = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=cold))).lead
    assert created.status == lead_pb2.LEAD_STATUS_IN_POOL
    evt = lead_pb2.BehaviorEvent(
        behavior_event_id="BEH-E1", event_type="pricing_page_view", occur_time=at(datetime.now(UTC))
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call(
            "CreateBehaviorEvent",
            pb.CreateBehaviorEventRequest(lead_id="BEH-1", behavior_event=evt),
            user="rep-b1",
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    owned = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="BEH-1"))).lead
    assert owned.etag == created.etag  # nothing changed
    # The pool's managers and admins (and partner systems) still record behaviour.
    await leads.call(
        "CreateBehaviorEvent",
        pb.CreateBehaviorEventRequest(lead_id="BEH-1", behavior_event=evt),
        user="admin",
    )


async def test_like_wildcards_in_the_query_filter_match_themselves(leads: Leads) -> None:
    await configure(leads)
    for i, name in enumerate(("100% Cotton Ltd", "Plain Ltd", "Under_score Ltd")):
        await leads.call(
            "CreateLead",
            pb.CreateLeadRequest(lead=hot_lead(f"LIKE-{i}", phone=f"1380000060{i}", company=name)),
        )
    for query, expected in (("%", ["LIKE-0"]), ("_", ["LIKE-2"]), ("0%", ["LIKE-0"]), ("Plain", ["LIKE-1"])):
        got = await leads.call("ListLeads", pb.ListLeadsRequest(filter=pb.LeadFilter(query=query)))
        assert sorted(lead.lead_id for lead in got.leads) == expected, query


async def test_behaviour_events_are_bounded_in_time_and_size(leads: Leads) -> None:
    """A behaviour event dated year 9999 counted for grading; a 65-character type or id was INTERNAL on
    PostgreSQL."""
    await configure(leads)
    owner = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("BEH-9")))).lead.owner_user_id
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    for event, field in (
        (
            lead_pb2.BehaviorEvent(
                event_type="page_view", occur_time=timestamp_pb2.Timestamp(seconds=253402300799)
            ),
            "occur_time",
        ),
        (lead_pb2.BehaviorEvent(event_type="t" * 65, occur_time=now), "event_type"),
        (
            lead_pb2.BehaviorEvent(behavior_event_id="i" * 65, event_type="page_view", occur_time=now),
            "behavior_event_id",
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await leads.call(
                "CreateBehaviorEvent",
                pb.CreateBehaviorEventRequest(lead_id="BEH-9", behavior_event=event),
                user=owner,
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        assert f"behavior_event.{field}" in (err.value.details() or "")
    fine = lead_pb2.BehaviorEvent(event_type="page_view", occur_time=now)
    await leads.call(
        "CreateBehaviorEvent", pb.CreateBehaviorEventRequest(lead_id="BEH-9", behavior_event=fine), user=owner
    )
