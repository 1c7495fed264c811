"""The pure target rules: where a node sits, attrition and level sums, coverage, reason counts, clusters."""

from __future__ import annotations

import pytest

from services.pipeline.domain import targets as t
from services.pipeline.domain.forecast import Aggregate


@pytest.mark.parametrize(
    ("level", "path", "ok"),
    [
        ("COMPANY", "", True),
        ("COMPANY", "east", False),
        ("REGION", "east", True),
        ("REGION", "east/sh", False),
        ("CITY", "east/sh", True),
        ("TEAM", "east/team-a", True),  # no cities: teams right under the region
        ("TEAM", "east/sh/team-a", True),
        ("TEAM", "east", False),
        ("TEAM", "east/sh/team-a/x", False),
    ],
)
def test_a_units_path_fits_its_level(level: str, path: str, ok: bool) -> None:
    assert (t.path_problem(level, path) == "") is ok


def test_parents_are_looked_for_from_the_deepest_unit_up() -> None:
    assert t.ancestor_paths("REP", "east/team-a") == ["east/team-a", "east", ""]
    assert t.ancestor_paths("TEAM", "east/sh/team-a") == ["east/sh", "east", ""]
    assert t.ancestor_paths("REGION", "east") == [""]
    assert t.ancestor_paths("COMPANY", "") == []
    assert (
        t.unit_key("REP", "east/team-a", "r1") == "u:r1"
        and t.unit_key("TEAM", "east/team-a", "") == "o:east/team-a"
    )
    assert t.under("east/team-a", "east") and not t.under("eastern/x", "east") and t.under("east", "")
    assert t.hand_down_limit(100, None) == 100 and t.hand_down_limit(100, 120) == 120


def test_cascade_attrition_and_level_sums_by_hand() -> None:
    nodes = [
        t.Node("co", None, "COMPANY", "", "", 100, 110),
        t.Node("e", "co", "REGION", "east", "", 92, None),
        t.Node("ta", "e", "TEAM", "east/a", "", 50, None),
        t.Node("tb", "e", "TEAM", "east/b", "", 35, None),
        t.Node("r1", "ta", "REP", "east/a", "r1", 40, None),
        t.Node("r2", "tb", "REP", "east/b", "r2", 36, None),
    ]
    sums = [
        Aggregate("r1", "east/a", "WON", False, "CLOSED", 10, 10, 1),
        Aggregate("r1", "east/a", "OPEN", False, "COMMIT", 30, 9, 1),
        Aggregate("r2", "east/b", "OPEN", False, "PIPELINE", 20, 2, 1),
    ]
    tree, levels = t.build_cascade(nodes[0], nodes, sums)
    assert tree.children_committed == 92 and tree.attrition == pytest.approx(0.08)
    region = tree.children[0]
    assert region.children_committed == 85 and region.attrition == pytest.approx(1 - 85 / 92)
    assert [c.node.target_id for c in region.children] == ["ta", "tb"]
    assert region.won == 10 and region.weighted == 11
    rep = region.children[0].children[0]
    assert (rep.attrition, rep.won, rep.weighted) == (None, 10, 9) and rep.attainment == pytest.approx(0.25)
    assert [(lv.level, lv.committed, lv.challenge, lv.retained) for lv in levels] == [
        ("COMPANY", 100, 110, 1.0),
        ("REGION", 92, 92, pytest.approx(0.92)),
        ("TEAM", 85, 85, pytest.approx(0.85)),
        ("REP", 76, 76, pytest.approx(0.76)),
    ]
    shallow, shallow_levels = t.build_cascade(nodes[0], nodes, sums, depth=1)
    assert [c.node.target_id for c in shallow.children] == ["e"] and not shallow.children[0].children
    assert shallow.children[0].children_committed == 85  # still computed from the children
    assert [lv.level for lv in shallow_levels] == ["COMPANY", "REGION"]
    zero, _ = t.build_cascade(
        t.Node("z", None, "COMPANY", "", "", 0, None), [t.Node("c", "z", "REGION", "x", "", 5, None)], []
    )
    assert zero.attrition is None and zero.attainment is None  # nothing to divide by


