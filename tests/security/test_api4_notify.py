"""OWASP API4 (unrestricted resource consumption) in notify: the template engine.

The `{{ ... }}` scan was a regex retried at every `{{`, quadratic in the source and run
on the event loop (32 KB took seconds); templates and what they render to had no size
limit; a bad filter argument was a 500.
"""

from __future__ import annotations

import time

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from salesops.notify.v1 import template_pb2
from tests.notify import conftest as notify_conftest
from tests.notify.conftest import ADMIN, SERVICE, NotifyStack, auth

notify = notify_conftest.notify  # the fixture


def _draft(body: str, *variables: str) -> template_pb2.Template:
    return template_pb2.Template(
        template_key="probe",
        locale="en",
        category=N.NOTIFICATION_CATEGORY_SYSTEM,
        title="probe",
        body=body,
        variables=[
            template_pb2.TemplateVariable(name=v, type=template_pb2.VARIABLE_TYPE_STRING) for v in variables
        ],
    )


async def _preview(
    notify: NotifyStack, draft: template_pb2.Template, **kw: object
) -> M.PreviewTemplateResponse:
    return await notify.stub.PreviewTemplate(  # type: ignore[no-any-return]
        M.PreviewTemplateRequest(draft=draft, **kw),  # type: ignore[arg-type]
        metadata=auth(ADMIN),
        timeout=30,
    )


async def test_adversarial_braces_are_linear_and_oversized_templates_refused(notify: NotifyStack) -> None:
    # Balanced counts, but every `{{` comes after the last `}}`: the worst case of the old scan.
    just_under = "}}" * 4_500 + "{{" * 4_500  # 18,000 characters
    started = time.monotonic()
    out = await _preview(notify, _draft(just_under))
    assert time.monotonic() - started < 1.0
    assert out.rendered[0].body == just_under  # no expression in it: literal text
    oversized = "}}" * 8_000 + "{{" * 8_000  # 32 KB
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _preview(notify, _draft(oversized))
    assert time.monotonic() - started < 1.0
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most" in (err.value.details() or "")


async def test_rendered_output_is_bounded(notify: NotifyStack) -> None:
    big = Struct()
    big.update({"x": "y" * 40_000})
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _preview(notify, _draft("{{ x }}{{ x }}{{ x }}", "x"), variables=big)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "renders to more than" in (err.value.details() or "")
    # The same through a send: a 400 for the sender, not a 500 and not a 120 KB inbox item.
    created = await notify.stub.CreateTemplate(
        M.CreateTemplateRequest(template=_draft("{{ x }}{{ x }}{{ x }}", "x")), metadata=auth(ADMIN)
    )
    assert created.template.template_id
    n = N.Notification(
        category=N.NOTIFICATION_CATEGORY_SYSTEM,
        recipients=[N.Recipient(user_id="rep-a1")],
        template=N.TemplateContent(template_key="probe", locale="en", variables=big),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.SendNotification(M.SendNotificationRequest(notification=n), metadata=auth(SERVICE))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("argument", ["x", "0", "-3", "99999999999999999999"])
async def test_bad_filter_argument_is_a_field_violation_not_a_500(notify: NotifyStack, argument: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _preview(notify, _draft(f"{{{{ x|truncate({argument}) }}}}", "x"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "truncate takes a length" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.CreateTemplate(
            M.CreateTemplateRequest(template=_draft(f"{{{{ x|truncate({argument}) }}}}", "x")),
            metadata=auth(ADMIN),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_filters_given_values_they_cannot_read_render_them_as_is(notify: NotifyStack) -> None:
    values = Struct()
    values.update({"x": "not a time", "d": "soon"})
    out = await _preview(notify, _draft("{{ x|datetime }} / {{ d|duration }}", "x", "d"), variables=values)
    assert out.rendered[0].body == "not a time / soon"


PAST_9999 = 253_402_300_800 + 10  # a Timestamp may say so on the wire; datetime cannot hold it
BEFORE_YEAR_1 = -62_135_596_800 - 10
A_LONG_SPAN = 315_576_000_000  # the largest Duration: now + it overflows datetime


def _far(name: str) -> N.Notification:
    from tests.notify.test_send_inbox import reminder

    n = reminder("rep-a1", lead=name, dedupe="far" if name == "dedupe" else "")
    if name == "due":
        n.due_time.CopyFrom(Timestamp(seconds=PAST_9999))
    elif name == "due_early":
        n.due_time.CopyFrom(Timestamp(seconds=BEFORE_YEAR_1))
    elif name == "expire":
        n.expire_time.CopyFrom(Timestamp(seconds=PAST_9999))
    elif name == "dedupe":
        n.dedupe_window.CopyFrom(Duration(seconds=A_LONG_SPAN))
    else:
        n.ack.ack_timeout.CopyFrom(Duration(seconds=A_LONG_SPAN))
    return n


@pytest.mark.parametrize("name", ["due", "due_early", "expire", "dedupe", "ack"])
async def test_out_of_range_times_are_a_field_violation_not_a_500(notify: NotifyStack, name: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.SendNotification(
            M.SendNotificationRequest(notification=_far(name)), metadata=auth(SERVICE)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()


async def test_an_out_of_range_delivery_filter_is_a_field_violation_not_a_500(notify: NotifyStack) -> None:
    request = M.ListDeliveriesRequest()
    request.filter.queue_time_start.CopyFrom(Timestamp(seconds=PAST_9999))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.ListDeliveries(request, metadata=auth(ADMIN))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_windows_in_preferences_and_settings_are_bounded(notify: NotifyStack) -> None:
    # A rep's own rate-limit window of 10,000 years made every send to them INTERNAL (now - window).
    from salesops.notify.v1 import preference_pb2, settings_pb2
    from tests.notify.conftest import REP_A1

    pref = preference_pb2.Preference(user_id="me")
    pref.rate_limit.max_deliveries = 1
    pref.rate_limit.window.CopyFrom(Duration(seconds=A_LONG_SPAN))
    settings = settings_pb2.NotifySettings()
    settings.default_dedupe_window.CopyFrom(Duration(seconds=A_LONG_SPAN))
    for call, request, tok in (
        ("UpdatePreference", M.UpdatePreferenceRequest(preference=pref), REP_A1),
        ("UpdateNotifySettings", M.UpdateNotifySettingsRequest(settings=settings), ADMIN),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await getattr(notify.stub, call)(request, metadata=auth(tok))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, call
    pref.rate_limit.window.CopyFrom(Duration(seconds=3600))
    await notify.stub.UpdatePreference(M.UpdatePreferenceRequest(preference=pref), metadata=auth(REP_A1))
