"""kit.memo: a memo keeps what it is given within its budget in bytes (as the owner counts them),
starts over when full, refuses an entry over an eighth of the budget without dropping the rest,
keeps nothing at budget 0, and several memos on one ByteBudget share it and start over together."""

from __future__ import annotations

from kit.memo import ByteBudget, BytesMemo


def test_kept_and_found() -> None:
    memo: BytesMemo[str, int] = BytesMemo(1000)
    assert memo.get("a") is None and "a" not in memo
    assert memo.put("a", 1, 10) and memo.put("b", 2, 20)
    assert (memo.get("a"), memo.get("b"), len(memo), memo.used, memo.budget) == (1, 2, 2, 30, 1000)
    assert "a" in memo


def test_full_starts_over_and_never_exceeds_the_budget() -> None:
    memo: BytesMemo[int, int] = BytesMemo(800)
    for i in range(100):
        assert memo.put(i, i, 100)
        assert 0 < memo.used <= 800
        assert memo.get(i) == i  # the newest entry is always kept
    assert len(memo) == 4  # 100 entries of 100 bytes: the last 4 since the last start-over
    assert memo.get(95) is None and memo.get(96) == 96


def test_an_entry_over_an_eighth_is_not_kept_nor_drops_the_rest() -> None:
    memo: BytesMemo[str, str] = BytesMemo(800)
    assert memo.put("small", "s", 100)
    assert not memo.put("large", "l", 101)
    assert memo.get("large") is None and memo.get("small") == "s" and memo.used == 100


def test_budget_zero_keeps_nothing() -> None:
    memo: BytesMemo[str, str] = BytesMemo(0)
    assert not memo.put("a", "a", 0) and not memo.put("b", "b", 1)
    assert len(memo) == 0 and memo.used == 0


def test_memos_on_one_budget_share_it() -> None:
    budget = ByteBudget(1000)
    leads: BytesMemo[bytes, str] = BytesMemo(budget)
    deals: BytesMemo[bytes, str] = BytesMemo(budget)
    assert budget.tables == [leads, deals]
    assert leads.put(b"l1", "lead", 100) and deals.put(b"d1", "deal", 100)
    assert (budget.used, leads.used, deals.used) == (200, 200, 200)
    for i in range(9):  # the shared budget fills up: both memos start over
        assert leads.put(b"l%d" % (i + 2), "lead", 100)
    assert deals.get(b"d1") is None and leads.get(b"l1") is None
    assert leads.get(b"l10") == "lead" and budget.used <= 1000


def test_resize_empties_every_memo_and_get_still_finds_new_entries() -> None:
    budget = ByteBudget(1000)
    memo: BytesMemo[str, int] = BytesMemo(budget)
    lookup = memo.get  # held by a hot path: must survive start-overs and resizes
    memo.put("a", 1, 10)
    budget.resize(2000)
    assert (len(memo), budget.used, memo.budget) == (0, 0, 2000)
    memo.put("b", 2, 10)
    assert lookup("b") == 2 and lookup("a") is None
    budget.resize(0)
    assert not memo.put("c", 3, 1) and lookup("b") is None
