"""SopCardStats for the cards a caller reads: 30-day usage and feedback from the maintained day
counters, the negative rate as the monthly iteration counts it, and the card's lift pooled over its
industry x stage cells from the lift cache (or "not enough data" with the samples so far)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kit.resources import UnitOfWork
from services.knowledge.domain.iteration import feedback_negative_rate
from services.knowledge.domain.lift import DEFAULT_MIN_SAMPLE, CellCounts, Lift, lift_of
from services.knowledge.knowledge_settings import STORE
from services.knowledge.repositories.outcomes import LiftCells
from services.knowledge.repositories.usage_days import CardWindow, UsageDays, window_start


@dataclass(frozen=True)
class CardStats:
    window: CardWindow
    negative_rate: float
    lift: Lift


async def stats_of(uow: UnitOfWork, card_ids: Sequence[str], now: datetime) -> dict[str, CardStats]:
    if not card_ids:
        return {}
    settings = await STORE.get(uow)
    min_sample = settings.recommendation.lift_min_sample or DEFAULT_MIN_SAMPLE
    half = settings.iteration.partly_counts_half_negative
    windows = await UsageDays(uow).windows(card_ids, window_start(now))
    pooled = await LiftCells(uow).pooled(card_ids)
    out: dict[str, CardStats] = {}
    for card_id, w in windows.items():
        negative = feedback_negative_rate(w.fully, w.partly, w.not_applicable, half)
        lift = lift_of(pooled.get(card_id, CellCounts(0, 0, 0, 0)), min_sample)
        out[card_id] = CardStats(w, negative, lift)
    return out
