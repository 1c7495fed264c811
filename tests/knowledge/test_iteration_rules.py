"""Monthly iteration rules (domain, no I/O), each guardrail against a hand-worked month.

Defaults: retire when usage < 15 % AND negative > 40 %; 3 most criticised back to review;
at least 5 feedbacks; 30 days of grace; an industry x stage cell never left without a card.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.knowledge.domain import iteration as r
from services.knowledge.domain.iteration import Action, Basis, CardMonth, Policy

END = datetime(2026, 12, 1, tzinfo=UTC)  # November's end
OLD = END - timedelta(days=90)
ACTIVE = 100  # active reps in the month (the audience basis)


def card(cid: str, users: int, fully: int, partly: int, na: int, **kw: object) -> CardMonth:
    base: dict[str, object] = {
        "card_id": cid,
        "first_published_at": OLD,
        "industries": ("mfg",),
        "stage_ids": ("negotiation",),
        "users": users,
        "uses": users,
        "fully": fully,
        "partly": partly,
        "not_applicable": na,
    }
    base.update(kw)
    return CardMonth(**base)  # type: ignore[arg-type]


def actions(outcome: r.Outcome) -> dict[str, Action]:
    return {d.card_id: d.action for d in outcome.decisions}


AUDIENCE = Policy(basis=Basis.AUDIENCE)


def test_retire_needs_low_usage_and_high_negative_both() -> None:
    cards = [
        card("low-bad", users=9, fully=2, partly=1, na=3),  # 9 %, 3/6 = 50 %: retire
        card("low-ok", users=9, fully=4, partly=0, na=2),  # 9 %, 33 %: keep
        card("high-bad", users=30, fully=2, partly=0, na=4),  # 30 %, 67 %: not retired
        card("anchor", users=50, fully=10, partly=0, na=0),  # keeps the cell covered
    ]
    out = r.decide(cards, AUDIENCE, ACTIVE, END)
    assert out.retired == ["low-bad"]
    d = next(d for d in out.decisions if d.card_id == "low-bad")
    assert d.reason == "usage 9 % < 15 % and negative 50 % > 40 %"
    assert (round(d.usage_rate, 2), d.negative_rate) == (0.09, 0.5)
    # The remaining most criticised go to review: high-bad (67 %) then low-ok (33 %); anchor has 0 %.
    assert out.returned == ["high-bad", "low-ok"]
    assert actions(out)["anchor"] is Action.KEEP
    assert out.considered == 4
    # Worst first: by negative rate.
    assert [d.card_id for d in out.decisions] == ["high-bad", "low-bad", "low-ok", "anchor"]


def test_thresholds_are_strict_and_configurable() -> None:
    at_edges = card("edge", users=15, fully=3, partly=0, na=2)  # usage exactly 15 %, negative exactly 40 %
    anchor = card("anchor", users=50, fully=10, partly=0, na=0)
    assert r.decide([at_edges, anchor], AUDIENCE, ACTIVE, END).retired == []
    looser = Policy(basis=Basis.AUDIENCE, retire_max_usage=0.2, retire_min_negative=0.3, return_count=0)
    out = r.decide([at_edges, anchor], looser, ACTIVE, END)
    assert out.retired == ["edge"] and out.returned == []


def test_partly_counts_half_negative_when_the_policy_says_so() -> None:
    c = card("c", users=5, fully=2, partly=4, na=1)  # 1/7 = 14 %; with half of partly 3/7 = 43 %
    anchor = card("anchor", users=50, fully=10, partly=0, na=0)
    assert r.decide([c, anchor], AUDIENCE, ACTIVE, END).retired == []
    half = Policy(basis=Basis.AUDIENCE, partly_half_negative=True)
    assert r.decide([c, anchor], half, ACTIVE, END).retired == ["c"]


def test_minimum_sample_exempts_cards_with_little_feedback() -> None:
    thin = card("thin", users=1, fully=0, partly=0, na=4)  # 100 % negative, but 4 < 5 feedbacks
    anchor = card("anchor", users=50, fully=10, partly=0, na=0)
    out = r.decide([thin, anchor], AUDIENCE, ACTIVE, END)
    assert actions(out)["thin"] is Action.EXEMPT and out.retired == [] and out.returned == []
    assert next(d for d in out.decisions if d.card_id == "thin").reason == "too little feedback: 4 < 5"
    assert out.considered == 2  # judged or not, it counts as considered (only grace does not)


def test_grace_period_exempts_new_cards() -> None:
    new = card("new", users=1, fully=0, partly=0, na=9, first_published_at=END - timedelta(days=29))
    day31 = card("old-enough", users=1, fully=0, partly=0, na=9, first_published_at=END - timedelta(days=31))
    anchor = card("anchor", users=50, fully=10, partly=0, na=0)
    out = r.decide([new, day31, anchor], AUDIENCE, ACTIVE, END)
    assert actions(out)["new"] is Action.EXEMPT and "grace" in out.decisions[0].reason
    assert out.retired == ["old-enough"]
    assert out.considered == 2  # the new card is not counted


def test_never_retire_the_only_published_card_of_a_cell() -> None:
    # Both bad; "b" is worse and retires first, "a" is then the only card of mfg x negotiation.
    a = card("a", users=5, fully=2, partly=0, na=3)  # 60 %
    b = card("b", users=5, fully=1, partly=0, na=4)  # 80 %
    out = r.decide([a, b], AUDIENCE, ACTIVE, END)
    assert out.retired == ["b"]
    kept = next(d for d in out.decisions if d.card_id == "a")
    assert kept.action is Action.KEEP
    assert kept.reason.endswith("kept: the only published card of mfg x negotiation")
    # Spared for its cell, it is not sent to review either (that would empty the cell too).
    assert out.returned == []


def test_cells_count_cards_in_grace_and_all_industry_cards() -> None:
    bad = card("bad", users=5, fully=1, partly=0, na=4)
    newcomer = card("newcomer", users=0, fully=0, partly=0, na=0, first_published_at=END)
    assert r.decide([bad, newcomer], AUDIENCE, ACTIVE, END).retired == ["bad"]  # the new card covers it
    generic = card("generic", users=50, fully=9, partly=0, na=0, industries=())  # every industry
    assert r.decide([bad, generic], AUDIENCE, ACTIVE, END).retired == ["bad"]
    # A card of two stages is kept when one of them would be left empty.
    wide = card("wide", users=5, fully=1, partly=0, na=4, stage_ids=("negotiation", "proposal"))
    other = card("other", users=50, fully=9, partly=0, na=0)
    out = r.decide([wide, other], AUDIENCE, ACTIVE, END)
    assert out.retired == [] and "mfg x proposal" in out.decisions[0].reason


def test_return_to_review_takes_the_n_most_criticised() -> None:
    cards = [card(f"c{i}", users=50, fully=10 - i, partly=0, na=i) for i in range(6)]
    cards.append(card("anchor", users=50, fully=10, partly=0, na=0, stage_ids=("negotiation",)))
    out = r.decide(cards, AUDIENCE, ACTIVE, END)
    assert out.retired == []  # usage 50 %: none retires
    assert out.returned == ["c5", "c4", "c3"]
    two = Policy(basis=Basis.AUDIENCE, return_count=0)
    assert r.decide(cards, two, ACTIVE, END).returned == []


def test_usage_by_impressions_and_fallback_to_audience() -> None:
    shown = card("shown", users=2, fully=1, partly=0, na=4, impressions=40, uses=4)  # 10 %
    anchor = card("anchor", users=50, fully=10, partly=0, na=0, impressions=10, uses=9)
    out = r.decide([shown, anchor], Policy(), ACTIVE, END)
    assert out.retired == ["shown"] and round(out.decisions[0].usage_rate, 2) == 0.1
    # Not recommended this month (impressions unknown or none): the audience basis (2 of 100 users).
    unknown = card("unknown", users=2, fully=1, partly=0, na=4)
    assert r.usage_rate(unknown, Policy(), ACTIVE) == 0.02
    assert (
        r.usage_rate(card("zero", users=3, fully=0, partly=0, na=0, impressions=0), Policy(), ACTIVE) == 0.03
    )
    # Only uses that came from a recommendation count against impressions.
    searched = card("s", users=9, fully=0, partly=0, na=0, impressions=20, uses=9, recommended_uses=2)
    assert r.usage_rate(searched, Policy(), ACTIVE) == 0.1


def test_spare_keeps_excluded_cards() -> None:
    cards = [
        card("low-bad", users=9, fully=2, partly=1, na=3),
        card("high-bad", users=30, fully=2, partly=0, na=4),
        card("anchor", users=50, fully=10, partly=0, na=0),
    ]
    out = r.spare(r.decide(cards, AUDIENCE, ACTIVE, END), ["low-bad"], "admin")
    assert out.retired == [] and out.returned == ["high-bad"]
    spared = next(d for d in out.decisions if d.card_id == "low-bad")
    assert spared.action is Action.KEEP and spared.reason.endswith("spared by admin")