@pytest.mark.parametrize(
    ("open_", "won", "target", "expected"),
    [
        (300, 100, None, t.Coverage(t.CoverageState.NO_TARGET)),
        (300, 100, 250, t.Coverage(t.CoverageState.MEASURED, 150, 2.0)),
        (0, 100, 250, t.Coverage(t.CoverageState.MEASURED, 150, 0.0)),
        (300, 250, 250, t.Coverage(t.CoverageState.TARGET_REACHED, 0)),
        (300, 400, 250, t.Coverage(t.CoverageState.TARGET_REACHED, 0)),
        (0, 0, 0, t.Coverage(t.CoverageState.TARGET_REACHED, 0)),
    ],
)
def test_coverage(open_: int, won: int, target: int | None, expected: t.Coverage) -> None:
    assert t.coverage(open_, won, target) == expected


def test_reasons_are_counted_without_the_on_track_ones() -> None:
    rows = [
        t.ReasonSum("REP", "COMPETITOR_PRICE_CUT", 2, -40),
        t.ReasonSum("REP", "NO_DEVIATION", 1, 0),
        t.ReasonSum("TEAM", "DELIVERY_LATE", 1, -50),
        t.ReasonSum("REP", "DECISION_CHAIN_CHANGED", 1, -20),
    ]
    overall, levels = t.summarize_reasons(rows)
    assert (overall.calibrations, overall.deviations) == (5, 4)
    assert [(r.reason, r.count, r.share, r.gap) for r in overall.reasons] == [
        ("COMPETITOR_PRICE_CUT", 2, 0.5, -40),
        ("DECISION_CHAIN_CHANGED", 1, 0.25, -20),
        ("DELIVERY_LATE", 1, 0.25, -50),
    ]
    assert [(lv, s.calibrations, s.deviations) for lv, s in levels] == [("TEAM", 1, 1), ("REP", 4, 3)]
    empty, per_level = t.summarize_reasons([t.ReasonSum("REP", "NO_DEVIATION", 3, 0)])
    assert (empty.calibrations, empty.deviations, empty.reasons, len(per_level)) == (3, 0, [], 1)


def test_free_text_reasons_cluster_by_shared_keywords() -> None:
    assert t.keywords("The new CIO, and the budget") == {"new", "cio", "budget"}
    assert t.keywords("客户换领导") == {"客户", "户换", "换领", "领导"}
    items = [
        ("c1", "DECISION_CHAIN_CHANGED", "new CIO at the customer"),
        ("c2", "DECISION_CHAIN_CHANGED", "a new CIO joined, sponsor left"),
        ("c3", "OTHER", "new CIO wants a re-tender"),
        ("c4", "COMPETITOR_PRICE_CUT", "competitor price 15 % lower"),
        ("c5", "COMPETITOR_PRICE_CUT", "price war with competitor"),
        ("c6", "DELIVERY_LATE", "pilot late"),
        ("c7", "OTHER", "客户换领导"),
        ("c8", "DECISION_CHAIN_CHANGED", "客户领导变了"),
    ]
    clusters = t.cluster_reasons(items)
    assert [(c.label, c.count, c.reasons, c.samples) for c in clusters] == [
        ("cio new", 3, ["DECISION_CHAIN_CHANGED", "OTHER"], ["c1", "c2", "c3"]),
        ("competitor price", 2, ["COMPETITOR_PRICE_CUT"], ["c4", "c5"]),
        ("客户 领导", 2, ["DECISION_CHAIN_CHANGED", "OTHER"], ["c7", "c8"]),
    ]
    assert t.cluster_reasons(items, limit=1)[0].label == "cio new"
    assert t.cluster_reasons([("x", "OTHER", "alone")]) == []
