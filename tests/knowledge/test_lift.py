"""Lift arithmetic against published worked examples (Newcombe 1998), and "not enough data"."""

from __future__ import annotations

import pytest

from services.knowledge.domain.lift import CellCounts, difference, lift_of, wilson


@pytest.mark.parametrize(
    ("won", "n", "low", "high"),
    [
        # Newcombe, "Two-sided confidence intervals for the single proportion" (1998), table I, method 3.
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_the_published_intervals(won: int, n: int, low: float, high: float) -> None:
    got = wilson(won, n)
    assert got.rate == pytest.approx(won / n)
    assert (round(got.low, 4), round(got.high, 4)) == (low, high)


def test_difference_matches_newcombes_worked_example() -> None:
    # Newcombe, "Interval estimation for the difference between independent proportions" (1998):
    # 56/70 against 48/80, method 10 (score, no continuity correction): 0.2000 (0.0524, 0.3339).
    d = difference(wilson(56, 70), wilson(48, 80))
    assert (round(d.rate, 4), round(d.low, 4), round(d.high, 4)) == (0.2, 0.0524, 0.3339)


def test_a_cell_worked_by_hand() -> None:
    """150 closed deals of manufacturing reached negotiation, 104 won; the card was used on 70 of
    them (56 won), so the comparable deals are the other 80 (48 won): the example above."""
    lift = lift_of(CellCounts(cell_closed=150, cell_won=104, used_closed=70, used_won=56), min_sample=10)
    assert lift.enough_data
    assert (lift.used_deals, lift.used_won, lift.comparable_deals, lift.comparable_won) == (70, 56, 80, 48)
    assert lift.used is not None and lift.comparable is not None and lift.lift is not None
    assert lift.used.rate == pytest.approx(0.8) and lift.comparable.rate == pytest.approx(0.6)
    assert round(lift.lift_pp or 0, 2) == 20.0
    assert (round(lift.lift.low * 100, 2), round(lift.lift.high * 100, 2)) == (5.24, 33.39)


@pytest.mark.parametrize(
    ("counts", "enough"),
    [
        (CellCounts(30, 15, 9, 5), False),  # 9 used < 10
        (CellCounts(19, 10, 10, 6), False),  # 9 comparable < 10
        (CellCounts(20, 10, 10, 6), True),  # 10 and 10
        (CellCounts(0, 0, 0, 0), False),
    ],
)
def test_not_enough_data_below_the_minimum_on_either_side(counts: CellCounts, enough: bool) -> None:
    lift = lift_of(counts, min_sample=10)
    assert lift.enough_data is enough
    assert (lift.lift is None) is (not enough)
    assert lift.min_sample == 10


def test_the_minimum_is_at_least_two_and_counts_stay_consistent() -> None:
    assert lift_of(CellCounts(4, 2, 2, 1), min_sample=0).min_sample == 2
    # A cache refreshed between the cell total and the card's row cannot make negative comparables.
    odd = lift_of(CellCounts(5, 1, 6, 3), min_sample=2)
    assert odd.comparable_deals == 0 and odd.comparable_won == 0 and not odd.enough_data
