"""Member profiles: the sales org as the directory describes it."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, true

from kit.auth import Principal
from kit.resources import Page, PageRequest, Repository, Sort, contains
from services.pipeline import access
from services.pipeline.repositories.deals import in_org
from services.pipeline.store import MemberProfileRow


def profiles_visible_to(who: Principal) -> ColumnElement[bool]:
    """Admins and partner systems: everyone; others: themselves and their org unit and below."""
    if access.sees_all(who):
        return true()
    mine: ColumnElement[bool] = MemberProfileRow.user_id == who.user_id
    org = who.org.strip("/")
    return or_(mine, in_org(MemberProfileRow.org_path, org)) if org else mine


class MemberProfiles(Repository[MemberProfileRow]):
    model = MemberProfileRow
    resource = "pipeline.MemberProfile"
    key = ("user_id",)

    async def page(
        self,
        who: Principal,
        org_path: str,
        approver_role: str,
        include_inactive: bool,
        page: PageRequest,
        query: str,
    ) -> Page[MemberProfileRow]:
        where: list[ColumnElement[bool]] = [profiles_visible_to(who)]
        if org_path:
            where.append(in_org(MemberProfileRow.org_path, org_path.strip("/")))
        if approver_role:
            where.append(contains(MemberProfileRow.approver_roles, f",{approver_role},", case_sensitive=True))
        if not include_inactive:
            where.append(MemberProfileRow.active.is_(True))
        return await self.list(where, [Sort(MemberProfileRow.user_id)], page, query)
