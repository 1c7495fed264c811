"""Contributions (co-creation) and points: the RPCs and what a viewer sees of each resource."""

from __future__ import annotations

from datetime import UTC

from sqlalchemy import ColumnElement

from kit.auth import Principal
from kit.errors import InvalidArgument, PermissionDenied
from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork, query_key
from salesops.knowledge.v1 import contribution_pb2 as cpb
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1.sop_card_pb2 import SopCard
from services.knowledge import access, cards, contributions, points
from services.knowledge.api.base import ApiBase, Ctx
from services.knowledge.domain.contributions import Ranked
from services.knowledge.presenters import CARDS, ts
from services.knowledge.repositories.contributions import Contributions, PointEntries, within
from services.knowledge.store_contributions import ContributionRow, PointEntryRow


class ContributionPresenter:
    """The contributor and admins see everything; managers reading their team's cases not the attachments."""

    def present(self, viewer: Principal, row: ContributionRow, points_awarded: int = 0) -> cpb.Contribution:
        c = cpb.Contribution.FromString(row.body)
        c.contribution_id, c.kind, c.title = row.contribution_id, row.kind, row.title  # type: ignore[assignment]
        c.status = row.status  # type: ignore[assignment]
        c.contributor_user_id = row.contributor_user_id
        c.submit_time.CopyFrom(ts(row.submitted_at))
        c.reviewer_user_id = row.reviewer_user_id
        if row.reviewed_at is not None:
            c.review_time.CopyFrom(ts(row.reviewed_at))
        c.rejection_reason = row.rejection_reason  # type: ignore[assignment]
        c.review_comment = row.review_comment
        c.published_card_id = row.published_card_id
        c.points_awarded = points_awarded
        c.etag = str(row.version)
        c.audit.create_time.CopyFrom(ts(row.received_at))
        c.audit.created_by = row.contributor_user_id
        c.audit.update_time.CopyFrom(ts(row.updated_at))
        c.audit.updated_by = row.updated_by
        if not (viewer.is_admin or viewer.is_service or viewer.user_id == row.contributor_user_id):
            c.ClearField("attachments")
        return c


class PointEntryPresenter:
    def present(self, viewer: Principal, row: PointEntryRow) -> cpb.PointEntry:
        entry = cpb.PointEntry(
            entry_id=row.entry_id,
            user_id=row.user_id,
            points=row.points,
            reason=row.reason,  # type: ignore[arg-type]
            contribution_id=row.contribution_id,
            card_id=row.card_id,
            create_time=ts(row.created_at),
        )
        if viewer.is_admin or viewer.user_id == row.user_id:
            entry.note = row.note  # an admin's reason is for the person concerned and admins
        return entry


CONTRIBUTIONS = ContributionPresenter()
POINT_ENTRIES = PointEntryPresenter()


async def _present(uow: UnitOfWork, who: Principal, rows: list[ContributionRow]) -> list[cpb.Contribution]:
    awarded = await PointEntries(uow).by_contribution([r.contribution_id for r in rows])
    return [CONTRIBUTIONS.present(who, r, awarded.get(r.contribution_id, 0)) for r in rows]


