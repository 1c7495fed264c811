"""A memo bounded by bytes, not entries: what the presenters keep of leads they presented.

A lead's body may be up to 64 KB, so a memo of 4,096 entries could pin a quarter of a gigabyte per
process; counted in bytes (the caller says an entry's size: its texts and serialized bytes), it
holds at most its budget. Full: it starts over (the memo holds what repeats within seconds, a page
asked again, a lead opened again; an LRU's bookkeeping would cost more than the misses it saves).
An entry larger than an eighth of the budget is not kept.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BytesMemo(Generic[K, V]):
    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._items: dict[K, V] = {}
        self._used = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    @property
    def used(self) -> int:
        """Bytes held, as the callers counted them."""
        return self._used

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V, size: int) -> None:
        if size > self.budget // 8:
            return
        if self._used + size > self.budget:
            self._items.clear()
            self._used = 0
        self._items[key] = value
        self._used += size
