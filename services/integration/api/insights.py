"""Conversation insights: the keyword dictionary (admins), conversations (the team), weekly digests (managers)."""

from __future__ import annotations

from kit.errors import InvalidArgument
from kit.grpc import context as call
from kit.resources import PageRequest
from salesops.integration.v1 import integration_service_pb2 as pb
from services.integration import insights
from services.integration.api.base import ApiBase, Ctx, now
from services.integration.insight_access import (
    check_digest_readable,
    check_readable,
    conversation_scope,
    digest_scope,
    require_keyword_admin,
    require_member,
)
from services.integration.insight_presenters import ConversationPresenter, KeywordPresenter, present_digest
from services.integration.repositories.insights import Conversations, InsightKeywords, KeywordDigests

KEYWORD = KeywordPresenter()
CONVERSATION = ConversationPresenter()


class InsightsApi(ApiBase):
    async def CreateInsightKeyword(
        self, request: pb.CreateInsightKeywordRequest, context: Ctx
    ) -> pb.CreateInsightKeywordResponse:
        who = call.principal()
        require_keyword_admin(who)
        at = now()
        row = await self.write(who, lambda uow: insights.create_keyword(uow, who, request.keyword, at))
        return pb.CreateInsightKeywordResponse(keyword=KEYWORD.present(who, row))

    async def ListInsightKeywords(
        self, request: pb.ListInsightKeywordsRequest, context: Ctx
    ) -> pb.ListInsightKeywordsResponse:
        who = call.principal()
        require_member(who)
        page = PageRequest.parse(request.page_size, request.page_token, default=100)
        async with self.read(who) as uow:
            found = await InsightKeywords(uow).page(request.category, request.include_disabled, page)
        return pb.ListInsightKeywordsResponse(
            keywords=[KEYWORD.present(who, r) for r in found.items], next_page_token=found.next_page_token
        )

    async def UpdateInsightKeyword(
        self, request: pb.UpdateInsightKeywordRequest, context: Ctx
    ) -> pb.UpdateInsightKeywordResponse:
        who = call.principal()
        require_keyword_admin(who)
        at = now()
        row = await self.write(
            who, lambda uow: insights.update_keyword(uow, who, request.keyword, request.update_mask, at)
        )
        return pb.UpdateInsightKeywordResponse(keyword=KEYWORD.present(who, row))

    async def DeleteInsightKeyword(
        self, request: pb.DeleteInsightKeywordRequest, context: Ctx
    ) -> pb.DeleteInsightKeywordResponse:
        who = call.principal()
        require_keyword_admin(who)
        await self.write(who, lambda uow: insights.delete_keyword(uow, request.keyword_id))
        return pb.DeleteInsightKeywordResponse()

    async def SubmitConversation(
        self, request: pb.SubmitConversationRequest, context: Ctx
    ) -> pb.SubmitConversationResponse:
        who = call.principal()
        require_member(who)
        at = now()
        row = await self.write(
            who, lambda uow: insights.submit_conversation(uow, who, request.conversation, at)
        )
        check_readable(who, row.conversation_id, row.submitted_by, row.org_path)
        return pb.SubmitConversationResponse(conversation=CONVERSATION.present(who, row))

    async def GetConversation(
        self, request: pb.GetConversationRequest, context: Ctx
    ) -> pb.GetConversationResponse:
        who = call.principal()
        require_member(who)
        async with self.read(who) as uow:
            row = await Conversations(uow).get(request.conversation_id)
        check_readable(who, row.conversation_id, row.submitted_by, row.org_path)
        return pb.GetConversationResponse(conversation=CONVERSATION.present(who, row, request.view))

    async def ListConversations(
        self, request: pb.ListConversationsRequest, context: Ctx
    ) -> pb.ListConversationsResponse:
        who = call.principal()
        scope = conversation_scope(who)
        page = PageRequest.parse(request.page_size, request.page_token)
        period = request.start_period
        since = (
            insights.request_time(period.start_time, "start_period.start_time")
            if period.HasField("start_time")
            else None
        )
        until = (
            insights.request_time(period.end_time, "start_period.end_time")
            if period.HasField("end_time")
            else None
        )
        if since is not None and until is not None and until <= since:
            raise InvalidArgument.field("start_period.end_time", "must be after start_time")
        async with self.read(who) as uow:
            found = await Conversations(uow).page(
                lead_id=request.lead_id,
                deal_id=request.deal_id,
                customer_id=request.customer_id,
                keyword_id=request.keyword_id,
                since=since,
                until=until,
                submitted_by=scope.submitted_by,
                org_paths=scope.org_paths,
                page=page,
            )
        return pb.ListConversationsResponse(
            conversations=[CONVERSATION.present(who, r) for r in found.items],
            next_page_token=found.next_page_token,
        )

    async def GetKeywordDigest(
        self, request: pb.GetKeywordDigestRequest, context: Ctx
    ) -> pb.GetKeywordDigestResponse:
        who = call.principal()
        async with self.read(who) as uow:
            row = await KeywordDigests(uow).get(request.digest_id)
        check_digest_readable(who, row.digest_id, row.org_path)
        return pb.GetKeywordDigestResponse(digest=present_digest(row))

    async def ListKeywordDigests(
        self, request: pb.ListKeywordDigestsRequest, context: Ctx
    ) -> pb.ListKeywordDigestsResponse:
        who = call.principal()
        paths = digest_scope(who, request.org_path)
        page = PageRequest.parse(request.page_size, request.page_token, default=10, maximum=100)
        since = request.since_week
        since_week = f"{since.year:04d}-{since.month:02d}-{since.day:02d}" if since.year else ""
        async with self.read(who) as uow:
            found = await KeywordDigests(uow).page(request.org_path.strip("/"), since_week, paths, page)
        return pb.ListKeywordDigestsResponse(
            digests=[present_digest(r) for r in found.items], next_page_token=found.next_page_token
        )


__all__ = ["InsightsApi"]
