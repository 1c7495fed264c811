"""kit.db_loop: SQLite reads on the calling thread within a budget, backing off a statement that is
always past it, and closed with their Database."""

from __future__ import annotations

import gc
import itertools
import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path

import pytest
from sqlalchemy import text

from kit import db_loop
from kit.db import Database, loop_readers

SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM (SELECT x FROM c LIMIT 10000000)"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "x.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (a)")
    conn.close()
    return path


def _left(path: Path) -> list[str]:
    """The database's -wal and -shm files still there."""
    return [f"{path}{end}" for end in ("-wal", "-shm") if Path(f"{path}{end}").exists()]


def _open_files(path: Path) -> list[str]:
    fds, out = Path("/proc/self/fd"), []
    for fd in os.listdir(fds):
        try:
            target = os.readlink(fds / fd)
        except OSError:  # the listing's own descriptor, closed meanwhile
            continue
        if target.startswith(str(path)):
            out.append(target)
    return out


def test_a_loop_reader_neither_writes_nor_makes_a_database(tmp_path: Path, path: Path) -> None:
    missing = tmp_path / "no such.db"
    with pytest.raises(sqlite3.OperationalError):
        db_loop.LoopReader(str(missing))
    assert not missing.exists()
    reader = db_loop.LoopReader(str(path))
    assert reader.rows("INSERT INTO t VALUES (1)", []) is None  # query_only: refused, not written
    assert not reader.budget.spent  # refused, not interrupted: no back-off for it
    assert reader.rows("SELECT count(*) FROM t", []) == [(0,)]


def test_a_statement_is_interrupted_within_about_a_hundred_steps_past_its_budget(path: Path) -> None:
    """The budget is looked at every TICK_STEPS VM steps: a text search (a row every ~18 steps)
    ran 3.0-3.7 ms of a 2 ms budget with 1,000."""
    reader = db_loop.LoopReader(str(path))
    calls = [0]

    def seen(x: int) -> int:
        calls[0] += 1
        return x

    reader.conn.create_function("seen", 1, seen)
    reader.budget.deadline = 0.0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(db_loop, "BUDGET_S", -1.0)  # past its budget from the first step
        sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT seen(x) FROM c LIMIT 100000"
        assert reader.rows(sql, []) is None
    assert reader.budget.spent
    assert 0 < calls[0] <= 10  # ~18 steps a row: 100 steps are ~5 rows (1,000 were ~55)


def test_an_always_slow_statement_is_tried_on_the_loop_once_per_back_off(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1024.0]
    monkeypatch.setattr(db_loop, "_clock", lambda: now[0])
    spent = itertools.count()  # each read used a second of CPU: slow, never preempted (a busy CI)
    monkeypatch.setattr(db_loop, "_cpu", lambda: float(next(spent)))
    monkeypatch.setattr(db_loop, "BACKOFF_S", 1.0)
    monkeypatch.setattr(db_loop, "BACKOFF_MAX_S", 4.0)
    # The fast statement is looked at too (a statement's VM steps count across its runs): preempted
    # past a 2 ms budget on a busy machine, this clock would call it slow.
    monkeypatch.setattr(db_loop, "BUDGET_S", 0.05)
    readers = db_loop.LoopReaders(str(path))
    tries: list[float] = []
    for _ in range(400):  # 50 s of calls, one every 0.125 s
        before = readers.interrupted
        assert readers.rows(SLOW, []) is None
        if readers.interrupted != before:
            tries.append(now[0])
        # A fast statement is not held back by the slow one's back-off.
        assert readers.rows("SELECT count(*) FROM t", []) == [(0,)]
        now[0] += 0.125
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert gaps[:3] == [1.0, 2.0, 4.0] and set(gaps[3:]) == {4.0}  # doubled, up to the maximum
    assert len(tries) == 14  # at 0, 1, 3, 7, then every 4 s to 47 (was 400 without the back-off)
    # Fast again (here: a larger budget): answered on the loop, and its back-off forgotten.
    monkeypatch.setattr(db_loop, "BUDGET_S", 60.0)
    now[0] += 4.0
    assert readers.rows(SLOW, []) == [(10_000_000,)]
    assert SLOW not in readers._backoff


