"""Follow-ups: behaviour events, and logging, completing, reading and listing activities."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kit.auth import Principal
from kit.errors import NotFound
from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork, query_key
from salesops.leads.v1 import activity_pb2, enums_pb2, lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import followups, lead_views, regrading
from services.leads.api.base import ApiBase, Ctx, me
from services.leads.convert import enum_name, from_ts, now
from services.leads.presenters import ACTIVITIES
from services.leads.repositories.followups import ActivityRepository, ActivitySearch
from services.leads.repositories.leads import LeadRepository
from services.leads.store import ActivityRow, LeadRow


def activity_search(who: object, f: pb.ActivityFilter) -> ActivitySearch:
    return ActivitySearch(
        types=[enum_name(enums_pb2.ActivityType, t) for t in f.activity_types],
        actors=me(who, f.actor_user_ids),  # type: ignore[arg-type]
        states=[enum_name(activity_pb2.ActivityState, s) for s in f.states],
        occurred_from=from_ts(f.occur_period.start_time, "filter.occur_period.start_time"),
        occurred_before=from_ts(f.occur_period.end_time, "filter.occur_period.end_time"),
    )


class FollowUpsApi(ApiBase):
    async def CreateBehaviorEvent(
        self, request: pb.CreateBehaviorEventRequest, context: Ctx
    ) -> pb.CreateBehaviorEventResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> pb.CreateBehaviorEventResponse:
            row, changed = await regrading.add_behavior(
                uow, who, request.lead_id, request.behavior_event, now()
            )
            evt = lead_pb2.BehaviorEvent()
            evt.CopyFrom(request.behavior_event)
            evt.lead_id = row.lead_id
            lead = await lead_views.present(uow, who, row)
            return pb.CreateBehaviorEventResponse(behavior_event=evt, lead=lead, regraded=changed)

        return await self.write(who, work)

    async def CreateActivity(
        self, request: pb.CreateActivityRequest, context: Ctx
    ) -> pb.CreateActivityResponse:
        who = call.principal()
        activity, lead = await self._activity_change(
            who, lambda uow: followups.create_activity(uow, who, request.lead_id, request.activity, now())
        )
        return pb.CreateActivityResponse(activity=activity, lead=lead)

    async def ListActivities(
        self, request: pb.ListActivitiesRequest, context: Ctx
    ) -> pb.ListActivitiesResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        query = query_key("ListActivities", who.user_id, request.lead_id, request.filter)
        async with self.read(who) as uow:
            found = await followups.list_activities(
                uow, who, request.lead_id, activity_search(who, request.filter), page, query
            )
        return pb.ListActivitiesResponse(
            activities=[ACTIVITIES.present(who, r) for r in found.items],
            next_page_token=found.next_page_token,
        )

    async def UpdateActivity(
        self, request: pb.UpdateActivityRequest, context: Ctx
    ) -> pb.UpdateActivityResponse:
        who, paths = call.principal(), list(request.update_mask.paths)
        activity, lead = await self._activity_change(
            who, lambda uow: followups.update_activity(uow, who, request.activity, paths, now())
        )
        return pb.UpdateActivityResponse(activity=activity, lead=lead)

    async def _activity_change(
        self, who: Principal, change: Callable[[UnitOfWork], Awaitable[tuple[ActivityRow, LeadRow]]]
    ) -> tuple[activity_pb2.Activity, lead_pb2.Lead]:
        async def work(uow: UnitOfWork) -> tuple[activity_pb2.Activity, lead_pb2.Lead]:
            act, row = await change(uow)
            await uow.session.flush()
            return ACTIVITIES.present(who, act), await lead_views.present(uow, who, row)

        return await self.write(who, work)

    async def GetActivity(self, request: pb.GetActivityRequest, context: Ctx) -> pb.GetActivityResponse:
        who = call.principal()
        async with self.read(who) as uow:
            await LeadRepository(uow).visible(who, request.lead_id)
            row = await ActivityRepository(uow).find(request.activity_id)
        if row is None or row.lead_id != request.lead_id:
            raise NotFound("activity", request.activity_id)
        return pb.GetActivityResponse(activity=ACTIVITIES.present(who, row))
