"""Admin-configured resources stored as a serialized proto (`payload`) beside the columns
their lists filter and sort on: templates, channel configurations, escalation policies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, select

from kit.resources import Repository
from services.notify.store import ChannelConfigRow, EscalationPolicyRow, PreferenceRow, TemplateRow


class TemplateRepository(Repository[TemplateRow]):
    model = TemplateRow
    resource = "notify.Template"
    key = ("id",)
    version = "revision"

    async def by_key(self, template_key: str, locale: str) -> TemplateRow | None:
        row = await self.session.scalar(
            select(TemplateRow).where(TemplateRow.template_key == template_key, TemplateRow.locale == locale)
        )
        return row

    async def matching(self, where: Sequence[ColumnElement[bool]]) -> list[TemplateRow]:
        """A tenant's own templates (tens at most): merged with the built-ins by the caller."""
        return list(await self.session.scalars(select(TemplateRow).where(*where)))


class ChannelConfigRepository(Repository[ChannelConfigRow]):
    model = ChannelConfigRow
    resource = "notify.ChannelConfig"
    key = ("id",)

    async def matching(self, where: Sequence[ColumnElement[bool]]) -> list[ChannelConfigRow]:
        return list(await self.session.scalars(select(ChannelConfigRow).where(*where)))

    async def enabled(self, config_id: str) -> ChannelConfigRow | None:
        row = await self.session.scalar(
            select(ChannelConfigRow).where(
                ChannelConfigRow.id == config_id, ChannelConfigRow.enabled.is_(True)
            )
        )
        return row


class EscalationPolicyRepository(Repository[EscalationPolicyRow]):
    model = EscalationPolicyRow
    resource = "notify.EscalationPolicy"
    key = ("id",)

    async def everything(self) -> list[EscalationPolicyRow]:
        return list(await self.session.scalars(select(EscalationPolicyRow)))


def filters(*conditions: tuple[bool, Any]) -> list[ColumnElement[bool]]:
    """The conditions whose flag is set: a typed filter's parts that the request filled in."""
    return [c for on, c in conditions if on]


class PreferenceRepository(Repository[PreferenceRow]):
    model = PreferenceRow
    resource = "notify.Preference"
    key = ("user_id",)

    async def of_users(self, user_ids: list[str]) -> list[PreferenceRow]:
        found: list[PreferenceRow] = []
        for start in range(0, len(user_ids), 500):
            chunk = user_ids[start : start + 500]
            found += list(
                await self.session.scalars(select(PreferenceRow).where(PreferenceRow.user_id.in_(chunk)))
            )
        return found
