"""OWASP API5 (function-level authorisation) in notify: the admin section of the contract.

Templates are configuration ("admin only, reads also for services"); GetTemplate and
PreviewTemplate had no role check, so any rep could read every template and drive the
renderer.
"""

from __future__ import annotations

import grpc
import pytest

from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from salesops.notify.v1 import template_pb2
from tests.notify import conftest as notify_conftest
from tests.notify.conftest import ADMIN, REP_A1, SERVICE, SUP_A, NotifyStack, auth

notify = notify_conftest.notify  # the fixture

BUILT_IN = "builtin.sla_reminder.zh-CN"
DRAFT = template_pb2.Template(
    template_key="probe", locale="en", category=N.NOTIFICATION_CATEGORY_SYSTEM, title="t", body="b"
)


@pytest.mark.parametrize("who", [REP_A1, SUP_A], ids=["rep", "supervisor"])
async def test_template_reads_and_previews_are_for_admins_and_services(notify: NotifyStack, who: str) -> None:
    calls = [
        ("GetTemplate", M.GetTemplateRequest(template_id=BUILT_IN)),
        ("PreviewTemplate", M.PreviewTemplateRequest(template_id=BUILT_IN)),
        ("PreviewTemplate", M.PreviewTemplateRequest(draft=DRAFT)),
    ]
    for name, request in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await getattr(notify.stub, name)(request, metadata=auth(who))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, name
    for allowed in (ADMIN, SERVICE):
        got = await notify.stub.GetTemplate(
            M.GetTemplateRequest(template_id=BUILT_IN), metadata=auth(allowed)
        )
        assert got.template.template_key == "sla_reminder"
        shown = await notify.stub.PreviewTemplate(
            M.PreviewTemplateRequest(draft=DRAFT), metadata=auth(allowed)
        )
        assert shown.rendered[0].body == "b"


async def test_subscribers_outside_the_callers_org_unit_do_not_exist_for_them(notify: NotifyStack) -> None:
    for user in ("rep-b1", "sup-b", "director-east"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await notify.stub.GetSubscriber(M.GetSubscriberRequest(user_id=user), metadata=auth(REP_A1))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, user
    me = await notify.stub.GetSubscriber(M.GetSubscriberRequest(user_id="me"), metadata=auth(REP_A1))
    assert me.subscriber.user_id == "rep-a1" and "****" not in me.subscriber.phone
