"""Keyword trackers matched in transcripts: Chinese and English, variants, case, word boundaries, overlaps."""

# ruff: noqa: RUF001  (Chinese punctuation and full-width letters are the point of these transcripts)

from __future__ import annotations

import pytest

from salesops.integration.v1 import insights_pb2 as i
from services.integration.domain.keywords import Matcher, Tracker, Turn, excerpt, fold, mentions, problems

REP, CUSTOMER = i.SPEAKER_REP, i.SPEAKER_CUSTOMER
BUDGET = Tracker("kw-budget", "预算", i.KEYWORD_CATEGORY_BUDGET, ("budget", "预算不够"))
TENDER = Tracker("kw-tender", "招标", i.KEYWORD_CATEGORY_TENDER, ("tender", "RFP"))
APPROVAL = Tracker(
    "kw-approval",
    "领导还没批",
    i.KEYWORD_CATEGORY_APPROVAL,
    ("老板没批", "the boss has not approved", "pending approval"),
)
MATCHER = Matcher([BUDGET, TENDER, APPROVAL])


def found(text: str, matcher: Matcher = MATCHER) -> list[tuple[str, str]]:
    return [(o.keyword_id, o.matched_text) for o in matcher.find([Turn(CUSTOMER, text)])]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今年的预算已经定了", [("kw-budget", "预算")]),
        ("我们走招标流程", [("kw-tender", "招标")]),
        ("这个事领导还没批", [("kw-approval", "领导还没批")]),
        ("老板没批呢", [("kw-approval", "老板没批")]),
        # English: case-insensitive, the text's own spelling is reported.
        ("The BUDGET is tight", [("kw-budget", "BUDGET")]),
        ("The Boss Has Not Approved it yet", [("kw-approval", "The Boss Has Not Approved")]),
        ("we will issue an rfp", [("kw-tender", "rfp")]),
        # Word boundaries for English, not inside other words...
        ("budgetary constraints, a contender, RFPs", []),
        ("pre-budget talk", [("kw-budget", "budget")]),  # a hyphen is a boundary
        # ...but none for Chinese, and English next to Chinese is on a boundary.
        ("我们的budget不够", [("kw-budget", "budget")]),
        # Full-width Latin letters fold to ASCII.
        ("ＲＦＰ已经发了", [("kw-tender", "ＲＦＰ")]),
        ("", []),
    ],
)
def test_zh_and_en_phrases_variants_case_and_boundaries(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


def test_overlapping_variants_of_one_keyword_count_once_the_longest() -> None:
    # "预算" and "预算不够" are both variants of the budget tracker: one mention, the longer phrase.
    assert found("预算不够啊") == [("kw-budget", "预算不够")]
    assert found("预算不够，预算") == [("kw-budget", "预算不够"), ("kw-budget", "预算")]


def test_overlapping_mentions_of_different_keywords_all_count() -> None:
    approval = Tracker("kw-a", "not approved", i.KEYWORD_CATEGORY_APPROVAL)
    boss = Tracker("kw-b", "boss has not", i.KEYWORD_CATEGORY_DECISION_MAKER)
    hits = found("the boss has not approved", Matcher([approval, boss]))
    assert hits == [("kw-b", "boss has not"), ("kw-a", "not approved")]


def test_offsets_speaker_and_turn_are_where_it_was_said() -> None:
    turns = [
        Turn(REP, "您好，请问预算大概多少？"),
        Turn(CUSTOMER, "Honestly the budget is small, 还要招标。"),
    ]
    hits = MATCHER.find(turns)
    assert [(o.segment_index, o.speaker, o.keyword_id) for o in hits] == [
        (0, REP, "kw-budget"),
        (1, CUSTOMER, "kw-budget"),
        (1, CUSTOMER, "kw-tender"),
    ]
    for o in hits:
        assert turns[o.segment_index].text[o.start : o.end] == o.matched_text
    summary = mentions(MATCHER, turns, hits)
    assert [(m.keyword_id, m.count, m.customer_count) for m in summary] == [
        ("kw-budget", 2, 1),
        ("kw-tender", 1, 1),
    ]
    assert "预算" in summary[0].excerpt and len(summary[0].excerpt) <= 80


def test_customer_only_trackers_ignore_what_our_rep_says() -> None:
    only = Matcher([Tracker("kw-p", "太贵", i.KEYWORD_CATEGORY_PRICE, customer_only=True)])
    assert only.find([Turn(REP, "会不会太贵？")]) == []
    assert len(only.find([Turn(CUSTOMER, "确实太贵了")])) == 1


def test_folding_keeps_offsets_and_phrases_are_checked() -> None:
    text = "İstanbul ＢＵＤＧＥＴ"
    assert len(fold(text)) == len(text)
    assert fold("ＢＵＤＧＥＴ") == "budget"
    assert problems("预算", ["budget", "BUDGET"]) == [("synonyms[1]", "repeats the term or another synonym")]
    assert problems("  ", []) and not problems("招标", ["tender"])
    assert excerpt("x" * 200, 100, 102) == "x" * 80
    assert Matcher([]).find([Turn(CUSTOMER, "预算")]) == []
