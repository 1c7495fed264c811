"""IntegrationSettings: one versioned document per tenant (kit TenantSettings), admins only,
validated whole with field violations, etag compare-and-set, audited; and the places that used
constants read it (partner token lifetime, rotation grace, the digest's schedule and week)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from google.type import dayofweek_pb2, timeofday_pb2  # type: ignore[import-untyped]

from kit.grpc.errors import status_from_error
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import settings_pb2 as s
from services.integration.insight_activities import digest_when, weekly_schedule
from tests.integration.conftest import Integration
from tests.integration.test_partner_keys import World, create, world  # noqa: F401  (the fixture)

DAY = 86400


def violations(err: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> set[str]:
    found = set()
    for detail in status_from_error(err.value).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found |= {v.field for v in bad.field_violations}
    return found


def update(settings: s.IntegrationSettings, *paths: str) -> pb.UpdateIntegrationSettingsRequest:
    return pb.UpdateIntegrationSettingsRequest(settings=settings, update_mask=FieldMask(paths=list(paths)))


async def test_defaults_are_the_former_constants_and_admins_only(integration: Integration) -> None:
    got = (await integration.call("GetIntegrationSettings", pb.GetIntegrationSettingsRequest())).settings
    assert got.default_lag_alert_threshold.seconds == DAY and got.lag_explanation_window.seconds == DAY
    assert got.partner_token_ttl.seconds == 15 * 60 and got.rotation_grace_period.seconds == DAY
    assert got.transcript_retention.seconds == 90 * DAY and got.digest_top_n == 10
    assert (got.digest_day, got.digest_time.hours, got.time_zone) == (
        dayofweek_pb2.MONDAY,
        8,
        "Asia/Shanghai",
    )
    assert got.etag == "0" and not got.audit.updated_by
    for method, request in (
        ("GetIntegrationSettings", pb.GetIntegrationSettingsRequest()),
        ("UpdateIntegrationSettings", update(s.IntegrationSettings(digest_top_n=5), "digest_top_n")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await integration.call(method, request, user="rep-a1")
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_update_is_validated_whole_etagged_and_audited(integration: Integration) -> None:
    bad = s.IntegrationSettings(
        partner_token_ttl=Duration(seconds=2 * 3600),
        digest_top_n=0,
        time_zone="Mars/Olympus",
        rotation_grace_period=Duration(seconds=8 * DAY),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await integration.call(
            "UpdateIntegrationSettings",
            update(bad, "partner_token_ttl", "digest_top_n", "time_zone", "rotation_grace_period"),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(err) == {
        "settings.partner_token_ttl",
        "settings.digest_top_n",
        "settings.time_zone",
        "settings.rotation_grace_period",
    }
    good = s.IntegrationSettings(
        partner_token_ttl=Duration(seconds=300),
        digest_day=dayofweek_pb2.FRIDAY,
        digest_time=timeofday_pb2.TimeOfDay(hours=17, minutes=30),
        time_zone="Europe/Berlin",
        etag="0",
    )
    saved = (
        await integration.call(
            "UpdateIntegrationSettings",
            update(good, "partner_token_ttl", "digest_day", "digest_time", "time_zone"),
        )
    ).settings
    assert saved.partner_token_ttl.seconds == 300 and saved.etag == "1"
    assert saved.audit.updated_by == "admin" and saved.transcript_retention.seconds == 90 * DAY  # untouched
    with pytest.raises(grpc.aio.AioRpcError) as err:  # the etag of before
        await integration.call("UpdateIntegrationSettings", update(good, "partner_token_ttl"))
    assert err.value.code() == grpc.StatusCode.ABORTED
    when = digest_when(saved)
    assert (when.day, when.hour, when.minute, when.zone) == (5, 17, 30, "Europe/Berlin")
    schedule = weekly_schedule("demo", "q", when=when)
    assert schedule.spec.time_zone_name == "Europe/Berlin"
    assert schedule.spec.calendars[0].day_of_week[0].start == 5
    default = weekly_schedule("demo", "q")
    assert (
        default.spec.calendars[0].day_of_week[0].start == 1 and default.spec.time_zone_name == "Asia/Shanghai"
    )
    zero = s.IntegrationSettings(rotation_grace_period=Duration(), digest_time=timeofday_pb2.TimeOfDay())
    kept = (
        await integration.call(
            "UpdateIntegrationSettings", update(zero, "rotation_grace_period", "digest_time")
        )
    ).settings
    assert kept.rotation_grace_period.seconds == 0 and kept.digest_time.hours == 0  # not the defaults
    again = (await integration.call("GetIntegrationSettings", pb.GetIntegrationSettingsRequest())).settings
    assert again.rotation_grace_period.ToSeconds() == 0 and again.digest_time.hours == 0
    assert again.partner_token_ttl.seconds == 300 and again.etag == "2"
    other = await integration.call(
        "GetIntegrationSettings", pb.GetIntegrationSettingsRequest(), tenant="acme"
    )
    assert other.settings.partner_token_ttl.seconds == 15 * 60  # per tenant


async def test_partner_token_lifetime_and_rotation_grace_follow_the_settings(world: World) -> None:  # noqa: F811
    policy = s.IntegrationSettings(
        partner_token_ttl=Duration(seconds=300), rotation_grace_period=Duration(seconds=7200)
    )
    await world.admin(
        "UpdateIntegrationSettings", update(policy, "partner_token_ttl", "rotation_grace_period")
    )
    key, secret = await create(world)
    answer = await world.exchange(secret)
    lifetime = answer.expire_time.ToDatetime(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(minutes=3) < lifetime <= timedelta(minutes=5)
    rotated = await world.admin("RotatePartnerKey", pb.RotatePartnerKeyRequest(key_id=key.key_id))
    ends = rotated.partner_key.previous_secret_expire_time.ToDatetime(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(minutes=110) < ends <= timedelta(hours=2)
