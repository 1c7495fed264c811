"""What a viewer sees of keywords, conversations and digests: the one place deciding it.

Transcripts hold personal data: only in the FULL view (to those who may read the
conversation at all: the submitter, their managers, admins) and only before the
retention deadline. Excerpts are API only; events never carry them.
"""

from __future__ import annotations

import json

from kit.auth import Principal
from salesops.common.v1.types_pb2 import Audit
from salesops.integration.v1 import insights_pb2 as i
from services.integration.presenters import enum, stamp
from services.integration.store_insights import ConversationRow, InsightKeywordRow, KeywordDigestRow


class KeywordPresenter:
    def present(self, viewer: Principal, row: InsightKeywordRow) -> i.InsightKeyword:
        return i.InsightKeyword(
            keyword_id=row.keyword_id,
            term=row.term,
            category=enum(row.category),
            synonyms=json.loads(row.synonyms or "[]"),
            customer_only=row.customer_only,
            disabled=row.disabled,
            etag=str(row.version),
            audit=Audit(
                create_time=stamp(row.created_at),
                created_by=row.created_by,
                update_time=stamp(row.updated_at),
                updated_by=row.updated_by,
            ),
        )


class ConversationPresenter:
    def present(
        self, viewer: Principal, row: ConversationRow, view: int = i.CONVERSATION_VIEW_BASIC
    ) -> i.Conversation:
        msg = i.Conversation.FromString(row.body)
        msg.conversation_id = row.conversation_id
        msg.analysis_state = enum(row.analysis_state)
        msg.submitted_by, msg.org_path = row.submitted_by, row.org_path
        if row.findings:
            found = i.Conversation.FromString(row.findings)
            msg.keywords.extend(found.keywords)
            msg.occurrences.extend(found.occurrences)
        msg.transcript_expire_time.CopyFrom(stamp(row.transcript_expire_at))
        if view == i.CONVERSATION_VIEW_FULL and row.transcript is not None:
            msg.stored_segments.extend(i.Conversation.FromString(row.transcript).stored_segments)
        msg.audit.CopyFrom(Audit(create_time=stamp(row.created_at), created_by=row.submitted_by))
        return msg


def present_digest(row: KeywordDigestRow) -> i.KeywordDigest:
    msg = i.KeywordDigest.FromString(row.body)
    msg.digest_id = row.digest_id
    return msg
