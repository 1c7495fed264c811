"""gRPC servicer of the leads service: proto <-> core, access, pagination.

RPCs not overridden here answer UNIMPLEMENTED (the generated base class).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, TypeVar

import grpc
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.errors import InvalidArgument, NotFound, PermissionDenied, SalesopsError
from kit.grpc import context as call
from kit.grpc import diagnostics
from kit.grpc.errors import to_status_proto
from kit.grpc.server import Registration
from kit.runtime import Runtime
from salesops.leads.v1 import enums_pb2, lead_pb2, leads_service_pb2, leads_service_pb2_grpc, routing_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import access, assignment, duplicates, followups, insights, intake, paging, policies
from services.leads.convert import from_ts, lead_proto, long, now, parse, short, to_dict
from services.leads.domain import normalize
from services.leads.domain import pool as pool_rules
from services.leads.store import ActivityRow, DecisionRow, LeadRow, RepRow

T = TypeVar("T")
Ctx = grpc.aio.ServicerContext[Any, Any]


def next_token(offset: int, size: int, got: int, total: int) -> str:
    end = offset + got
    return paging.token(end) if got == size and end < total else ""


def me(who: Principal, values: Any) -> list[str]:
    return [who.user_id if v == "me" else v for v in values]


class LeadsServiceApi(leads_service_pb2_grpc.LeadsServiceServicer):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._background: set[asyncio.Task[int]] = set()

    @asynccontextmanager
    async def tx(self, who: Principal) -> AsyncIterator[AsyncSession]:
        async with self.rt.db.session(who.tenant) as session:
            yield session

    async def write(self, who: Principal, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `work` in a transaction and commit; a unique-key race is retried once (the retry replays)."""
        for attempt in (1, 2):
            try:
                async with self.tx(who) as session:
                    result = await work(session)
                    await session.commit()
                    return result
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def full(self, session: AsyncSession, who: Principal, row: LeadRow, view: int = 2) -> lead_pb2.Lead:
        lead = lead_proto(row, who, full=view != pb.LEAD_VIEW_BASIC)
        if view != pb.LEAD_VIEW_BASIC:
            lead.duplicate_candidates.extend(await intake.duplicates(session, row.lead_id))
            for rec in await intake.recent_intakes(session, row.lead_id):
                if rec.contact.phone and lead.contact.phone_masked:
                    rec.contact.phone = normalize.mask_phone(rec.contact.phone)
                    rec.contact.phone_masked = True
                lead.recent_intakes.append(rec)
        settings = await assignment.Settings.load(session)
        from services.leads.watch import watch_state

        state = watch_state(row, settings)
        lead.recycle.exempt = state.recycle_time is None
        if state.recycle_time:
            lead.recycle.recycle_time.FromDatetime(state.recycle_time)
        if state.recycle_warn_time:
            lead.recycle.warn_time.FromDatetime(state.recycle_warn_time)
        # Only reps and supervisors claim; admins and partner systems skip the four cap queries.
        if row.status == "IN_POOL" and who.has_role("rep", "supervisor"):
            ctx = await assignment.claim_context(session, who.user_id, row.lead_id, now())
            pool = pool_rules.find_pool(settings.pools, row.pool_id or "")
            lead.caller_can_claim = not pool_rules.claim_violations(pool, ctx, now())
        return lead

    # --- intake ---------------------------------------------------------------------

    async def CreateLead(self, request: pb.CreateLeadRequest, context: Ctx) -> pb.CreateLeadResponse:
        who = call.principal()
        at = now()

        async def work(s: AsyncSession) -> pb.CreateLeadResponse:
            res = await intake.create(s, who, request.lead, at, assign_to_creator=request.assign_to_creator)
            return pb.CreateLeadResponse(
                lead=await self.full(s, who, res.row),
                outcome=pb.IntakeOutcome.Value("INTAKE_OUTCOME_" + res.outcome),
                intake_id=res.intake_id,
                replayed=res.replayed,
            )

        return await self.write(who, work)

    async def ImportLeads(self, request: pb.ImportLeadsRequest, context: Ctx) -> pb.ImportLeadsResponse:
        who = call.principal()
        v = []
        if not request.import_id or not intake._ID.match(request.import_id):
            v.append(("import_id", "required: 1-64 letters, digits, '-' or '_'"))
        if not 1 <= len(request.rows) <= 1000:
            v.append(("rows", "1 to 1,000 rows"))
        if v:
            raise InvalidArgument(
                f"invalid import: {v[0][0]}: {v[0][1]}",
                [InvalidArgument.field(f, d).violations[0] for f, d in v],
            )
        out = pb.ImportLeadsResponse(import_id=request.import_id)
        at = now()
        for i, item in enumerate(request.rows):
            lead = lead_pb2.Lead()
            lead.CopyFrom(item.lead)
            if not lead.HasField("source") or not lead.source.channel:
                src = lead_pb2.LeadSource()
                src.CopyFrom(request.default_source)
                if not src.channel:
                    src.channel = enums_pb2.LEAD_CHANNEL_IMPORT
                src.MergeFrom(lead.source)
                lead.source.CopyFrom(src)
            result = out.results.add(row_ref=item.row_ref, index=i)
            intake_id = lead.lead_id or f"{request.import_id}-{i}"

            async def work(
                s: AsyncSession, lead: lead_pb2.Lead = lead, intake_id: str = intake_id, i: int = i
            ) -> intake.IntakeResult:
                res = await intake.create(
                    s,
                    who,
                    lead,
                    at,
                    import_id=request.import_id,
                    intake_id=intake_id,
                    skip_routing=request.skip_routing,
                    prefix=f"rows[{i}].lead",
                )
                if request.validate_only:
                    await s.rollback()
                return res

            try:
                if request.validate_only:
                    async with self.tx(who) as s:
                        res = await work(s)
                else:
                    res = await self.write(who, work)
            except SalesopsError as exc:
                result.outcome = pb.INTAKE_OUTCOME_REJECTED
                result.error.CopyFrom(to_status_proto(exc, "leads"))
                out.rejected_count += 1
                continue
            result.outcome = pb.IntakeOutcome.Value("INTAKE_OUTCOME_" + res.outcome)
            result.lead_id = res.row.lead_id if not request.validate_only or res.outcome == "MERGED" else ""
            for m in res.candidates:
                result.duplicate_candidates.add(
                    lead_id=m.lead_id,
                    match_kind=long(enums_pb2.DuplicateMatchKind, m.kind),
                    score=m.score,
                    display_name=m.display_name,
                )
            if res.outcome == "MERGED":
                out.merged_count += 1
            else:
                out.created_count += 1
                if res.outcome == "CREATED_FLAGGED":
                    out.flagged_count += 1
        return out

    # --- standard methods --------------------------------------------------------------

    async def GetLead(self, request: pb.GetLeadRequest, context: Ctx) -> pb.GetLeadResponse:
        who = call.principal()
        async with self.tx(who) as s:
            row = await access.load_visible(s, who, request.lead_id)
            return pb.GetLeadResponse(lead=await self.full(s, who, row, request.view or pb.LEAD_VIEW_FULL))

    async def ListLeads(self, request: pb.ListLeadsRequest, context: Ctx) -> pb.ListLeadsResponse:
        who = call.principal()
        offset, size = paging.page(request.page_token, request.page_size)
        f = request.filter
        conds: list[Any] = [access.visible(who)]
        statuses = [short(lead_pb2.LeadStatus, x) for x in f.statuses]
        conds.append(LeadRow.status.in_(statuses) if statuses else LeadRow.status != "MERGED")
        if f.grades:
            conds.append(LeadRow.grade.in_([short(enums_pb2.LeadGrade, g) for g in f.grades]))
        if f.owner_user_ids:
            conds.append(LeadRow.owner_user_id.in_(me(who, f.owner_user_ids)))
        if f.pool_ids:
            conds.append(LeadRow.pool_id.in_(list(f.pool_ids)))
        if f.team_path:
            conds.append(
                or_(LeadRow.team_path == f.team_path, LeadRow.team_path.startswith(f.team_path + "/"))
            )
        if f.regions:
            rc = []
            for r in f.regions:
                rc.append(
                    or_(LeadRow.region == r[:-2], LeadRow.region.startswith(r[:-1]))
                    if r.endswith("/*")
                    else LeadRow.region == r
                )
            conds.append(or_(*rc))
        if f.channels:
            conds.append(LeadRow.channel.in_([short(enums_pb2.LeadChannel, c) for c in f.channels]))
        if f.source_codes:
            conds.append(LeadRow.source_code.in_(list(f.source_codes)))
        if f.first_response_states:
            conds.append(
                LeadRow.sla_state.in_(
                    [short(lead_pb2.FirstResponseState, x) for x in f.first_response_states]
                )
            )
        if f.phone:
            conds.append(LeadRow.phone == normalize.normalize_phone(f.phone, "CN", "filter.phone"))
        if f.email:
            conds.append(LeadRow.email == normalize.normalize_email(f.email, "filter.email"))
        if f.query:
            conds.append(LeadRow.display_name.ilike(f"%{f.query}%"))
        if f.HasField("duplicate_review_needed"):
            conds.append(LeadRow.duplicate_review_needed.is_(f.duplicate_review_needed))
        if f.create_period.HasField("start_time"):
            conds.append(LeadRow.created_at >= from_ts(f.create_period.start_time))
        if f.create_period.HasField("end_time"):
            conds.append(LeadRow.created_at < from_ts(f.create_period.end_time))
        if paging.days(f.min_idle_days, "filter.min_idle_days"):
            cutoff = now() - timedelta(days=f.min_idle_days)
            conds.append(or_(LeadRow.last_activity_time.is_(None), LeadRow.last_activity_time < cutoff))
        order_by = (request.order_by or "create_time desc").strip()
        key, _, direction = order_by.partition(" ")
        columns = {
            "create_time": LeadRow.created_at,
            "update_time": LeadRow.updated_at,
            "score": LeadRow.score,
            "last_activity_time": LeadRow.last_activity_time,
            "first_response.due_time": LeadRow.sla_due,
        }
        if key not in columns or direction.strip() not in ("", "desc", "asc"):
            raise InvalidArgument.field(
                "order_by", f"one of {', '.join(columns)}, optionally followed by ' desc'"
            )
        col = columns[key]
        order = [col.desc() if direction.strip() == "desc" else col.asc(), LeadRow.lead_id]
        async with self.tx(who) as s:
            total = int(await s.scalar(select(func.count()).select_from(LeadRow).where(*conds)) or 0)
            rows = list(
                (
                    await s.execute(select(LeadRow).where(*conds).order_by(*order).offset(offset).limit(size))
                ).scalars()
            )
            view = request.view or pb.LEAD_VIEW_BASIC
            leads = [lead_proto(r, who, full=view == pb.LEAD_VIEW_FULL) for r in rows]
        return pb.ListLeadsResponse(
            leads=leads, total_size=total, next_page_token=next_token(offset, size, len(rows), total)
        )

    async def UpdateLead(self, request: pb.UpdateLeadRequest, context: Ctx) -> pb.UpdateLeadResponse:
        who = call.principal()

        async def work(s: AsyncSession) -> pb.UpdateLeadResponse:
            row = await duplicates.update_lead(s, who, request.lead, list(request.update_mask.paths), now())
            return pb.UpdateLeadResponse(lead=await self.full(s, who, row))

        return await self.write(who, work)

    async def MergeLead(self, request: pb.MergeLeadRequest, context: Ctx) -> pb.MergeLeadResponse:
        who = call.principal()

        async def work(s: AsyncSession) -> pb.MergeLeadResponse:
            row = await duplicates.merge(s, who, request.lead_id, request.target_lead_id, now())
            return pb.MergeLeadResponse(lead=await self.full(s, who, row))

        return await self.write(who, work)

    async def DismissDuplicates(
        self, request: pb.DismissDuplicatesRequest, context: Ctx
    ) -> pb.DismissDuplicatesResponse:
        who = call.principal()

        async def work(s: AsyncSession) -> pb.DismissDuplicatesResponse:
            row = await duplicates.dismiss(s, who, request.lead_id, list(request.candidate_lead_ids), now())
            return pb.DismissDuplicatesResponse(lead=await self.full(s, who, row))

        return await self.write(who, work)

    # --- pool and assignment ------------------------------------------------------------

    async def ClaimLead(self, request: pb.ClaimLeadRequest, context: Ctx) -> pb.ClaimLeadResponse:
        who = call.principal()

        async def work(s: AsyncSession) -> pb.ClaimLeadResponse:
            row, decision_id = await assignment.claim(s, who, request.lead_id, now())
            return pb.ClaimLeadResponse(lead=await self.full(s, who, row), decision_id=decision_id)

        return await self.write(who, work)

    async def ReleaseLead(self, request: pb.ReleaseLeadRequest, context: Ctx) -> pb.ReleaseLeadResponse:
        who = call.principal()

        async def work(s: AsyncSession) -> pb.ReleaseLeadResponse:
            row = await assignment.release(
                s, who, request.lead_id, now(), note=request.note, pool_id=request.pool_id, etag=request.etag
            )
            return pb.ReleaseLeadResponse(lead=await self.full(s, who, row))

        return await self.write(who, work)

    async def AssignLead(self, request: pb.AssignLeadRequest, context: Ctx) -> pb.AssignLeadResponse:
        who = call.principal()

        async def work(s: AsyncSession) -> pb.AssignLeadResponse:
            row, decision = await assignment.assign(
                s,
                who,
                request.lead_id,
                now(),
                assignee=request.assignee_user_id,
                reason=request.reason,
                override=request.override_capacity,
                etag=request.etag,
            )
            return pb.AssignLeadResponse(lead=await self.full(s, who, row), decision=decision)

        return await self.write(who, work)

    async def BatchAssignLeads(
        self, request: pb.BatchAssignLeadsRequest, context: Ctx
    ) -> pb.BatchAssignLeadsResponse:
        who = call.principal()
        if not 1 <= len(request.lead_ids) <= 500:
            raise InvalidArgument.field("lead_ids", "1 to 500 leads")
        out = pb.BatchAssignLeadsResponse()
        for lead_id in request.lead_ids:
            result = out.results.add(lead_id=lead_id)

            async def work(
                s: AsyncSession, lead_id: str = lead_id
            ) -> tuple[LeadRow, routing_pb2.AssignmentDecision]:
                return await assignment.assign(
                    s,
                    who,
                    lead_id,
                    now(),
                    assignee=request.assignee_user_id,
                    reason=request.reason,
                    override=request.override_capacity,
                    etag="",
                )

            try:
                row, decision = await self.write(who, work)
            except SalesopsError as exc:
                result.error.CopyFrom(to_status_proto(exc, "leads"))
                continue
            result.owner_user_id, result.decision_id = row.owner_user_id or "", decision.decision_id
        return out

    async def ExplainLeadAssignment(
        self, request: pb.ExplainLeadAssignmentRequest, context: Ctx
    ) -> pb.ExplainLeadAssignmentResponse:
        who = call.principal()
        async with self.tx(who) as s:
            row = await access.load_visible(s, who, request.lead_id)
            rows = list(
                (
                    await s.execute(
                        select(DecisionRow)
                        .where(DecisionRow.lead_id == row.lead_id)
                        .order_by(DecisionRow.decide_time.desc(), DecisionRow.decision_id.desc())
                    )
                ).scalars()
            )
        wanted = request.decision_id or row.last_decision_id
        first = [r for r in rows if r.decision_id == wanted]
        if wanted and not first:
            raise NotFound("assignment decision", wanted)
        ordered = first + ([r for r in rows if r.decision_id != wanted] if request.include_history else [])
        out = pb.ExplainLeadAssignmentResponse()
        for r in ordered:
            parse(r.body, out.decisions.add())
        return out

    # --- grading and follow-ups -------------------------------------------------------------

    async def CreateBehaviorEvent(
        self, request: pb.CreateBehaviorEventRequest, context: Ctx
    ) -> pb.CreateBehaviorEventResponse:
        who = call.principal()

        async def work(s: AsyncSession) -> pb.CreateBehaviorEventResponse:
            row, changed = await followups.add_behavior(
                s, who, request.lead_id, request.behavior_event, now()
            )
            evt = lead_pb2.BehaviorEvent()
            evt.CopyFrom(request.behavior_event)
            evt.lead_id = row.lead_id
            return pb.CreateBehaviorEventResponse(
                behavior_event=evt, lead=await self.full(s, who, row), regraded=changed
            )

        return await self.write(who, work)

    async def CreateActivity(
        self, request: pb.CreateActivityRequest, context: Ctx
    ) -> pb.CreateActivityResponse:
        who = call.principal()

        async def work(s: AsyncSession) -> pb.CreateActivityResponse:
            act, row = await followups.create_activity(s, who, request.lead_id, request.activity, now())
            await s.flush()
            return pb.CreateActivityResponse(
                activity=followups.activity_proto(act), lead=await self.full(s, who, row)
            )

        return await self.write(who, work)

    async def ListActivities(
        self, request: pb.ListActivitiesRequest, context: Ctx
    ) -> pb.ListActivitiesResponse:
        who = call.principal()
        _, size = paging.page("", request.page_size)
        f = request.filter
        async with self.tx(who) as s:
            rows = await followups.list_activities(s, who, request.lead_id, 5000 if f.ByteSize() else size)
        if f.activity_types:
            rows = [
                r
                for r in rows
                if r.activity_type in {short(enums_pb2.ActivityType, t) for t in f.activity_types}
            ]
        if f.actor_user_ids:
            rows = [r for r in rows if r.actor_user_id in me(who, f.actor_user_ids)]
        return pb.ListActivitiesResponse(activities=[followups.activity_proto(r) for r in rows[:size]])

    async def UpdateActivity(
        self, request: pb.UpdateActivityRequest, context: Ctx
    ) -> pb.UpdateActivityResponse:
        who = call.principal()

        async def work(s: AsyncSession) -> pb.UpdateActivityResponse:
            act, row = await followups.update_activity(
                s, who, request.activity, list(request.update_mask.paths), now()
            )
            await s.flush()
            return pb.UpdateActivityResponse(
                activity=followups.activity_proto(act), lead=await self.full(s, who, row)
            )

        return await self.write(who, work)

    async def GetActivity(self, request: pb.GetActivityRequest, context: Ctx) -> pb.GetActivityResponse:
        who = call.principal()
        async with self.tx(who) as s:
            await access.load_visible(s, who, request.lead_id)
            row = await s.get(ActivityRow, (who.tenant, request.activity_id))
        if row is None or row.lead_id != request.lead_id:
            raise NotFound("activity", request.activity_id)
        return pb.GetActivityResponse(activity=followups.activity_proto(row))

    # --- closing ---------------------------------------------------------------------------------

    async def ConvertLead(self, request: pb.ConvertLeadRequest, context: Ctx) -> pb.ConvertLeadResponse:
        who = call.principal()

        async def work(s: AsyncSession) -> pb.ConvertLeadResponse:
            row = await followups.convert(
                s,
                who,
                request.lead_id,
                now(),
                opportunity_id=request.opportunity_id,
                name=request.opportunity_name,
                note=request.note,
                etag=request.etag,
                request=request,
            )
            return pb.ConvertLeadResponse(
                lead=await self.full(s, who, row), opportunity_id=row.converted_opportunity_id
            )

        return await self.write(who, work)

    async def DisqualifyLead(
        self, request: pb.DisqualifyLeadRequest, context: Ctx
    ) -> pb.DisqualifyLeadResponse:
        who = call.principal()

        async def work(s: AsyncSession) -> pb.DisqualifyLeadResponse:
            row = await followups.disqualify(
                s, who, request.lead_id, now(), reason=request.reason, note=request.note, etag=request.etag
            )
            return pb.DisqualifyLeadResponse(lead=await self.full(s, who, row))

        return await self.write(who, work)

    # --- manager views -------------------------------------------------------------------------

    async def GetLeadMetrics(
        self, request: pb.GetLeadMetricsRequest, context: Ctx
    ) -> pb.GetLeadMetricsResponse:
        who = call.principal()
        if not who.has_role(*access.MANAGERS) and not who.is_service:
            raise PermissionDenied("metrics are for supervisors, directors and admins", reason="NOT_MANAGER")
        async with self.tx(who) as s:
            return await insights.metrics(s, who, request)

    async def ListAttentionItems(
        self, request: pb.ListAttentionItemsRequest, context: Ctx
    ) -> pb.ListAttentionItemsResponse:
        who = call.principal()
        async with self.tx(who) as s:
            return await insights.attention(s, who, request)

    async def ListDormantLeads(
        self, request: pb.ListDormantLeadsRequest, context: Ctx
    ) -> pb.ListDormantLeadsResponse:
        who = call.principal()
        async with self.tx(who) as s:
            return await insights.dormant(s, who, request)

    # --- rep profiles ------------------------------------------------------------------------------

    async def GetRepProfile(self, request: pb.GetRepProfileRequest, context: Ctx) -> pb.GetRepProfileResponse:
        who = call.principal()
        user = who.user_id if request.user_id == "me" else request.user_id
        async with self.tx(who) as s:
            row = await s.get(RepRow, (who.tenant, user))
            if row is None:
                raise NotFound("rep profile", user)
            counts = await assignment.open_counts(s, [user])
            return pb.GetRepProfileResponse(rep_profile=self._live(row, counts.get(user, 0)))

    def _live(self, row: RepRow, open_count: int) -> routing_pb2.RepProfile:
        p = assignment.profile(row)
        p.open_lead_count = open_count
        cap = p.capacity or p.private_lead_cap
        p.load_ratio = open_count / cap if cap else 0.0
        rep = assignment.rep_for_routing(row, open_count, 0)
        from services.leads.domain import routing

        reasons = routing.skip_reasons(
            rep,
            routing.Rule("live", row.team_path, routing.LEAST_LOADED),
            routing.LeadFacts(""),
            now(),
            policies.CALENDAR,
            {},
        )
        p.available_now = not reasons
        p.unavailable_reasons.extend(long(routing_pb2.CandidateSkipReason, r) for r in reasons)
        return p

    async def ListRepProfiles(
        self, request: pb.ListRepProfilesRequest, context: Ctx
    ) -> pb.ListRepProfilesResponse:
        who = call.principal()
        offset, size = paging.page(request.page_token, request.page_size)
        conds: list[Any] = []
        team = request.team_path or ("" if access.sees_all(who) else who.org)
        if team:
            conds.append(or_(RepRow.team_path == team, RepRow.team_path.startswith(team + "/")))
        async with self.tx(who) as s:
            rows = list((await s.execute(select(RepRow).where(*conds).order_by(RepRow.user_id))).scalars())
            counts = await assignment.open_counts(s, [r.user_id for r in rows])
        profiles = [self._live(r, counts.get(r.user_id, 0)) for r in rows]
        if request.HasField("available_now"):
            profiles = [p for p in profiles if p.available_now == request.available_now]
        if request.skills:
            profiles = [p for p in profiles if set(request.skills) <= set(p.skills)]
        chunk = profiles[offset : offset + size]
        return pb.ListRepProfilesResponse(
            rep_profiles=chunk, next_page_token=next_token(offset, size, len(chunk), len(profiles))
        )

    async def UpdateRepProfile(
        self, request: pb.UpdateRepProfileRequest, context: Ctx
    ) -> pb.UpdateRepProfileResponse:
        who = call.principal()
        msg = request.rep_profile
        paths = list(request.update_mask.paths)
        if not msg.user_id:
            raise InvalidArgument.field("rep_profile.user_id", "required")
        if not paths:
            raise InvalidArgument.field("update_mask", "name the fields to change")
        own = msg.user_id == who.user_id
        rep_only = not (who.is_admin or who.has_role("supervisor", "director"))
        if rep_only and (not own or any(p not in ("leaves", "accepting_leads") for p in paths)):
            raise PermissionDenied(
                "reps may change only their own leaves and accepting switch", reason="NOT_MANAGER"
            )
        allowed = {f.name for f in routing_pb2.RepProfile.DESCRIPTOR.fields if f.number < 20} - {"user_id"}
        for p in paths:
            if p.split(".")[0] not in allowed:
                raise InvalidArgument.field("update_mask", f"unknown or output-only field {p!r}")
        if msg.weight and not 1 <= msg.weight <= 100:
            raise InvalidArgument.field("rep_profile.weight", "1 to 100")

        async def work(s: AsyncSession) -> pb.UpdateRepProfileResponse:
            row = await s.get(RepRow, (who.tenant, msg.user_id))
            if row is None:
                if not request.allow_missing:
                    raise NotFound("rep profile", msg.user_id)
                current = routing_pb2.RepProfile(user_id=msg.user_id, accepting_leads=True, weight=1)
            else:
                if msg.etag and msg.etag != str(row.version):
                    from kit.errors import Aborted

                    raise Aborted("rep profile changed meanwhile", reason="STALE_ETAG")
                current = assignment.profile(row)
            for p in paths:
                top = p.split(".")[0]
                field = current.DESCRIPTOR.fields_by_name[top]
                current.ClearField(top)  # type: ignore[arg-type]
                if field.is_repeated:
                    getattr(current, top).extend(getattr(msg, top))
                elif field.message_type is not None:
                    getattr(current, top).CopyFrom(getattr(msg, top))
                else:
                    setattr(current, top, getattr(msg, top))
            team = current.team_path
            if not (who.is_admin or own) and not (team and access.manages(who, team)):
                raise PermissionDenied(f"{msg.user_id} is not in a team you manage", reason="NOT_MANAGER")
            body = to_dict(current)
            for k in ("user_id", "team_path", "etag", "audit", "last_assigned_time"):
                body.pop(k, None)
            if row is None:
                row = RepRow(user_id=msg.user_id, team_path=team, body=body, version=1, updated_at=now())
                s.add(row)
            else:
                row.team_path, row.body, row.version, row.updated_at = team, body, row.version + 1, now()
            await s.flush()
            counts = await assignment.open_counts(s, [msg.user_id])
            return pb.UpdateRepProfileResponse(rep_profile=self._live(row, counts.get(msg.user_id, 0)))

        return await self.write(who, work)

    # --- tenant configuration --------------------------------------------------------------------

    async def _get_setting(self, kind: str) -> Any:
        who = call.principal()
        async with self.tx(who) as s:
            return await policies.load(s, kind)

    async def _update_setting(self, kind: str, msg: Any, paths: Any) -> Any:
        who = call.principal()
        if not who.is_admin:
            raise PermissionDenied("only sales-ops admins change tenant configuration", reason="NOT_ADMIN")

        async def work(s: AsyncSession) -> Any:
            return await policies.save(s, kind, msg, list(paths), who.user_id)

        return await self.write(who, work)

    async def GetGradingRules(
        self, request: pb.GetGradingRulesRequest, context: Ctx
    ) -> pb.GetGradingRulesResponse:
        return pb.GetGradingRulesResponse(grading_rules=await self._get_setting(policies.GRADING))

    async def UpdateGradingRules(
        self, request: pb.UpdateGradingRulesRequest, context: Ctx
    ) -> pb.UpdateGradingRulesResponse:
        msg = await self._update_setting(policies.GRADING, request.grading_rules, request.update_mask.paths)
        if request.regrade_open_leads:
            who = call.principal()
            task = asyncio.create_task(self.regrade_open(who.tenant), name=f"leads-regrade-{who.tenant}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return pb.UpdateGradingRulesResponse(grading_rules=msg)

    async def regrade_open(self, tenant: str, batch: int = 500) -> int:
        """Re-grade the tenant's open leads with the current rules, in batches of one transaction each.

        Runs in the API process after UpdateGradingRules answers; running SLA clocks keep their deadline
        unless a lead moves to a stricter grade. Returns the number of leads whose grade or score changed.
        """
        changed, after = 0, ""
        while True:
            async with self.rt.db.session(tenant) as s:
                rows = list(
                    (
                        await s.execute(
                            select(LeadRow)
                            .where(
                                LeadRow.status.in_(("IN_POOL", "ASSIGNED", "WORKING")),
                                LeadRow.lead_id > after,
                            )
                            .order_by(LeadRow.lead_id)
                            .limit(batch)
                        )
                    ).scalars()
                )
                for row in rows:
                    changed += await followups.regrade(s, row, now(), "RULES_CHANGED")
                await s.commit()
            if len(rows) < batch:
                return changed
            after = rows[-1].lead_id

    async def GetRoutingRules(
        self, request: pb.GetRoutingRulesRequest, context: Ctx
    ) -> pb.GetRoutingRulesResponse:
        return pb.GetRoutingRulesResponse(routing_rules=await self._get_setting(policies.ROUTING))

    async def UpdateRoutingRules(
        self, request: pb.UpdateRoutingRulesRequest, context: Ctx
    ) -> pb.UpdateRoutingRulesResponse:
        msg = await self._update_setting(policies.ROUTING, request.routing_rules, request.update_mask.paths)
        return pb.UpdateRoutingRulesResponse(routing_rules=msg)

    async def GetPoolRules(self, request: pb.GetPoolRulesRequest, context: Ctx) -> pb.GetPoolRulesResponse:
        return pb.GetPoolRulesResponse(pool_rules=await self._get_setting(policies.POOL))

    async def UpdatePoolRules(
        self, request: pb.UpdatePoolRulesRequest, context: Ctx
    ) -> pb.UpdatePoolRulesResponse:
        msg = await self._update_setting(policies.POOL, request.pool_rules, request.update_mask.paths)
        return pb.UpdatePoolRulesResponse(pool_rules=msg)

    async def GetSlaPolicies(
        self, request: pb.GetSlaPoliciesRequest, context: Ctx
    ) -> pb.GetSlaPoliciesResponse:
        return pb.GetSlaPoliciesResponse(sla_policies=await self._get_setting(policies.SLA))

    async def UpdateSlaPolicies(
        self, request: pb.UpdateSlaPoliciesRequest, context: Ctx
    ) -> pb.UpdateSlaPoliciesResponse:
        msg = await self._update_setting(policies.SLA, request.sla_policies, request.update_mask.paths)
        return pb.UpdateSlaPoliciesResponse(sla_policies=msg)

    async def GetIntakePolicy(
        self, request: pb.GetIntakePolicyRequest, context: Ctx
    ) -> pb.GetIntakePolicyResponse:
        return pb.GetIntakePolicyResponse(intake_policy=await self._get_setting(policies.INTAKE))

    async def UpdateIntakePolicy(
        self, request: pb.UpdateIntakePolicyRequest, context: Ctx
    ) -> pb.UpdateIntakePolicyResponse:
        msg = await self._update_setting(policies.INTAKE, request.intake_policy, request.update_mask.paths)
        return pb.UpdateIntakePolicyResponse(intake_policy=msg)

    async def GetFollowUpPolicy(
        self, request: pb.GetFollowUpPolicyRequest, context: Ctx
    ) -> pb.GetFollowUpPolicyResponse:
        return pb.GetFollowUpPolicyResponse(follow_up_policy=await self._get_setting(policies.FOLLOW_UP))

    async def UpdateFollowUpPolicy(
        self, request: pb.UpdateFollowUpPolicyRequest, context: Ctx
    ) -> pb.UpdateFollowUpPolicyResponse:
        msg = await self._update_setting(
            policies.FOLLOW_UP, request.follow_up_policy, request.update_mask.paths
        )
        return pb.UpdateFollowUpPolicyResponse(follow_up_policy=msg)


def registrations(rt: Runtime) -> list[Registration]:
    return [
        Registration(
            leads_service_pb2_grpc.add_LeadsServiceServicer_to_server,
            # RPCs not built yet are abstract in the stubs and answer UNIMPLEMENTED at run time.
            LeadsServiceApi(rt),  # type: ignore[abstract]
            leads_service_pb2.DESCRIPTOR.services_by_name["LeadsService"].full_name,
        ),
        diagnostics.registration("leads"),
    ]