def test_a_dropped_reader_closes_at_once(path: Path) -> None:
    """No reference cycle through the progress handler: the file is let go without a collection."""
    gc.disable()
    try:
        reader = db_loop.LoopReader(str(path))
        assert reader.rows("SELECT count(*) FROM t", []) == [(0,)]
        dropped = weakref.ref(reader)
        del reader
        assert dropped() is None and _open_files(path) == []
    finally:
        gc.enable()


def test_close_from_another_thread(path: Path) -> None:
    readers = db_loop.LoopReaders(str(path))
    assert readers.rows("SELECT count(*) FROM t", []) == [(0,)]
    old = readers._by_thread[threading.get_ident()]
    closer = threading.Thread(target=readers.close)
    closer.start()
    closer.join()
    assert _open_files(path) == []
    assert old.rows("SELECT 1", []) is None  # closed: answered by the caller's thread path
    assert readers.rows("SELECT count(*) FROM t", []) == [(0,)]  # a new reader for this thread
    readers.close()


async def test_dispose_closes_every_loop_reader(path: Path) -> None:
    db = Database(f"sqlite:///{path}")
    async with db.session("t", read_only=True) as s:
        await s.execute(text("SELECT count(*) FROM t"))
    assert db.loop_readers is not None
    readers = loop_readers(db._statements.sync_engine)
    assert readers is db.loop_readers  # only the statement reads' engine carries them
    assert loop_readers(db.engine.sync_engine) is None
    assert readers.rows("SELECT count(*) FROM t", []) == [(0,)]
    other = threading.Thread(target=readers.rows, args=("SELECT count(*) FROM t", []))
    other.start()
    other.join()
    assert len(readers._by_thread) == 2
    await db.dispose()
    assert _open_files(path) == []
    assert _left(path) == []  # checkpointed and removed by the last connection to close


def test_no_loop_readers_but_on_a_sqlite_file() -> None:
    db = Database("postgresql://u@localhost/x")
    assert db.loop_readers is None and loop_readers(db._statements.sync_engine) is None


def test_a_statement_preempted_before_its_budget_of_cpu_does_not_back_off(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted on wall time having used no CPU (the thread was preempted on a busy machine): the
    thread path answers it, and the next call is tried on the loop again."""
    monkeypatch.setattr(db_loop, "_cpu", lambda: 0.0)
    readers = db_loop.LoopReaders(str(path))
    for n in range(1, 4):
        assert readers.rows(SLOW, []) is None
        assert (readers.interrupted, readers.preempted) == (n, n)
    assert SLOW not in readers._backoff


def _napping(readers: db_loop.LoopReaders, seconds: float) -> str:
    """A statement of ~18,000 VM steps over 1,000 rows, which sleeps `seconds` at every 300th row:
    wall time with no CPU, as a preempted statement sees it."""
    reader = readers._reader()
    assert reader is not None

    def nap(x: int) -> int:
        if x % 300 == 0:
            time.sleep(seconds)
        return x

    reader.conn.create_function("nap", 1, nap)
    return "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT sum(nap(x)) FROM (SELECT x FROM c LIMIT 1000)"


def test_a_statement_preempted_past_its_wall_budget_is_answered_on_the_loop(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past BUDGET_S of wall time but not of CPU (the thread was preempted), a statement goes on:
    interrupted there, it would run again whole on the thread."""
    monkeypatch.setattr(db_loop, "_cpu", lambda: 0.0)
    monkeypatch.setattr(db_loop, "WALL_CAP_S", 60.0)  # however long a busy CI makes the naps
    readers = db_loop.LoopReaders(str(path))
    sql = _napping(readers, db_loop.BUDGET_S)
    assert readers.rows(sql, []) == [(500_500,)]  # 3 budgets of wall time
    assert readers.interrupted == 0


def test_a_statement_past_the_wall_cap_is_interrupted_whatever_its_cpu(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_loop, "_cpu", lambda: 0.0)
    readers = db_loop.LoopReaders(str(path))
    sql = _napping(readers, db_loop.WALL_CAP_S / 2)
    assert readers.rows(sql, []) is None  # at the third nap
    assert (readers.interrupted, readers.preempted) == (1, 1)  # no CPU used: no back-off
    assert sql not in readers._backoff
