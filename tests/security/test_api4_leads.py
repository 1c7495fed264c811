"""OWASP API4 (resource consumption) in leads: manager views aggregate in SQL or read one page,
never every matching lead into memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from sqlalchemy import event, update

from kit.grpc.errors import status_from_error
from salesops.leads.v1 import enums_pb2, insights_pb2, lead_pb2, routing_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.store import LeadRow
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, hot_lead
from tests.leads.test_api import call_activity

N = 24


@pytest.fixture
def loaded() -> Iterator[list[str]]:
    """Ids of the lead rows the ORM materialises while the test runs (the server runs in process)."""
    seen: list[str] = []

    def on_load(target: Any, _context: Any) -> None:
        seen.append(target.lead_id)

    event.listen(LeadRow, "load", on_load)
    yield seen
    event.remove(LeadRow, "load", on_load)


async def many_leads(leads: Leads) -> None:
    await configure(leads)
    for i in range(N):
        # Grade C leads wait in the pool for a claim.
        lead = hot_lead(f"BULK-{i:02d}", phone=f"139000{i:05d}", budget=100_000_00, channel=1)
        lead.company.name = f"Company {i}"
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=lead))


async def test_metrics_are_aggregated_in_sql(leads: Leads, loaded: list[str]) -> None:
    await many_leads(leads)
    loaded.clear()
    out = await leads.call(
        "GetLeadMetrics",
        pb.GetLeadMetricsRequest(group_by=insights_pb2.METRICS_DIMENSION_SOURCE_CODE),
        user="admin",
    )
    assert out.totals.created_count >= N
    assert loaded == []  # figures come from SQL aggregates, not from N rows in memory


async def test_attention_board_reads_one_page(leads: Leads, loaded: list[str]) -> None:
    await many_leads(leads)
    # Make every lead need attention: an unrouted pool lead is on the board.
    async with leads.db.session("demo") as s:
        await s.execute(update(LeadRow).values(needs_attention=True, pool_entry_reason="UNROUTED"))
        await s.commit()
    loaded.clear()
    page = await leads.call("ListAttentionItems", pb.ListAttentionItemsRequest(page_size=5), user="admin")
    assert len(page.items) == 5 and page.total_size >= N and page.next_page_token
    assert len(loaded) <= 6, f"{len(loaded)} lead rows read for a page of 5"


def bad_fields(status: Any) -> list[str]:
    detail = error_details_pb2.BadRequest()
    next(d for d in status.details if d.Is(detail.DESCRIPTOR)).Unpack(detail)
    return [v.field for v in detail.field_violations]


def _set(path: str, value: Any) -> Any:
    def edit(lead: lead_pb2.Lead) -> None:
        *parents, name = path.split(".")
        holder: Any = lead
        for part in parents:
            holder = getattr(holder, part)
        setattr(holder, name, value)

    return edit


@pytest.mark.parametrize(
    ("field", "edit"),
    [
        ("lead.contact.email", _set("contact.email", "e" * 250 + "@x.cn")),
        ("lead.region", _set("region", "east/" + "r" * 130)),
        ("lead.source.source_code", _set("source.source_code", "s" * 65)),
        ("lead.language_code", _set("language_code", "l" * 17)),
        ("lead", _set("description", "d" * 70_000)),
        ("lead.source.channel", _set("source.channel", 99)),
    ],
)
async def test_lead_fields_past_their_limits_are_invalid_not_internal(
    leads: Leads, field: str, edit: Any
) -> None:
    """PostgreSQL answered INTERNAL past a column's width; a 2 MB description was stored as is."""
    lead = hot_lead("LONG-1", phone="13900000401")
    edit(lead)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=lead))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in bad_fields(status_from_error(err.value))


