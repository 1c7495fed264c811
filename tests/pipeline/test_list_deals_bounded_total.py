"""ListDeals' total_size is bounded (ListDealsResponse.total_size): exact up to COUNT_CAP matches,
COUNT_CAP + 1 above it, the same on every page, still one statement, another tenant never counted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, insert, select, update

from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline.repositories.deals import COUNT_CAP
from services.pipeline.store import DealRow
from tests.pipeline.conftest import Pipeline
from tests.pipeline.test_api_scope import SEES, seed


async def copies_of(pipeline: Pipeline, deal_id: str, n: int, tenant: str = "demo") -> None:
    """`n` copies of a seeded deal (its owner and org), written in one batch."""
    async with pipeline.db.system_session() as session:
        row = (await session.execute(select(DealRow.__table__).where(DealRow.deal_id == deal_id))).one()
        base: dict[str, Any] = dict(row._mapping)
        rows = [
            {**base, "deal_id": f"{deal_id}-{i:05d}", "lead_id": None, "tenant_id": tenant} for i in range(n)
        ]
        await session.execute(insert(DealRow), rows)
        await session.commit()


async def test_the_total_is_exact_up_to_the_cap_and_says_more_above_it(pipeline: Pipeline) -> None:
    await seed(pipeline)
    # rep-a1 sees exactly COUNT_CAP deals; admin (and the tenant) more than that.
    await copies_of(pipeline, "A1", COUNT_CAP - len(SEES["rep-a1"]))
    await copies_of(pipeline, "A1", 50, tenant="acme")  # never counted in demo
    mine = await pipeline.call("ListDeals", pb.ListDealsRequest(page_size=5), user="rep-a1")
    assert mine.total_size == COUNT_CAP
    assert (await pipeline.call("ListDeals", pb.ListDealsRequest(), user="rep-a2")).total_size == 1

    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(pipeline.db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        token, totals, pages = "", set(), 0
        while pages < 3:  # the same "more than COUNT_CAP" on every page
            statements.clear()
            page = await pipeline.call(
                "ListDeals", pb.ListDealsRequest(page_size=100, page_token=token), user="admin"
            )
            assert len(statements) == 1, statements
            totals.add(page.total_size)
            token, pages = page.next_page_token, pages + 1
    finally:
        event.remove(pipeline.db.engine.sync_engine, "before_cursor_execute", seen)
    assert totals == {COUNT_CAP + 1}
    # Filters narrow the count below the cap again: exact.
    a3 = await pipeline.call(
        "ListDeals", pb.ListDealsRequest(filter=pb.DealFilter(owner_user_ids=["rep-a2"])), user="admin"
    )
    assert a3.total_size == 1


async def test_a_page_past_the_last_row_is_counted_with_the_same_bound(pipeline: Pipeline) -> None:
    await seed(pipeline)
    await copies_of(pipeline, "A1", COUNT_CAP + 20)
    order = "update_time desc"
    first = await pipeline.call("ListDeals", pb.ListDealsRequest(page_size=1, order_by=order), user="admin")
    assert first.total_size == COUNT_CAP + 1 and first.next_page_token
    # Every other deal moves before the first in this order: the next page has no row to carry
    # the total, which is counted apart, as bounded.
    async with pipeline.db.system_session() as session:
        await session.execute(
            update(DealRow)
            .where(DealRow.tenant_id == "demo", DealRow.deal_id != first.deals[0].deal_id)
            .values(updated_at=datetime(2099, 1, 1, tzinfo=UTC))
        )
        await session.commit()
    rest = await pipeline.call(
        "ListDeals",
        pb.ListDealsRequest(page_size=1, order_by=order, page_token=first.next_page_token),
        user="admin",
    )
    assert not rest.deals and not rest.next_page_token and rest.total_size == COUNT_CAP + 1
