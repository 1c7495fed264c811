"""Pipeline settings: defaults, admin-only merge with etag, checked values, the currency fixed once deals exist."""

from __future__ import annotations

import grpc

from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import settings_pb2
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import bad_fields, create, mask, new_deal, refused
from tests.pipeline.test_targets import COMPANY, profiles, put, target


async def test_settings_defaults_merge_and_checks(pipeline: Pipeline) -> None:
    got = (
        await pipeline.call("GetPipelineSettings", pb.GetPipelineSettingsRequest(), user="rep-a1")
    ).settings
    assert (got.base_currency, got.time_zone, got.converted_deal_close_offset_days, got.etag) == (
        "CNY",
        "Asia/Shanghai",
        90,
        "0",
    )
    assert got.weekly_update.due_time.hours == 18
    change = pb.UpdatePipelineSettingsRequest(
        settings=settings_pb2.PipelineSettings(base_currency="EUR", time_zone="Europe/Berlin", etag="0"),
        update_mask=mask("base_currency", "time_zone"),
    )
    await refused(
        pipeline.call("UpdatePipelineSettings", change, user="sup-a"), grpc.StatusCode.PERMISSION_DENIED
    )
    saved = (await pipeline.call("UpdatePipelineSettings", change)).settings
    assert (saved.base_currency, saved.time_zone, saved.etag, saved.audit.updated_by) == (
        "EUR",
        "Europe/Berlin",
        "1",
        "admin",
    )
    assert saved.coaching_tenure_months == 6  # untouched by the mask
    await refused(pipeline.call("UpdatePipelineSettings", change), grpc.StatusCode.ABORTED)
    bad = pb.UpdatePipelineSettingsRequest(
        settings=settings_pb2.PipelineSettings(
            time_zone="Mars/Olympus", base_currency="eur", converted_deal_close_offset_days=-1
        ),
        update_mask=mask("time_zone", "base_currency", "converted_deal_close_offset_days"),
    )
    status = await refused(pipeline.call("UpdatePipelineSettings", bad), grpc.StatusCode.INVALID_ARGUMENT)
    assert bad_fields(status) == [
        "settings.time_zone",
        "settings.base_currency",
        "settings.converted_deal_close_offset_days",
    ]

    # Deals follow the tenant's currency; once there are deals it is fixed.
    await refused(
        pipeline.call("CreateDeal", pb.CreateDealRequest(deal=new_deal("C1")), user="rep-a1"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    eur = new_deal("C2")
    eur.amount.CopyFrom(Money(amount_minor=500, currency="EUR"))
    assert (await create(pipeline, eur)).amount.currency == "EUR"
    back = pb.UpdatePipelineSettingsRequest(
        settings=settings_pb2.PipelineSettings(base_currency="CNY"), update_mask=mask("base_currency")
    )
    await refused(pipeline.call("UpdatePipelineSettings", back))
    offset = pb.UpdatePipelineSettingsRequest(
        settings=settings_pb2.PipelineSettings(converted_deal_close_offset_days=30),
        update_mask=mask("converted_deal_close_offset_days"),
    )
    assert (
        await pipeline.call("UpdatePipelineSettings", offset)
    ).settings.converted_deal_close_offset_days == 30


async def test_the_currency_is_fixed_once_targets_exist(pipeline: Pipeline) -> None:
    """No deal yet, but a target holds money in the base currency: changing it is refused too."""
    await profiles(pipeline)
    await put(pipeline, target("co", COMPANY, 1_000_000))
    eur = pb.UpdatePipelineSettingsRequest(
        settings=settings_pb2.PipelineSettings(base_currency="EUR"), update_mask=mask("base_currency")
    )
    status = await refused(pipeline.call("UpdatePipelineSettings", eur))
    assert "CURRENCY_IN_USE" in str(status) and "targets" in str(status)
    got = (await pipeline.call("GetPipelineSettings", pb.GetPipelineSettingsRequest())).settings
    assert got.base_currency == "CNY"
