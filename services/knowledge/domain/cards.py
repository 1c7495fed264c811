"""SOP card rules: the lifecycle, what a card needs before review, and who sees a published card.

Pure: no I/O. The use cases (services/knowledge/cards.py) ask these and write what they decide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from salesops.knowledge.v1.sop_card_pb2 import CardStatus, CardVisibility, SopCard

DRAFT = CardStatus.CARD_STATUS_DRAFT
IN_REVIEW = CardStatus.CARD_STATUS_IN_REVIEW
PUBLISHED = CardStatus.CARD_STATUS_PUBLISHED
RETIRED = CardStatus.CARD_STATUS_RETIRED

# Lifecycle call -> (statuses it may start from, status it leads to).
TRANSITIONS: dict[str, tuple[frozenset[int], int]] = {
    "submit": (frozenset({DRAFT}), IN_REVIEW),
    "publish": (frozenset({IN_REVIEW}), PUBLISHED),
    "retire": (frozenset({PUBLISHED}), RETIRED),
    "return_to_review": (frozenset({PUBLISHED, RETIRED}), IN_REVIEW),
    "return_to_draft": (frozenset({IN_REVIEW}), DRAFT),
}

# Fields whose change rewrites what reps read: editable in DRAFT and IN_REVIEW only.
CONTENT_FIELDS = frozenset(
    {"title", "scenario", "summary", "language_code", "must_do_actions", "taboos", "proof_points"}
)
# Applicability and audience: editable in any status but RETIRED, without a new version.
PLACEMENT_FIELDS = frozenset(
    {
        "industries",
        "stage_ids",
        "applies_to_leads",
        "tags",
        "visibility",
        "visible_org_paths",
        "owner_user_id",
        "author_user_id",
    }
)
LANGUAGES = ("zh-CN", "en")
KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_:.\-]{0,63}$")
LIMITS = {
    "title": 120,
    "summary": 1000,
    "text": 500,
    "example": 2000,
    "taboo": 300,
    "claim": 500,
    "source": 300,
}
MAX_ITEMS = 20


@dataclass(frozen=True)
class Problem:
    field: str
    description: str


def transition(action: str, current: int) -> int | None:
    """The status `action` leads to from `current`, or None when it may not start there."""
    sources, target = TRANSITIONS[action]
    return target if current in sources else None


def _too_long(problems: list[Problem], path: str, text: str, limit: int) -> None:
    if len(text) > limit:
        problems.append(Problem(path, f"at most {limit} characters"))


def _codes(problems: list[Problem], path: str, values: list[str], pattern: re.Pattern[str]) -> None:
    if len(values) > MAX_ITEMS:
        problems.append(Problem(path, f"at most {MAX_ITEMS} values"))
    if len(set(values)) != len(values):
        problems.append(Problem(path, "values repeat"))
    for i, value in enumerate(values):
        if not pattern.match(value):
            problems.append(Problem(f"{path}[{i}]", f"not a valid code: {value[:80]!r}"))


def check(card: SopCard, scenarios: frozenset[str]) -> list[Problem]:
    """What is malformed in a card's fields (any status). `scenarios`: the tenant's vocabulary."""
    problems: list[Problem] = []
    if not card.title.strip():
        problems.append(Problem("card.title", "required"))
    _too_long(problems, "card.title", card.title, LIMITS["title"])
    if not KEY.match(card.scenario):
        problems.append(Problem("card.scenario", "required, a lower_snake_case key"))
    elif card.scenario not in scenarios:
        problems.append(Problem("card.scenario", f"not in the tenant's scenario vocabulary: {card.scenario}"))
    _too_long(problems, "card.summary", card.summary, LIMITS["summary"])
    if card.language_code and card.language_code not in LANGUAGES:
        problems.append(Problem("card.language_code", f"one of {', '.join(LANGUAGES)}"))
    for name, items in (
        ("must_do_actions", card.must_do_actions),
        ("taboos", card.taboos),
        ("proof_points", card.proof_points),
    ):
        if len(items) > MAX_ITEMS:
            problems.append(Problem(f"card.{name}", f"at most {MAX_ITEMS} items"))
    for i, action in enumerate(card.must_do_actions):
        if not action.text.strip():
            problems.append(Problem(f"card.must_do_actions[{i}].text", "required"))
        _too_long(problems, f"card.must_do_actions[{i}].text", action.text, LIMITS["text"])
        _too_long(problems, f"card.must_do_actions[{i}].example", action.example, LIMITS["example"])
    for i, taboo in enumerate(card.taboos):
        if not taboo.strip():
            problems.append(Problem(f"card.taboos[{i}]", "empty"))
        _too_long(problems, f"card.taboos[{i}]", taboo, LIMITS["taboo"])
    for i, proof in enumerate(card.proof_points):
        if not proof.claim.strip():
            problems.append(Problem(f"card.proof_points[{i}].claim", "required"))
        _too_long(problems, f"card.proof_points[{i}].claim", proof.claim, LIMITS["claim"])
        _too_long(problems, f"card.proof_points[{i}].source", proof.source, LIMITS["source"])
    _codes(problems, "card.industries", list(card.industries), CODE)
    _codes(problems, "card.stage_ids", list(card.stage_ids), CODE)
    _codes(problems, "card.tags", list(card.tags), CODE)
    if card.visibility == CardVisibility.CARD_VISIBILITY_ORG_UNITS and not card.visible_org_paths:
        problems.append(Problem("card.visible_org_paths", "required with CARD_VISIBILITY_ORG_UNITS"))
    if card.visibility != CardVisibility.CARD_VISIBILITY_ORG_UNITS and card.visible_org_paths:
        problems.append(Problem("card.visible_org_paths", "only with CARD_VISIBILITY_ORG_UNITS"))
    for i, path in enumerate(card.visible_org_paths):
        parts = path.split("/")
        if not path or any(not p or p in {".", ".."} for p in parts) or len(path) > 200:
            problems.append(Problem(f"card.visible_org_paths[{i}]", "not an org path like east/team-a"))
    if card.visibility not in CardVisibility.values():
        problems.append(Problem("card.visibility", "unknown visibility"))
    return problems


def missing_for_review(card: SopCard) -> list[str]:
    """What a card lacks before it may go to review (and so be published)."""
    missing = []
    if not card.title.strip():
        missing.append("title")
    if not card.scenario:
        missing.append("scenario")
    if not card.must_do_actions:
        missing.append("must_do_actions")
    return missing


def org_prefixes(org: str) -> list[str]:
    """`east/team-a` -> ["east", "east/team-a"]: the paths whose subtree holds the org."""
    parts = [p for p in org.split("/") if p]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def path_within(path: str, root: str) -> bool:
    """True if `path` is `root` or below it, segment by segment."""
    return bool(root) and (path == root or path.startswith(root + "/"))


def audience_sees(
    visibility: int, visible_org_paths: list[str], *, org: str, manager: bool, admin: bool
) -> bool:
    """Whether a member sees a published card: everyone for TENANT; managers for MANAGERS;
    the subtrees of `visible_org_paths` plus the managers above them for ORG_UNITS."""
    if admin:
        return True
    if visibility == CardVisibility.CARD_VISIBILITY_MANAGERS:
        return manager
    if visibility == CardVisibility.CARD_VISIBILITY_ORG_UNITS:
        if any(path_within(org, root) for root in visible_org_paths if org):
            return True
        return manager and bool(org) and any(path_within(root, org) for root in visible_org_paths)
    return True
