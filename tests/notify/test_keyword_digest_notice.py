"""integration's weekly keyword digest reaches the team's managers' inbox through notify's consumer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kit.runtime import build_consumer
from salesops.integration.v1 import events_pb2 as ev
from salesops.integration.v1 import insights_pb2 as i
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from services.notify import consumers
from services.notify.app import SPEC
from tests.notify.conftest import SUP_A, NotifyStack, auth, token
from tests.notify.test_event_consumption import _publish, _wait_items

SUP_B = token("sup-b", ["supervisor"], org="east/team-b")
DIRECTOR = token("director-east", ["director"], org="east")


def digest(digest_id: str, org_path: str) -> ev.KeywordDigestGenerated:
    e = ev.KeywordDigestGenerated(digest_id=digest_id, org_path=org_path, conversations_analysed=7)
    e.week_start_date.year, e.week_start_date.month, e.week_start_date.day = 2026, 11, 30
    e.top_keywords.add(
        keyword_id="kw-budget",
        term="预算",
        category=i.KEYWORD_CATEGORY_BUDGET,
        mentions=5,
        conversations=4,
        leads=1,
        deals=3,
        previous_mentions=2,
    )
    return e


async def test_team_digest_to_its_supervisor_company_digest_to_directors(
    notify: NotifyStack, tmp_path: Path
) -> None:
    consumer = build_consumer(notify.rt, SPEC, consumers.CONSUMER, block=0.05)
    task = asyncio.create_task(consumer.run())
    try:
        events: list[tuple[str, object]] = [
            ("integration.KeywordDigestGenerated", digest("DG-A", "east/team-a")),
            ("integration.KeywordDigestGenerated", digest("DG-A", "east/team-a")),  # re-emitted: one item
            ("integration.KeywordDigestGenerated", digest("DG-ALL", "")),
        ]
        await _publish(tmp_path, notify.rt.redis, "integration", events)
        assert await _wait_items(notify, 2) == 2
    finally:
        await consumer.stop()
        await task

    async def items(bearer: str) -> list[object]:
        return list(
            (await notify.stub.ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(bearer))).items
        )

    [team] = await items(SUP_A)
    assert team.category == N.NOTIFICATION_CATEGORY_SYSTEM and team.subject.id == "DG-A"  # type: ignore[attr-defined]
    assert "top keywords" in team.title and "预算: 5 (↑ 2)" in team.body  # type: ignore[attr-defined]
    assert await items(SUP_B) == []
    [company] = await items(DIRECTOR)
    assert company.subject.id == "DG-ALL"  # type: ignore[attr-defined]
