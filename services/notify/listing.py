"""Keyset pages over a list assembled in memory (a tenant's own rows beside shipped built-ins).

The same tokens as kit's Repository.list (signed, bound to tenant and query): the token
holds the sort key of the last item, so a page never repeats or skips one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from kit.resources import Page, PageRequest, UnitOfWork

T = TypeVar("T")


def page_in_memory(
    uow: UnitOfWork, items: Sequence[T], key: Callable[[T], tuple[Any, ...]], page: PageRequest, query: str
) -> Page[T]:
    """One page of `items` in `key` order (the key must be unique: end it with the id)."""
    ordered = sorted(items, key=key)
    if page.token:
        last = tuple(uow.tokens.decode(page.token, uow.tenant, query))
        ordered = [i for i in ordered if key(i) > last]
    chunk = ordered[: page.size]
    token = ""
    if len(ordered) > page.size:
        token = uow.tokens.encode(uow.tenant, query, list(key(chunk[-1])))
    return Page(chunk, token, len(items))
