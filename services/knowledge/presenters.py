"""What a viewer sees of a card, its versions and its history: the one place that decides.

Reps see the card as published: review notes (status reason, who moved it) and the
org paths of its audience are for the card's managers. Access itself (may the
viewer see the card at all) is decided before, in access.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from google.protobuf.timestamp_pb2 import Timestamp

from kit.auth import Principal
from salesops.knowledge.v1.sop_card_pb2 import CardStatusChange, SopCard, SopCardStats, SopCardVersion
from services.knowledge import access
from services.knowledge.store import SopCardRow, SopCardStatusChangeRow, SopCardVersionRow

if TYPE_CHECKING:
    from services.knowledge.card_stats import CardStats


def ts(value: datetime | None) -> Timestamp:
    out = Timestamp()
    if value is not None:
        out.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return out


def card_body(row: SopCardRow) -> SopCard:
    """The stored card with its server-set fields filled in from the columns (columns win)."""
    card = SopCard.FromString(row.body)
    card.card_id = row.card_id
    card.status = row.status  # type: ignore[assignment]
    card.kind = row.kind  # type: ignore[assignment]
    card.author_user_id = row.author_user_id
    card.owner_user_id = row.owner_user_id
    card.status_reason = row.status_reason
    card.status_changed_by_user_id = row.status_changed_by
    card.status_change_time.CopyFrom(ts(row.status_changed_at))
    card.version = row.published_version
    if row.published_at is not None:
        card.publish_time.CopyFrom(ts(row.published_at))
    card.etag = str(row.version)
    card.audit.create_time.CopyFrom(ts(row.created_at))
    card.audit.created_by = row.created_by
    card.audit.update_time.CopyFrom(ts(row.updated_at))
    card.audit.updated_by = row.updated_by
    return card


class CardPresenter:
    def present(self, viewer: Principal, row: SopCardRow) -> SopCard:
        card = card_body(row)
        if not (access.manages_cards(viewer) or row.author_user_id == viewer.user_id):
            for name in ("status_reason", "status_changed_by_user_id", "visible_org_paths"):
                card.ClearField(name)
        return card


def present_stats(stats: CardStats) -> SopCardStats:
    w, lift = stats.window, stats.lift
    out = SopCardStats(
        uses_30d=w.uses,
        distinct_users_30d=w.users,
        feedback_fully_30d=w.fully,
        feedback_partly_30d=w.partly,
        feedback_not_applicable_30d=w.not_applicable,
        negative_rate_30d=round(stats.negative_rate, 4),
        lift_used_deals=lift.used_deals,
        lift_comparable_deals=lift.comparable_deals,
        lift_min_sample=lift.min_sample,
    )
    if w.last_used_at is not None:
        out.last_used_time.CopyFrom(ts(w.last_used_at))
    if lift.enough_data and lift.lift is not None:
        out.win_rate_lift_pp = round(lift.lift.rate * 100, 2)
        out.win_rate_lift_low_pp = round(lift.lift.low * 100, 2)
        out.win_rate_lift_high_pp = round(lift.lift.high * 100, 2)
    return out


class VersionPresenter:
    def present(self, viewer: Principal, row: SopCardVersionRow) -> SopCardVersion:
        version = SopCardVersion.FromString(row.body)
        if not access.manages_cards(viewer):
            version.card.ClearField("visible_org_paths")
        return version


class StatusChangePresenter:
    def present(self, viewer: Principal, row: SopCardStatusChangeRow) -> CardStatusChange:
        return CardStatusChange(
            card_id=row.card_id,
            from_status=row.from_status,  # type: ignore[arg-type]
            to_status=row.to_status,  # type: ignore[arg-type]
            actor_user_id=row.actor_user_id,
            reason=row.reason,
            version=row.card_version,
            change_time=ts(row.changed_at),
        )


CARDS = CardPresenter()
VERSIONS = VersionPresenter()
STATUS_CHANGES = StatusChangePresenter()
