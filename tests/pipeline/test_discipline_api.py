"""What freezing and dwell look like over gRPC (SQLite and PostgreSQL): the flags on the deal, the
managers' filters, the audited change history, the frozen commit out of the commit figure, thawing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask

from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import types_pb2
from services.pipeline import discipline, stage_models
from services.pipeline.store import transactions
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import create, in_days, mask, new_deal


async def _listed(p: Pipeline, user: str, **flt: Any) -> list[str]:
    req = pb.ListDealsRequest(filter=pb.DealFilter(**flt))
    return sorted(d.deal_id for d in (await p.call("ListDeals", req, user)).deals)


async def test_frozen_and_dwell_flags_are_shown_filtered_audited_and_thawed(pipeline: Pipeline) -> None:
    tx = transactions(pipeline.db)

    async def limit(uow: Any) -> None:
        model = await stage_models.current(uow)
        model.stages[0].dwell_limit.CopyFrom(
            types_pb2.TimeLimit(value=7, unit=types_pb2.TIME_UNIT_CALENDAR_DAYS)
        )
        await stage_models.update(uow, model, FieldMask(paths=["stages"]), "admin", {}, {})

    await tx.run("demo", limit)
    commit = types_pb2.FORECAST_CATEGORY_COMMIT
    await create(pipeline, new_deal("F1", forecast_category=commit, expected_close_date=in_days(20)))
    await create(pipeline, new_deal("F2", expected_close_date=in_days(20)))
    await create(pipeline, new_deal("B1", expected_close_date=in_days(20)), user="rep-b1")
    # Two weeks on, nobody updated anything: the deadline freezes all three and all are over 7 days.
    later = datetime.now(UTC) + timedelta(days=15)
    assert await tx.run("demo", lambda uow: discipline.freeze_overdue(uow, later)) == 3
    assert await tx.run("demo", lambda uow: discipline.flag_dwell(uow, later)) == 3
    # A rep's update thaws their deal (UpdateDeal counts as the weekly update).
    f2 = (await pipeline.call("GetDeal", pb.GetDealRequest(deal_id="F2"), "rep-a1")).deal
    f2.next_step = "call the buyer"
    await pipeline.call("UpdateDeal", pb.UpdateDealRequest(deal=f2, update_mask=mask("next_step")), "rep-a1")

    f1 = (await pipeline.call("GetDeal", pb.GetDealRequest(deal_id="F1"), "sup-a")).deal
    assert f1.frozen and f1.frozen_time.seconds and f1.dwell.exceeded
    assert f1.effective_forecast_category == types_pb2.FORECAST_CATEGORY_BEST_CASE  # out of the commit
    assert f1.dwell.dwell_limit == types_pb2.TimeLimit(value=7, unit=types_pb2.TIME_UNIT_CALENDAR_DAYS)
    assert await _listed(pipeline, "sup-a", frozen=True) == ["F1"]
    assert await _listed(pipeline, "sup-a", frozen=False) == ["F2"]
    assert await _listed(pipeline, "sup-a", dwell_exceeded=True) == ["F1", "F2"]
    assert await _listed(pipeline, "director-east", frozen=True) == ["B1", "F1"]
    assert await _listed(pipeline, "rep-b1", dwell_exceeded=True) == ["B1"]
    assert await _listed(pipeline, "rep-b1", dwell_exceeded=False) == []
    other = pb.ListDealsRequest(filter=pb.DealFilter(dwell_exceeded=True))
    assert not (await pipeline.call("ListDeals", other, "sup-a", tenant="acme")).deals

    changes = (
        await pipeline.call("ListDealChanges", pb.ListDealChangesRequest(deal_id="F2"), "sup-a")
    ).changes
    frozen = [(c.old_value, c.new_value, c.changed_by) for c in changes if c.field == "frozen"]
    assert frozen == [("false", "true", "system:pipeline"), ("true", "false", "rep-a1")]
    only = pb.ListDealChangesRequest(deal_id="F2", fields=["frozen"])  # the filter takes the freeze rows
    filtered = (await pipeline.call("ListDealChanges", only, "sup-a")).changes
    assert [(c.field, c.old_value, c.new_value) for c in filtered] == [
        ("frozen", "false", "true"),
        ("frozen", "true", "false"),
    ]
    f2 = (await pipeline.call("GetDeal", pb.GetDealRequest(deal_id="F2"), "rep-a1")).deal
    assert not f2.frozen and not f2.HasField("frozen_time")

    # The forecast: the frozen commit is counted as best case, and managers see the frozen amount.
    req = pb.GetForecastRequest(period=types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_YEAR))
    req.period.start_date.CopyFrom(in_days(20))
    totals = (await pipeline.call("GetForecast", req, "sup-a")).forecast.totals
    assert totals.frozen_deal_count == 1
    counted = {c.category: c.deal_count for c in totals.categories}
    assert counted.get(commit, 0) == 0 and counted[types_pb2.FORECAST_CATEGORY_BEST_CASE] == 1
