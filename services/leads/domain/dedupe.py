"""Dedupe decisions at intake: exact phone / e-mail matches and similar company names."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

PHONE = "PHONE"
EMAIL = "EMAIL"
COMPANY_NAME = "COMPANY_NAME"

MERGE = "MERGE"
FLAG = "FLAG"


@dataclass(frozen=True)
class ExistingLead:
    lead_id: str
    phone: str
    email: str
    company_norm: str
    closed: bool  # converted or disqualified: matches are flagged, never merged
    display_name: str = ""


@dataclass(frozen=True)
class Match:
    lead_id: str
    kind: str
    score: float
    display_name: str = ""


@dataclass(frozen=True)
class DedupeDecision:
    action: str  # "CREATE", "MERGE" (into merge_into) or "FLAG" (create, with candidates)
    merge_into: str
    match_kinds: tuple[str, ...]
    candidates: tuple[Match, ...]


def exact_matches(phone: str, email: str, existing: Iterable[ExistingLead]) -> list[Match]:
    out: list[Match] = []
    for lead in existing:
        if phone and lead.phone == phone:
            out.append(Match(lead.lead_id, PHONE, 1.0, lead.display_name))
        if email and lead.email == email:
            out.append(Match(lead.lead_id, EMAIL, 1.0, lead.display_name))
    return out


def similar_companies(
    company_norm: str, names: Sequence[tuple[str, str, str]], threshold: float, limit: int = 5
) -> list[Match]:
    """Leads (id, normalised name, display) whose company name scores >= threshold (0-1)."""
    if not company_norm or threshold <= 0 or not names:
        return []
    choices = [n for _, n, _ in names]
    found = process.extract(
        company_norm, choices, scorer=fuzz.ratio, score_cutoff=threshold * 100, limit=limit
    )
    return [Match(names[i][0], COMPANY_NAME, round(score / 100, 4), names[i][2]) for _, score, i in found]


def decide(
    phone: str,
    email: str,
    existing: Sequence[ExistingLead],
    company_matches: Sequence[Match],
    exact_action: str,
) -> DedupeDecision:
    """MERGE into the oldest open exact match (policy MERGE); otherwise FLAG any match; else CREATE."""
    exact = exact_matches(phone, email, existing)
    by_id = {lead.lead_id: lead for lead in existing}
    open_exact = [m for m in exact if not by_id[m.lead_id].closed]
    if open_exact and exact_action != FLAG:
        target = open_exact[0].lead_id
        kinds = tuple(dict.fromkeys(m.kind for m in open_exact if m.lead_id == target))
        return DedupeDecision(MERGE, target, kinds, ())
    exact_ids = {m.lead_id for m in exact}
    candidates = (*exact, *(m for m in company_matches if m.lead_id not in exact_ids))
    if candidates:
        return DedupeDecision(FLAG, "", (), tuple(candidates))
    return DedupeDecision("CREATE", "", (), ())
