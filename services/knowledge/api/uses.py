"""Card uses and feedback: record a use, read uses, rate a use, list open feedback duties."""

from __future__ import annotations

from datetime import UTC

from kit.auth import Principal
from kit.errors import InvalidArgument, PermissionDenied
from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork, query_key
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1.usage_pb2 import CardUse
from services.knowledge import cards, use_access, uses
from services.knowledge.access import is_manager
from services.knowledge.api.base import ApiBase, Ctx
from services.knowledge.domain import duties as rules
from services.knowledge.repositories.uses import CardUses, DutyQuery, FeedbackDuties, UseQuery
from services.knowledge.use_presenters import DUTIES, USES

MAX_ID = 128


def _states(values: list[int], field: str) -> tuple[int, ...]:
    if any(v not in (rules.PENDING, rules.OVERDUE, rules.SUBMITTED) for v in values):
        raise InvalidArgument.field(field, "PENDING, OVERDUE or SUBMITTED")
    return tuple(sorted(set(values)))


def _use_query(f: pb.CardUseFilter) -> UseQuery:
    for name in ("card_id", "user_id", "deal_id", "lead_id"):
        if len(getattr(f, name)) > MAX_ID:
            raise InvalidArgument.field(f"filter.{name}", f"at most {MAX_ID} characters")
    period = f.use_period
    start = period.start_time.ToDatetime(tzinfo=UTC) if period.HasField("start_time") else None
    end = period.end_time.ToDatetime(tzinfo=UTC) if period.HasField("end_time") else None
    if start is not None and end is not None and end < start:
        raise InvalidArgument.field("filter.use_period", "end_time before start_time")
    return UseQuery(
        f.card_id,
        f.user_id,
        f.deal_id,
        f.lead_id,
        _states(list(f.feedback_states), "filter.feedback_states"),
        start,
        end,
    )


def _duty_query(who: Principal, request: pb.ListFeedbackDutiesRequest) -> DutyQuery:
    """Whose duties: the caller's by default; managers name a user or an org subtree of their scope."""
    if len(request.user_id) > MAX_ID:
        raise InvalidArgument.field("user_id", f"at most {MAX_ID} characters")
    states = _states(list(request.states), "states") or rules.OPEN_STATES
    everything = use_access.sees_everything(who)
    if request.org_path:
        org = "/".join(p for p in request.org_path.split("/") if p)
        if not org or len(org) > 256:
            raise InvalidArgument.field("org_path", "an org unit path, e.g. east/team-a")
        if not (everything or (is_manager(who) and who.org_contains(org))):
            raise PermissionDenied("managers list the duties of their own org scope", reason="OUT_OF_SCOPE")
        return DutyQuery(states, request.user_id, org)
    user = request.user_id or who.user_id
    if user != who.user_id and not (everything or is_manager(who)):
        raise PermissionDenied("reps see their own feedback duties", reason="OWN_DUTIES_ONLY")
    return DutyQuery(states, user)


class UsesApi(ApiBase):
    async def RecordSopCardUse(
        self, request: pb.RecordSopCardUseRequest, context: Ctx
    ) -> pb.RecordSopCardUseResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> tuple[CardUse, bool]:
            row, duty, repeat = await uses.record_use(uow, who, request.card_id, request.use, cards.now())
            return USES.present(who, (row, duty)), repeat

        use, repeat = await self.write(who, work)
        return pb.RecordSopCardUseResponse(use=use, deduplicated=repeat)

    async def GetCardUse(self, request: pb.GetCardUseRequest, context: Ctx) -> pb.GetCardUseResponse:
        who = call.principal()
        async with self.read(who) as uow:
            found = await uses.get_use(uow, who, request.use_id)
            return pb.GetCardUseResponse(use=USES.present(who, found))

    async def ListCardUses(self, request: pb.ListCardUsesRequest, context: Ctx) -> pb.ListCardUsesResponse:
        who = call.principal()
        q = _use_query(request.filter)
        page = PageRequest.parse(request.page_size, request.page_token)
        query = query_key("ListCardUses", who.user_id, request.filter.SerializeToString(deterministic=True))
        async with self.read(who) as uow:
            found = await CardUses(uow).page(who, q, page, query)
            duties = await uses.duties_of(uow, found.items)
            items = [USES.present(who, (r, duties[r.duty_id])) for r in found.items]
        return pb.ListCardUsesResponse(uses=items, next_page_token=found.next_page_token)

    async def SubmitCardFeedback(
        self, request: pb.SubmitCardFeedbackRequest, context: Ctx
    ) -> pb.SubmitCardFeedbackResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> CardUse:
            found = await uses.submit_feedback(uow, who, request.use_id, request.feedback, cards.now())
            return USES.present(who, found)

        return pb.SubmitCardFeedbackResponse(use=await self.write(who, work))

    async def ListFeedbackDuties(
        self, request: pb.ListFeedbackDutiesRequest, context: Ctx
    ) -> pb.ListFeedbackDutiesResponse:
        who = call.principal()
        q = _duty_query(who, request)
        page = PageRequest.parse(request.page_size, request.page_token)
        query = query_key(
            "ListFeedbackDuties", who.user_id, q.user_id, q.org_path, ",".join(map(str, q.states))
        )
        async with self.read(who) as uow:
            found = await FeedbackDuties(uow).page(who, q, page, query)
        return pb.ListFeedbackDutiesResponse(
            duties=[DUTIES.present(who, d) for d in found.items],
            next_page_token=found.next_page_token,
            total_size=found.total_size or 0,
        )
