"""Rep profiles: read within the caller's org scope, with live load; changed by the rep's managers."""

from __future__ import annotations

from kit.auth import Principal
from kit.errors import PermissionDenied
from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork, query_key
from salesops.leads.v1 import leads_service_pb2 as pb
from salesops.leads.v1 import routing_pb2
from services.leads import access, reps
from services.leads.api.base import ApiBase, Ctx
from services.leads.convert import now
from services.leads.repositories.reps import RepRepository


def list_scope(who: Principal, team_path: str) -> str:
    """The org subtree to list: the one asked for if it is in the caller's scope, else the caller's own."""
    if team_path:
        if not access.in_scope(who, team_path):
            raise PermissionDenied(f"team {team_path!r} is outside your org scope", reason="OUT_OF_SCOPE")
        return team_path
    if access.sees_all(who):
        return ""
    if not who.org:
        raise PermissionDenied("your token carries no org unit to list", reason="OUT_OF_SCOPE")
    return who.org


class RepProfilesApi(ApiBase):
    async def GetRepProfile(self, request: pb.GetRepProfileRequest, context: Ctx) -> pb.GetRepProfileResponse:
        who = call.principal()
        user = who.user_id if request.user_id == "me" else request.user_id
        async with self.read(who) as uow:
            row = await RepRepository(uow).get(user)
            reps.require_in_scope(who, user, row.team_path)
            (live,) = await reps.live(uow, [row])
        return pb.GetRepProfileResponse(rep_profile=reps.PRESENTER.present(who, live))

    async def ListRepProfiles(
        self, request: pb.ListRepProfilesRequest, context: Ctx
    ) -> pb.ListRepProfilesResponse:
        who = call.principal()
        team = list_scope(who, request.team_path)
        page = PageRequest.parse(request.page_size, request.page_token)
        query = query_key(
            "ListRepProfiles",
            team,
            request.available_now if request.HasField("available_now") else None,
            sorted(request.skills),
        )
        at = now()
        out = pb.ListRepProfilesResponse()
        async with self.read(who) as uow:
            repo = RepRepository(uow)
            # Availability and skills are computed from the profile: page through the team in key order,
            # keep the matches, and stop once the page is full (the token marks the last row examined).
            token, wanted = page.token, page.size
            while True:
                found = await repo.page_in_team(team, PageRequest(wanted, token), query)
                for live in await reps.live(uow, found.items):
                    p = reps.PRESENTER.present(who, live, at)
                    if request.HasField("available_now") and p.available_now != request.available_now:
                        continue
                    if request.skills and not set(request.skills) <= set(p.skills):
                        continue
                    out.rep_profiles.append(p)
                wanted = page.size - len(out.rep_profiles)
                token = found.next_page_token
                if not token or wanted == 0:
                    break
            out.next_page_token = token
        return out

    async def UpdateRepProfile(
        self, request: pb.UpdateRepProfileRequest, context: Ctx
    ) -> pb.UpdateRepProfileResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> routing_pb2.RepProfile:
            live = await reps.update_rep_profile(
                uow,
                who,
                request.rep_profile,
                list(request.update_mask.paths),
                allow_missing=request.allow_missing,
                at=now(),
            )
            return reps.PRESENTER.present(who, live)

        return pb.UpdateRepProfileResponse(rep_profile=await self.write(who, work))
