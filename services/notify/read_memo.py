"""Reads one transaction of notify's event consumer shares (session.info[READ_MEMO]).

The consumer applies a read's events of one tenant in one transaction (a burst of SLA reminders: a
hundred at a time), and that transaction writes no settings, subscribers, preferences, templates or
channel configs; each send read them again (about half of a reminder's twelve statements). A session
with the memo reads each once; other sessions (API calls, which may write them) read each time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

READ_MEMO = "notify.read_memo"

T = TypeVar("T")
_ABSENT = object()


def memo(session: AsyncSession) -> dict[str, Any] | None:
    found: dict[str, Any] | None = session.info.get(READ_MEMO)
    return found


async def once(session: AsyncSession, key: Any, load: Callable[[], Awaitable[T]]) -> T:
    """`load()`'s answer, read once per memo transaction under `key`."""
    shared = memo(session)
    if shared is None:
        return await load()
    if key not in shared:
        shared[key] = await load()
    found: T = shared[key]
    return found


async def per_key(
    session: AsyncSession,
    name: str,
    keys: Iterable[str],
    load: Callable[[list[str]], Awaitable[dict[str, T]]],
) -> dict[str, T]:
    """`load(keys)` (a dict of the keys found), asking only for the keys this transaction has not
    asked for yet; a key asked for and not found stays not found."""
    shared = memo(session)
    if shared is None:
        return await load(list(keys))
    known: dict[str, Any] = shared.setdefault(name, {})
    wanted = list(dict.fromkeys(keys))
    missing = [k for k in wanted if k not in known]
    if missing:
        found = await load(missing)
        for k in missing:
            known[k] = found.get(k, _ABSENT)
    return {k: known[k] for k in wanted if known[k] is not _ABSENT}
