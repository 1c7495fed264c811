"""Standard methods of leads, duplicate review and closing: proto <-> use cases, filters checked here."""

from __future__ import annotations

from datetime import timedelta

from kit.auth import Principal
from kit.errors import InvalidArgument
from kit.grpc import context as call
from kit.resources import PageRequest, Sort, query_key
from salesops.leads.v1 import enums_pb2, lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import closing, duplicates, lead_edits, lead_views, validation
from services.leads.api.base import ApiBase, Ctx, me
from services.leads.convert import enum_name, from_ts, now
from services.leads.domain import normalize
from services.leads.presenters import LEADS
from services.leads.repositories.lead_reads import LeadReads
from services.leads.repositories.leads import ORDERS, LeadSearch

DEFAULT_ORDER = "create_time desc"
MAX_QUERY = 200  # characters of a search text: a name, a phone, part of an e-mail


def lead_search(who: Principal, f: pb.LeadFilter) -> LeadSearch:
    """ListLeads' filter, checked and normalised (a bad value is INVALID_ARGUMENT on its field)."""
    validation.bounded_lists(f, "filter")
    search = LeadSearch(
        statuses=[enum_name(lead_pb2.LeadStatus, x) for x in f.statuses],
        grades=[enum_name(enums_pb2.LeadGrade, g) for g in f.grades],
        owners=me(who, f.owner_user_ids),
        pools=list(f.pool_ids),
        team_path=f.team_path,
        regions=list(f.regions),
        channels=[enum_name(enums_pb2.LeadChannel, c) for c in f.channels],
        source_codes=list(f.source_codes),
        sla_states=[enum_name(lead_pb2.FirstResponseState, x) for x in f.first_response_states],
        tags=list(f.tags),
        product_lines=list(f.product_lines),
        query=validation.bounded_text(f.query, "filter.query", MAX_QUERY),
        created_from=from_ts(f.create_period.start_time, "filter.create_period.start_time"),
        created_before=from_ts(f.create_period.end_time, "filter.create_period.end_time"),
    )
    if f.phone:
        search.phone = normalize.normalize_phone(f.phone, "CN", "filter.phone")
    if f.email:
        search.email = normalize.normalize_email(f.email, "filter.email")
    if f.HasField("duplicate_review_needed"):
        search.duplicate_review_needed = f.duplicate_review_needed
    if validation.days(f.min_idle_days, "filter.min_idle_days"):
        search.idle_since = now() - timedelta(days=f.min_idle_days)
    return search


# ListLeads' checked filter, order and query key, by what decides them: the filter's bytes, the
# order and the caller (who "me" is). A list asked again skips ~60 us of checks and hashing. Not
# kept for a filter with min_idle_days (it reads the clock); an invalid one raises every time.
# Values are shared: read only. Cleared when full. Only short filters are kept (a filter is a few
# dozen bytes; a gRPC message may be megabytes): at most _PARSED_MAX x ~2 x _PARSED_KEY_MAX bytes.
_PARSED: dict[tuple[bytes, str, str], tuple[LeadSearch, Sort, str]] = {}
_PARSED_MAX = 1024
_PARSED_KEY_MAX = 512


def list_query(who: Principal, request: pb.ListLeadsRequest) -> tuple[LeadSearch, Sort, str]:
    """`lead_search`, `lead_order` and the query key of a ListLeads request."""
    f = request.filter
    key = (f.SerializeToString(deterministic=True), request.order_by, who.user_id)
    found = _PARSED.get(key)
    if found is not None:
        return found
    order_by = (request.order_by or DEFAULT_ORDER).strip()
    found = (
        lead_search(who, f),
        lead_order(request.order_by),
        query_key("ListLeads", who.user_id, f, order_by),
    )
    if not f.min_idle_days and len(key[0]) + len(key[1]) <= _PARSED_KEY_MAX:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = found
    return found


