"""ListDeals' page and total are one statement (no snapshot needed for them to agree), scoped to the
caller's tenant and visibility; a page past the last row is counted apart."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, event

from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline.store import DealRow
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import new_deal
from tests.pipeline.test_api_scope import SEES, seed


async def test_page_and_total_are_one_statement_in_the_callers_scope(pipeline: Pipeline) -> None:
    await seed(pipeline)
    for i in range(3):  # another tenant's deals are never counted
        await pipeline.call(
            "CreateDeal", pb.CreateDealRequest(deal=new_deal(f"X{i}")), user="rep-a1", tenant="acme"
        )
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(pipeline.db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        for user in ("rep-a1", "sup-a", "admin"):
            statements.clear()
            listed = await pipeline.call("ListDeals", pb.ListDealsRequest(page_size=2), user=user)
            assert len(statements) == 1, statements  # two (count, then page) before
            assert listed.total_size == len(SEES[user])
            assert {d.deal_id for d in listed.deals} <= SEES[user]
    finally:
        event.remove(pipeline.db.engine.sync_engine, "before_cursor_execute", seen)


async def test_a_page_past_the_last_row_still_has_its_total(pipeline: Pipeline) -> None:
    await seed(pipeline)
    first = await pipeline.call("ListDeals", pb.ListDealsRequest(page_size=4), user="admin")
    assert first.total_size == 5 and first.next_page_token
    # The one deal left for the next page goes away: that page has no row to carry the total.
    last = {d.deal_id for d in first.deals} ^ set(SEES["admin"])
    async with pipeline.db.system_session() as session:
        await session.execute(delete(DealRow).where(DealRow.deal_id.in_(last), DealRow.tenant_id == "demo"))
        await session.commit()
    rest = await pipeline.call(
        "ListDeals", pb.ListDealsRequest(page_size=4, page_token=first.next_page_token), user="admin"
    )
    assert not rest.deals and not rest.next_page_token
    assert rest.total_size == 4