async def test_activities_and_closing_input_are_bounded(leads: Leads) -> None:
    await configure(leads)
    made = (
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("LONG-2", phone="13900000402")))
    ).lead
    owner = made.owner_user_id
    for activity, field in (
        (call_activity(summary="s" * 70_000), "activity"),
        (call_activity(activity_type=enums_pb2.ActivityType.ValueType(99)), "activity.activity_type"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await leads.call(
                "CreateActivity", pb.CreateActivityRequest(lead_id="LONG-2", activity=activity), user=owner
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in bad_fields(status_from_error(err.value))
    for method, request, field in (
        (  # DisqualifyReason.Name(99) was a ValueError: INTERNAL
            "DisqualifyLead",
            pb.DisqualifyLeadRequest(lead_id="LONG-2", reason=lead_pb2.DisqualifyReason.ValueType(99)),
            "reason",
        ),
        (
            "DisqualifyLead",
            pb.DisqualifyLeadRequest(
                lead_id="LONG-2", reason=lead_pb2.DISQUALIFY_REASON_OTHER, note="n" * 2001
            ),
            "note",
        ),
        (
            "ConvertLead",
            pb.ConvertLeadRequest(lead_id="LONG-2", opportunity_name="o" * 301),
            "opportunity_name",
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await leads.call(method, request, user=owner)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        assert bad_fields(status_from_error(err.value)) == [field]


async def test_repeated_filters_are_bounded(leads: Leads) -> None:
    """40,000 owner ids were 40,000 bound parameters: INTERNAL on PostgreSQL (its limit is 32,767)."""
    many = [f"user-{i}" for i in range(40_000)]
    for method, request, field in (
        (
            "ListLeads",
            pb.ListLeadsRequest(filter=pb.LeadFilter(owner_user_ids=many)),
            "filter.owner_user_ids",
        ),
        ("ListLeads", pb.ListLeadsRequest(filter=pb.LeadFilter(regions=many)), "filter.regions"),
        ("GetLeadMetrics", pb.GetLeadMetricsRequest(regions=many), "regions"),
        (
            "DismissDuplicates",
            pb.DismissDuplicatesRequest(lead_id="X", candidate_lead_ids=many),
            "candidate_lead_ids",
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await leads.call(method, request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        assert bad_fields(status_from_error(err.value)) == [field]
    fine = pb.ListLeadsRequest(filter=pb.LeadFilter(owner_user_ids=many[:500]))
    assert list((await leads.call("ListLeads", fine)).leads) == []


async def test_rep_profiles_are_bounded(leads: Leads) -> None:
    """A negative capacity was saved; a rep could write 100,000 leaves into their own profile."""
    await configure(leads)
    negative = routing_pb2.RepProfile(user_id="rep-a1", capacity=-5)
    leaves = routing_pb2.RepProfile(user_id="rep-a1")
    for _ in range(101):
        leaves.leaves.add()
    for user, profile, paths, field in (
        ("sup-a", negative, ["capacity"], "rep_profile.capacity"),
        ("rep-a1", leaves, ["leaves"], "rep_profile.leaves"),
    ):
        request = pb.UpdateRepProfileRequest(
            rep_profile=profile, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await leads.call("UpdateRepProfile", request, user=user)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        assert bad_fields(status_from_error(err.value)) == [field]


async def test_far_timestamps_are_invalid_not_internal(leads: Leads) -> None:
    """Past year 9999 a Timestamp does not convert: ListLeads, GetLeadMetrics, CreateActivity and
    CreateBehaviorEvent answered INTERNAL."""
    await configure(leads)
    owner = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("FAR-1")))).lead.owner_user_id
    far = timestamp_pb2.Timestamp(seconds=253402300799 + 100)
    listing = pb.ListLeadsRequest()
    listing.filter.create_period.start_time.CopyFrom(far)
    metrics = pb.GetLeadMetricsRequest()
    metrics.period.end_time.CopyFrom(far)
    event = lead_pb2.BehaviorEvent(event_type="page_view", occur_time=far)
    late = call_activity()
    late.occur_time.CopyFrom(far)
    for method, request, field, user in (
        ("ListLeads", listing, "filter.create_period.start_time", "admin"),
        ("GetLeadMetrics", metrics, "period.end_time", "admin"),
        (
            "CreateActivity",
            pb.CreateActivityRequest(lead_id="FAR-1", activity=late),
            "activity.occur_time",
            owner,
        ),
        (
            "CreateBehaviorEvent",
            pb.CreateBehaviorEventRequest(lead_id="FAR-1", behavior_event=event),
            "behavior_event.occur_time",
            owner,
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await leads.call(method, request, user=user)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, err.value.details())
        assert bad_fields(status_from_error(err.value)) == [field]
