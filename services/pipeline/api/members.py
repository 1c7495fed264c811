"""Member profiles: read in the caller's org scope, written by admins and directory sync."""

from __future__ import annotations

from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork, present_all, query_key
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import settings_pb2
from services.pipeline import members
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.convert import now
from services.pipeline.presenters import MEMBERS
from services.pipeline.repositories.members import MemberProfiles


class MembersApi(ApiBase):
    async def GetMemberProfile(
        self, request: pb.GetMemberProfileRequest, context: Ctx
    ) -> pb.GetMemberProfileResponse:
        who = call.principal()
        async with self.read(who) as uow:
            row = await members.visible(uow, who, request.user_id)
            return pb.GetMemberProfileResponse(member_profile=MEMBERS.present(who, row))

    async def ListMemberProfiles(
        self, request: pb.ListMemberProfilesRequest, context: Ctx
    ) -> pb.ListMemberProfilesResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        query = query_key(
            "ListMemberProfiles",
            who.user_id,
            request.org_path,
            request.approver_role,
            request.include_inactive,
        )
        async with self.read(who) as uow:
            found = await MemberProfiles(uow).page(
                who, request.org_path, request.approver_role, request.include_inactive, page, query
            )
        return pb.ListMemberProfilesResponse(
            member_profiles=present_all(MEMBERS, who, found.items), next_page_token=found.next_page_token
        )

    async def UpdateMemberProfile(
        self, request: pb.UpdateMemberProfileRequest, context: Ctx
    ) -> pb.UpdateMemberProfileResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> settings_pb2.MemberProfile:
            row = await members.update_profile(
                uow, who, request.member_profile, request.update_mask, request.allow_missing, now()
            )
            return MEMBERS.present(who, row)

        return pb.UpdateMemberProfileResponse(member_profile=await self.write(who, work))
