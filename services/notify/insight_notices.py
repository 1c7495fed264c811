"""integration.KeywordDigestGenerated -> the team managers' inbox: the week's top keywords customers raised.

A team's digest goes to the supervisors of its org unit (and directors above see
the tenant-wide one). Pure, apart from proto unpacking; the consumer sends it.
"""

from __future__ import annotations

from google.protobuf.struct_pb2 import Struct

from salesops.common.v1 import types_pb2
from salesops.integration.v1 import events_pb2 as integration_events
from salesops.notify.v1 import notification_pb2 as N

TOP_LINES = 10


def _trend(mentions: int, before: int) -> str:
    return "↑" if mentions > before else "↓" if mentions < before else "="


def keyword_digest(e: integration_events.KeywordDigestGenerated) -> N.Notification:
    week = f"{e.week_start_date.year:04d}-{e.week_start_date.month:02d}-{e.week_start_date.day:02d}"
    scope = e.org_path or "company"
    lines = [
        f"{n}. {k.term}: {k.mentions} ({_trend(k.mentions, k.previous_mentions)} {k.previous_mentions}), "
        f"{k.conversations} conversations, {k.leads} leads, {k.deals} deals"
        for n, k in enumerate(e.top_keywords[:TOP_LINES], start=1)
    ]
    message = f"{e.conversations_analysed} conversations analysed in the week of {week}.\n" + (
        "\n".join(lines) if lines else "No tracked keyword came up."
    )
    values = Struct()
    values.update({"title": f"{scope}: top keywords customers raised, week of {week}", "message": message})
    if e.org_path:
        target = N.OrgRoleTarget(role=types_pb2.ROLE_SUPERVISOR, org_unit_path=e.org_path)
    else:
        target = N.OrgRoleTarget(role=types_pb2.ROLE_DIRECTOR, org_unit_path="/", include_descendants=True)
    return N.Notification(
        category=N.NOTIFICATION_CATEGORY_SYSTEM,
        recipients=[N.Recipient(org_role=target)],
        template=N.TemplateContent(variables=values),
        subject=types_pb2.ResourceRef(service="integration", kind="keyword_digest", id=e.digest_id),
        dedupe_key=f"keyword_digest:{e.digest_id}",
    )