class ContributionsApi(ApiBase):
    async def SubmitContribution(
        self, request: pb.SubmitContributionRequest, context: Ctx
    ) -> pb.SubmitContributionResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> cpb.Contribution:
            row = await contributions.submit(uow, who, request.contribution, cards.now())
            return (await _present(uow, who, [row]))[0]

        return pb.SubmitContributionResponse(contribution=await self.write(who, work))

    async def GetContribution(
        self, request: pb.GetContributionRequest, context: Ctx
    ) -> pb.GetContributionResponse:
        who = call.principal()
        async with self.read(who) as uow:
            row = await contributions.visible(uow, who, request.contribution_id)
            return pb.GetContributionResponse(contribution=(await _present(uow, who, [row]))[0])

    async def ListContributions(
        self, request: pb.ListContributionsRequest, context: Ctx
    ) -> pb.ListContributionsResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        where: list[ColumnElement[bool]] = list(Contributions.visible_to(who))
        if request.statuses:
            where.append(ContributionRow.status.in_(list(request.statuses)))
        if request.contributor_user_id:
            where.append(ContributionRow.contributor_user_id == request.contributor_user_id)
        if request.kind:
            where.append(ContributionRow.kind == request.kind)
        if request.submit_period.HasField("start_time"):
            where.append(
                ContributionRow.submitted_at >= request.submit_period.start_time.ToDatetime(tzinfo=UTC)
            )
        if request.submit_period.HasField("end_time"):
            where.append(ContributionRow.submitted_at < request.submit_period.end_time.ToDatetime(tzinfo=UTC))
        query = query_key(
            "ListContributions",
            who.user_id,
            list(request.statuses),
            request.contributor_user_id,
            request.kind,
            request.submit_period.SerializeToString(deterministic=True),
        )
        async with self.read(who) as uow:
            found = await Contributions(uow).page(where, page, query)
            items = await _present(uow, who, found.items)
        return pb.ListContributionsResponse(
            contributions=items, next_page_token=found.next_page_token, total_size=found.total_size or 0
        )

    async def UpdateContribution(
        self, request: pb.UpdateContributionRequest, context: Ctx
    ) -> pb.UpdateContributionResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> cpb.Contribution:
            row = await contributions.update(uow, who, request.contribution, request.update_mask, cards.now())
            return (await _present(uow, who, [row]))[0]

        return pb.UpdateContributionResponse(contribution=await self.write(who, work))

    async def WithdrawContribution(
        self, request: pb.WithdrawContributionRequest, context: Ctx
    ) -> pb.WithdrawContributionResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> cpb.Contribution:
            row = await contributions.withdraw(uow, who, request.contribution_id, request.etag, cards.now())
            return (await _present(uow, who, [row]))[0]

        return pb.WithdrawContributionResponse(contribution=await self.write(who, work))

    async def AcceptContribution(
        self, request: pb.AcceptContributionRequest, context: Ctx
    ) -> pb.AcceptContributionResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> tuple[cpb.Contribution, SopCard]:
            row, card = await contributions.accept(
                uow,
                who,
                request.contribution_id,
                request.card,
                request.review_comment,
                request.etag,
                cards.now(),
            )
            return (await _present(uow, who, [row]))[0], CARDS.present(who, card)

        contribution, card = await self.write(who, work)
        return pb.AcceptContributionResponse(contribution=contribution, card=card)

    async def RejectContribution(
        self, request: pb.RejectContributionRequest, context: Ctx
    ) -> pb.RejectContributionResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> cpb.Contribution:
            row = await contributions.reject(
                uow,
                who,
                request.contribution_id,
                request.rejection_reason,
                request.review_comment,
                request.etag,
                cards.now(),
            )
            return (await _present(uow, who, [row]))[0]

        return pb.RejectContributionResponse(contribution=await self.write(who, work))

    async def GetContributorLeaderboard(
        self, request: pb.GetContributorLeaderboardRequest, context: Ctx
    ) -> pb.GetContributorLeaderboardResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token, default=10, maximum=100)
        org = request.org_path.strip("/")
        if len(org) > 200 or any(not p or p in {".", ".."} for p in org.split("/") if org):
            raise InvalidArgument.field("org_path", "an org path like east/team-a, or empty")
        query = query_key("GetContributorLeaderboard", request.period, org)
        async with self.read(who) as uow:
            start, end = await points.period_bounds(uow, request.period, cards.now())
            ranked, standings, counts = await points.leaderboard(uow, start, end, org)
            offset = int(uow.tokens.decode(request.page_token, who.tenant, query)[0]) if page.token else 0
        if offset < 0:
            raise InvalidArgument.field("page_token", "not a page token of this request")

        def entry(r: Ranked) -> cpb.LeaderboardEntry:
            s = standings[r.user_id]
            submitted, accepted = counts.get(r.user_id, (0, 0))
            return cpb.LeaderboardEntry(
                rank=r.rank,
                user_id=r.user_id,
                display_name=r.user_id,  # the service keeps no user directory
                org_path=s.org,
                points=r.points,
                submitted_contributions=submitted,
                accepted_contributions=accepted,
                uses_by_others=s.uses_by_others,
            )

        window = ranked[offset : offset + page.size]
        token = ""
        if offset + page.size < len(ranked):
            token = self.tx.tokens.encode(who.tenant, query, [offset + page.size])
        response = pb.GetContributorLeaderboardResponse(
            entries=[entry(r) for r in window], next_page_token=token
        )
        mine = next((r for r in ranked if r.user_id == who.user_id), None)
        if mine is not None:
            response.caller_entry.CopyFrom(entry(mine))
        if start is not None and end is not None:
            response.period.start_time.CopyFrom(ts(start))
            response.period.end_time.CopyFrom(ts(end))
        return response

    async def ListPointEntries(
        self, request: pb.ListPointEntriesRequest, context: Ctx
    ) -> pb.ListPointEntriesResponse:
        who = call.principal()
        user = request.user_id or who.user_id
        where: list[ColumnElement[bool]] = []
        if user != who.user_id and not (who.is_admin or who.is_service):
            if not (access.is_manager(who) and who.org):
                raise PermissionDenied("a rep sees their own points", reason="OWN_POINTS_ONLY")
            where.append(within(PointEntryRow.user_org, who.org))  # managers: their subtree's entries
        page = PageRequest.parse(request.page_size, request.page_token)
        async with self.read(who) as uow:
            repo = PointEntries(uow)
            found = await repo.ledger(user, where, page, query_key("ListPointEntries", user, who.org))
            total = await repo.total(user, where)
        return pb.ListPointEntriesResponse(
            entries=[POINT_ENTRIES.present(who, e) for e in found.items],
            next_page_token=found.next_page_token,
            total_points=total,
        )

    async def AdjustPoints(self, request: pb.AdjustPointsRequest, context: Ctx) -> pb.AdjustPointsResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> cpb.PointEntry:
            row = await points.adjust(
                uow, who, request.request_id, request.user_id, request.points, request.note, cards.now()
            )
            return POINT_ENTRIES.present(who, row)

        return pb.AdjustPointsResponse(entry=await self.write(who, work))
