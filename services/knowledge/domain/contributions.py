"""Co-creation rules: a contribution's checks and lifecycle, the light card made from it, points (pure).

Status: SUBMITTED -> ACCEPTED | REJECTED | WITHDRAWN, nothing after. Accepting makes a
LIGHT card: the reviewer's edits win, empty content is derived from the case (title,
scenario, industry, stage; each line of `actions` a must-do action; each objection an
action with the answer that worked as its example).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from salesops.knowledge.v1.contribution_pb2 import (
    Contribution,
    ContributionKind,
    ContributionStatus,
)
from salesops.knowledge.v1.sop_card_pb2 import CardAction, SopCard
from services.knowledge.domain.cards import CODE, KEY, LANGUAGES, LIMITS, MAX_ITEMS, Problem

SUBMITTED = ContributionStatus.CONTRIBUTION_STATUS_SUBMITTED
ACCEPTED = ContributionStatus.CONTRIBUTION_STATUS_ACCEPTED
REJECTED = ContributionStatus.CONTRIBUTION_STATUS_REJECTED
WITHDRAWN = ContributionStatus.CONTRIBUTION_STATUS_WITHDRAWN

TITLE_MAX = 120
TEXT_MAX = 4000
MAX_OBJECTIONS = 20
MAX_ATTACHMENTS = 10
COMMENT_MAX = 2000
# Fields the contributor may change while SUBMITTED (UpdateContribution's mask).
EDITABLE = frozenset(
    {
        "kind",
        "title",
        "language_code",
        "situation",
        "actions",
        "outcome",
        "objections",
        "scenario",
        "industry",
        "stage_id",
        "deal_id",
        "lead_id",
        "attachments",
    }
)


def check(c: Contribution) -> list[Problem]:
    """What is malformed in a contribution (every problem at once)."""
    problems: list[Problem] = []
    if c.kind not in ContributionKind.values() or c.kind == ContributionKind.CONTRIBUTION_KIND_UNSPECIFIED:
        problems.append(Problem("contribution.kind", "required: a ContributionKind"))
    if not c.title.strip():
        problems.append(Problem("contribution.title", "required"))
    elif len(c.title) > TITLE_MAX:
        problems.append(Problem("contribution.title", f"at most {TITLE_MAX} characters"))
    if c.language_code and c.language_code not in LANGUAGES:
        problems.append(Problem("contribution.language_code", f"one of {', '.join(LANGUAGES)}"))
    for name in ("situation", "actions", "outcome"):
        if len(getattr(c, name)) > TEXT_MAX:
            problems.append(Problem(f"contribution.{name}", f"at most {TEXT_MAX} characters"))
    if not (c.situation.strip() or c.actions.strip() or c.objections):
        problems.append(
            Problem("contribution.actions", "say what happened: situation, actions or objections")
        )
    if len(c.objections) > MAX_OBJECTIONS:
        problems.append(Problem("contribution.objections", f"at most {MAX_OBJECTIONS}"))
    for i, o in enumerate(c.objections):
        for name in ("objection", "response"):
            text = getattr(o, name)
            if not text.strip():
                problems.append(Problem(f"contribution.objections[{i}].{name}", "required"))
            elif len(text) > LIMITS["example"]:
                problems.append(
                    Problem(f"contribution.objections[{i}].{name}", f"at most {LIMITS['example']} characters")
                )
    if c.scenario and not KEY.match(c.scenario):
        problems.append(Problem("contribution.scenario", "a lower_snake_case key"))
    for name in ("industry", "stage_id"):
        value = getattr(c, name)
        if value and not CODE.match(value):
            problems.append(Problem(f"contribution.{name}", "not a valid code"))
    if len(c.attachments) > MAX_ATTACHMENTS:
        problems.append(Problem("contribution.attachments", f"at most {MAX_ATTACHMENTS}"))
    return problems


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def light_card(c: Contribution, edited: SopCard) -> SopCard:
    """The card to publish: the reviewer's `edited` card with empty content derived from `c`."""
    card = SopCard()
    card.CopyFrom(edited)
    card.title = card.title or _clip(c.title, LIMITS["title"])
    card.scenario = card.scenario or c.scenario
    card.language_code = card.language_code or c.language_code or "zh-CN"
    if not card.summary:
        card.summary = _clip("\n".join(t for t in (c.situation, c.outcome) if t.strip()), LIMITS["summary"])
    if not card.industries and c.industry:
        card.industries.append(c.industry)
    if not card.stage_ids and c.stage_id:
        card.stage_ids.append(c.stage_id)
    if not card.must_do_actions:
        steps = [line.strip(" -*•\t") for line in c.actions.splitlines()]
        actions = [CardAction(text=_clip(s, LIMITS["text"])) for s in steps if s]
        actions += [
            CardAction(text=_clip(o.objection, LIMITS["text"]), example=_clip(o.response, LIMITS["example"]))
            for o in c.objections
        ]
        card.must_do_actions.extend(actions[:MAX_ITEMS])
    return card


def capped(points: int, booked_this_month: int, cap: int) -> int:
    """Use-based points still allowed for a card this month (0 = the cap is reached)."""
    if points <= 0:
        return 0
    return max(0, min(points, cap - booked_this_month)) if cap > 0 else points


@dataclass(frozen=True)
class Ranked:
    rank: int
    user_id: str
    points: int


def rank(rows: Sequence[tuple[str, int]]) -> list[Ranked]:
    """Competition ranking ("1, 1, 3"): rows sorted by points desc then user id; ties share a rank."""
    ordered = sorted(rows, key=lambda r: (-r[1], r[0]))
    out: list[Ranked] = []
    for i, (user, points) in enumerate(ordered):
        position = out[-1].rank if out and out[-1].points == points else i + 1
        out.append(Ranked(position, user, points))
    return out


def period_dates(period: str, today: date) -> tuple[date, date] | None:
    """[first day, first day after) of the calendar month / quarter / year holding `today`; None = all time."""
    if period == "month":
        start = today.replace(day=1)
        end = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    elif period == "quarter":
        first = (today.month - 1) // 3 * 3 + 1
        start = date(today.year, first, 1)
        end = date(today.year + (first + 3 > 12), (first + 2) % 12 + 1, 1)
    elif period == "year":
        start, end = date(today.year, 1, 1), date(today.year + 1, 1, 1)
    else:
        return None
    return start, end
