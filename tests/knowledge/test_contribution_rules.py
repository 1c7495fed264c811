"""Co-creation rules (domain, no I/O): checks, the light card, the points cap, ranks, periods."""

from __future__ import annotations

from datetime import date

from salesops.knowledge.v1 import contribution_pb2 as c
from salesops.knowledge.v1.sop_card_pb2 import CardAction, SopCard
from services.knowledge.domain import contributions as r


def test_check_reports_every_problem() -> None:
    ok = c.Contribution(kind=c.CONTRIBUTION_KIND_WIN_STORY, title="赢单", situation="客户犹豫")
    assert r.check(ok) == []
    bad = c.Contribution(
        title=" ",
        language_code="fr",
        objections=[c.ObjectionResponse(objection="贵")],
        scenario="Bad Key",
        industry="制造 业",
    )
    fields = {p.field for p in r.check(bad)}
    assert fields == {
        "contribution.kind",
        "contribution.title",
        "contribution.language_code",
        "contribution.objections[0].response",
        "contribution.scenario",
        "contribution.industry",
    }
    assert {p.field for p in r.check(c.Contribution(kind=c.CONTRIBUTION_KIND_OTHER, title="t"))} == {
        "contribution.actions"
    }


def test_light_card_keeps_the_reviewers_edits_and_derives_the_rest() -> None:
    case = c.Contribution(
        title="复购谈判",
        scenario="upsell_negotiation",
        industry="retail",
        stage_id="negotiation",
        situation="老客户要求降价",
        outcome="加购两年",
        actions="- 先谈用量\n\n* 再给阶梯价",
        objections=[c.ObjectionResponse(objection="太贵", response="按用量算")],
    )
    derived = r.light_card(case, SopCard(card_id="L1"))
    assert (derived.title, derived.scenario, derived.language_code) == (
        "复购谈判",
        "upsell_negotiation",
        "zh-CN",
    )
    assert list(derived.industries) == ["retail"] and list(derived.stage_ids) == ["negotiation"]
    assert derived.summary == "老客户要求降价 加购两年"
    assert [(a.text, a.example) for a in derived.must_do_actions] == [
        ("先谈用量", ""),
        ("再给阶梯价", ""),
        ("太贵", "按用量算"),
    ]
    edited = r.light_card(
        case, SopCard(card_id="L1", title="新", must_do_actions=[CardAction(text="只做这步")])
    )
    assert edited.title == "新" and [a.text for a in edited.must_do_actions] == ["只做这步"]


def test_points_cap_and_competition_ranks() -> None:
    assert r.capped(1, 0, 50) == 1
    assert r.capped(2, 49, 50) == 1  # only what is left under the cap
    assert r.capped(1, 50, 50) == 0
    assert r.capped(3, 1000, 0) == 3  # 0: no cap
    assert r.capped(0, 0, 50) == 0
    ranked = r.rank([("b", 5), ("a", 9), ("c", 5), ("d", 1)])
    assert [(x.rank, x.user_id) for x in ranked] == [(1, "a"), (2, "b"), (2, "c"), (4, "d")]


def test_periods() -> None:
    assert r.period_dates("month", date(2026, 12, 6)) == (date(2026, 12, 1), date(2027, 1, 1))
    assert r.period_dates("quarter", date(2026, 11, 30)) == (date(2026, 10, 1), date(2027, 1, 1))
    assert r.period_dates("quarter", date(2026, 2, 1)) == (date(2026, 1, 1), date(2026, 4, 1))
    assert r.period_dates("year", date(2026, 6, 1)) == (date(2026, 1, 1), date(2027, 1, 1))
    assert r.period_dates("all", date(2026, 6, 1)) is None
