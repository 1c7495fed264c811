"""The weekly keyword digests of a tenant: one tenant-wide and one per team. Never commit.

Made by the weekly schedule (insight_workflows) for the previous Monday-to-Sunday
week: one digest per org subtree and week, held by a unique key, so a re-run of
the week makes none twice. Each new digest emits KeywordDigestGenerated, which
notify turns into an inbox item for the team's managers. The same run deletes
transcripts past their retention deadline (the keywords found stay).
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from ulid import ULID

from kit.resources import UnitOfWork
from salesops.common.v1.types_pb2 import Period
from salesops.integration.v1 import events_pb2 as ev
from salesops.integration.v1 import insights_pb2 as i
from services.integration import integration_settings
from services.integration.domain import keyword_digest as kd
from services.integration.repositories.insights import Conversations, Hits, KeywordDigests
from services.integration.store_insights import KeywordDigestRow


def _stamp(at: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(at)
    return out


async def _figures(uow: UnitOfWork, week: kd.Week, org_path: str) -> list[kd.Figure]:
    rows = await Hits(uow).week().figures(week.start, week.end, org_path)
    return [kd.Figure(*r) for r in rows]


async def digest_of(
    uow: UnitOfWork, week: kd.Week, org_path: str, at: datetime, top: int = kd.DEFAULT_TOP
) -> tuple[KeywordDigestRow | None, bool]:
    """The week's digest of `org_path` ("" = the tenant), made now unless it exists; True if made now."""
    repo = KeywordDigests(uow)
    found = await repo.of_week(week.key, org_path)
    if found is not None:
        return found, False
    analysed = await Hits(uow).week().conversations(week.start, week.end, org_path)
    if not analysed:
        return None, False  # a week without conversations has nothing to tell
    before = {f.keyword_id: f.mentions for f in await _figures(uow, week.before(), org_path)}
    trends = kd.rank(await _figures(uow, week, org_path), before, top)
    digest = i.KeywordDigest(
        digest_id=str(ULID()),
        period=Period(start_time=_stamp(week.start), end_time=_stamp(week.end)),
        org_path=org_path,
        conversations_analysed=analysed,
        generate_time=_stamp(at),
    )
    monday = digest.week_start_date
    monday.year, monday.month, monday.day = week.monday.year, week.monday.month, week.monday.day
    for t in trends:
        f = t.figure
        digest.top_keywords.add(
            keyword_id=f.keyword_id,
            term=f.term,
            category=f.category,  # type: ignore[arg-type]
            mentions=f.mentions,
            conversations=f.conversations,
            leads=f.leads,
            deals=f.deals,
            previous_mentions=t.previous_mentions,
        )
    row = KeywordDigestRow(
        digest_id=digest.digest_id,
        week_start=week.key,
        org_path=org_path,
        generated_at=at,
        body=digest.SerializeToString(deterministic=True),
    )
    await repo.add(row)
    event = ev.KeywordDigestGenerated(
        digest_id=digest.digest_id,
        week_start_date=digest.week_start_date,
        org_path=org_path,
        conversations_analysed=analysed,
        top_keywords=digest.top_keywords,
    )
    await uow.emit("integration.KeywordDigestGenerated", event, subject=digest.digest_id)
    return row, True


async def make_weekly(uow: UnitOfWork, at: datetime, zone: str | None = None) -> list[str]:
    """The previous week's digests (tenant-wide and per team); returns the ids made now.

    The week is the tenant's (IntegrationSettings.time_zone unless `zone` is given), the top N its.
    """
    policy = await integration_settings.get(uow)
    week = kd.previous_week(at, zone or integration_settings.digest_zone(policy))
    top = integration_settings.digest_top_n(policy)
    made: list[str] = []
    for org_path in ["", *await Hits(uow).week().teams(week.start, week.end)]:
        row, new = await digest_of(uow, week, org_path, at, top)
        if new and row is not None:
            made.append(row.digest_id)
    await Conversations(uow).expire_transcripts(at)
    return made
