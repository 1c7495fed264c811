"""kit's GroupCommit: a lone item runs at once; items arriving during a key's transaction go
together in the next, in order, at most max_group at a time; a failed batch runs its items alone;
a waiter cancelled before its batch is skipped; keys do not wait for each other; with a linger, the
callers a batch answered go together in the next when they are back, or when the linger is over."""

from __future__ import annotations

import asyncio

from kit.resources import GroupCommit


class Stand:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.gate = asyncio.Event()
        self.fail_batches = False

    async def alone(self, key: str, item: str) -> str:
        self.calls.append((key, [item]))
        if len(self.calls) == 1:
            await self.gate.wait()
        return f"{item}!"

    async def together(self, key: str, items: list[str]) -> list[str]:
        self.calls.append((key, list(items)))
        if self.fail_batches:
            raise RuntimeError("the batch's transaction failed")
        return [f"{i}+" for i in items]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_waiting_items_go_together_in_order_and_split_at_max_group() -> None:
    s = Stand()
    g: GroupCommit[str, str] = GroupCommit(s.alone, s.together, max_group=2, what="test")
    first = asyncio.ensure_future(g.submit("t", "a"))
    await _settle()
    rest = [asyncio.ensure_future(g.submit("t", x)) for x in "bcd"]
    await _settle()
    s.gate.set()
    assert await first == "a!"
    assert [await r for r in rest] == ["b+", "c+", "d+"]  # "d" is the next batch, of one
    assert s.calls == [("t", ["a"]), ("t", ["b", "c"]), ("t", ["d"])]
    assert g.grouped == 1


async def test_a_failed_batch_runs_each_item_alone() -> None:
    s = Stand()
    s.fail_batches = True
    g: GroupCommit[str, str] = GroupCommit(s.alone, s.together, max_group=10, what="test")
    first = asyncio.ensure_future(g.submit("t", "a"))
    await _settle()
    rest = [asyncio.ensure_future(g.submit("t", x)) for x in "bc"]
    await _settle()
    s.gate.set()
    assert await first == "a!"
    assert [await r for r in rest] == ["b!", "c!"]
    assert s.calls[1] == ("t", ["b", "c"]) and sorted(c[1] for c in s.calls[2:]) == [["b"], ["c"]]
    assert g.grouped == 0


async def test_a_cancelled_waiter_is_skipped_and_keys_are_independent() -> None:
    s = Stand()
    g: GroupCommit[str, str] = GroupCommit(s.alone, s.together, max_group=10, what="test")
    first = asyncio.ensure_future(g.submit("t", "a"))
    await _settle()
    gone = asyncio.ensure_future(g.submit("t", "gone"))
    kept = asyncio.ensure_future(g.submit("t", "kept"))
    other = await asyncio.wait_for(g.submit("u", "x"), 30)  # another key: not behind "t"'s turn
    assert other == "x!"
    await _settle()
    gone.cancel()
    await _settle()
    s.gate.set()
    assert await first == "a!" and await kept == "kept+"
    assert s.calls == [("t", ["a"]), ("u", ["x"]), ("t", ["kept"])]


async def test_with_a_linger_the_callers_just_answered_go_together_when_back() -> None:
    """Callers that send again on an answer (N in flight): after a batch of three, the next starts
    when all three are back, not with the first one back (and the other two behind it)."""
    s = Stand()
    g: GroupCommit[str, str] = GroupCommit(s.alone, s.together, max_group=10, what="test", linger=30)

    async def client(x: str) -> list[str]:
        return [await g.submit("t", x), await g.submit("t", x + "2")]

    first = asyncio.ensure_future(g.submit("t", "a"))
    await _settle()
    clients = [asyncio.ensure_future(client(x)) for x in "bcd"]
    await _settle()
    s.gate.set()
    assert await first == "a!"
    assert [await asyncio.wait_for(c, 30) for c in clients] == [["b+", "b2+"], ["c+", "c2+"], ["d+", "d2+"]]
    assert s.calls == [("t", ["a"]), ("t", ["b", "c", "d"]), ("t", ["b2", "c2", "d2"])]


async def test_a_linger_ends_with_those_that_came_back() -> None:
    s = Stand()
    g: GroupCommit[str, str] = GroupCommit(s.alone, s.together, max_group=10, what="test", linger=0.01)
    first = asyncio.ensure_future(g.submit("t", "a"))
    await _settle()
    rest = [asyncio.ensure_future(g.submit("t", x)) for x in "bc"]
    await _settle()
    s.gate.set()
    assert [await first] + [await r for r in rest] == ["a!", "b+", "c+"]
    # One of the two back: it goes when the linger is over, alone in its batch.
    assert await asyncio.wait_for(g.submit("t", "b2"), 30) == "b2+"
    assert s.calls[-1] == ("t", ["b2"])
    # A batch of one answered one caller: no linger, the key is idle, the next item runs alone at once.
    assert await g.submit("t", "later") == "later!"