def lead_order(order_by: str) -> Sort:
    key, _, direction = (order_by or DEFAULT_ORDER).strip().partition(" ")
    if key not in ORDERS or direction.strip() not in ("", "desc", "asc"):
        raise InvalidArgument.field("order_by", f"one of {', '.join(ORDERS)}, optionally followed by ' desc'")
    return Sort(ORDERS[key], descending=direction.strip() == "desc")


class LeadsApi(ApiBase):
    async def GetLead(self, request: pb.GetLeadRequest, context: Ctx) -> pb.GetLeadResponse:
        who = call.principal()
        view = request.view or pb.LEAD_VIEW_FULL
        # The lead and its candidates the caller sees: one statement (the policies it shows may be
        # a second of age anyway, so nothing needs one snapshot).
        async with self.tx.read(who.tenant, snapshot=False) as uow:
            found = await LeadReads(uow).get(who, request.lead_id)
            details = await lead_views.found_details(uow, who, found, view)
        response = pb.GetLeadResponse()
        LEADS.present_into(response.lead, who, details)
        return response

    async def ListLeads(self, request: pb.ListLeadsRequest, context: Ctx) -> pb.ListLeadsResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        search, order, query = list_query(who, request)
        full = request.view == pb.LEAD_VIEW_FULL
        async with self.tx.read(who.tenant, snapshot=False) as uow:  # page and total: one statement
            reads = LeadReads(uow)
            found = await reads.search(who, search, order, page, query, full=full)
        response = pb.ListLeadsResponse()
        LEADS.present_page(response, who, found.items, full=full, answer=reads.answer)
        response.total_size = found.total_size or 0
        response.next_page_token = found.next_page_token
        return response

    async def UpdateLead(self, request: pb.UpdateLeadRequest, context: Ctx) -> pb.UpdateLeadResponse:
        who, paths = call.principal(), list(request.update_mask.paths)
        lead = await self.changed_lead(
            who, lambda uow: lead_edits.update_lead(uow, who, request.lead, paths, now())
        )
        return pb.UpdateLeadResponse(lead=lead)

    async def MergeLead(self, request: pb.MergeLeadRequest, context: Ctx) -> pb.MergeLeadResponse:
        who = call.principal()
        lead = await self.changed_lead(
            who, lambda uow: duplicates.merge(uow, who, request.lead_id, request.target_lead_id, now())
        )
        return pb.MergeLeadResponse(lead=lead)

    async def DismissDuplicates(
        self, request: pb.DismissDuplicatesRequest, context: Ctx
    ) -> pb.DismissDuplicatesResponse:
        validation.bounded_lists(request)
        who, candidates = call.principal(), list(request.candidate_lead_ids)
        lead = await self.changed_lead(
            who, lambda uow: duplicates.dismiss(uow, who, request.lead_id, candidates, now())
        )
        return pb.DismissDuplicatesResponse(lead=lead)

    async def ConvertLead(self, request: pb.ConvertLeadRequest, context: Ctx) -> pb.ConvertLeadResponse:
        who = call.principal()
        lead = await self.changed_lead(
            who,
            lambda uow: closing.convert(
                uow,
                who,
                request.lead_id,
                now(),
                opportunity_id=request.opportunity_id,
                name=request.opportunity_name,
                note=request.note,
                etag=request.etag,
                request=request,
            ),
        )
        return pb.ConvertLeadResponse(lead=lead, opportunity_id=lead.converted_opportunity_id)

    async def DisqualifyLead(
        self, request: pb.DisqualifyLeadRequest, context: Ctx
    ) -> pb.DisqualifyLeadResponse:
        who = call.principal()
        lead = await self.changed_lead(
            who,
            lambda uow: closing.disqualify(
                uow, who, request.lead_id, now(), reason=request.reason, note=request.note, etag=request.etag
            ),
        )
        return pb.DisqualifyLeadResponse(lead=lead)
