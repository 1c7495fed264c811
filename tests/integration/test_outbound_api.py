"""Outbound subscriptions over real gRPC: secrets write-only and shown once, v1a keys, rotation, access, audit."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import select

from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration import seed_outbound
from services.integration.domain.signatures import verify_standard
from services.integration.seed import DEMO_SIGNING_SECRET
from services.integration.seed_outbound import DEMO_SUBSCRIPTION_ID
from services.integration.store_outbound import WebhookSubscriptionRow
from tests.integration.conftest import token
from tests.integration.outbound_support import Stack, code_of, outbound, receiver, stack, subscription

__all__ = ["outbound"]
pytestmark = pytest.mark.timeout(120)


async def test_create_shows_a_made_secret_once_and_never_again(outbound: Stack) -> None:
    made = await outbound.call("CreateWebhookSubscription", pb.CreateWebhookSubscriptionRequest(
        subscription=subscription("https://erp.example.com/hooks", headers={"X-Partner": "acme"})
    ))  # fmt: skip
    secret = made.generated_signing_secret
    assert secret.startswith("whsec_") and made.subscription.signing_secret_hint == secret[-4:]
    sub = made.subscription
    assert sub.state == wh.SUBSCRIPTION_STATE_ENABLED and sub.owner_user_id == "admin" and sub.etag == "1"
    assert list(sub.event_types) == ["pipeline.DealWon", "leads.*"] and sub.headers["X-Partner"] == "acme"
    got = await outbound.call(
        "GetWebhookSubscription", pb.GetWebhookSubscriptionRequest(subscription_id="sub-1")
    )
    assert secret not in str(got) and not got.subscription.signing_secret
    again = await outbound.call("CreateWebhookSubscription", pb.CreateWebhookSubscriptionRequest(
        subscription=subscription("https://erp.example.com/hooks", headers={"X-Partner": "acme"})
    ))  # fmt: skip
    assert again.generated_signing_secret == "" and again.subscription.subscription_id == "sub-1"
    other = subscription("https://erp.example.com/other")
    assert (
        await code_of(
            outbound.call(
                "CreateWebhookSubscription", pb.CreateWebhookSubscriptionRequest(subscription=other)
            )
        )
        == grpc.StatusCode.ALREADY_EXISTS
    )
    async with outbound.db.session("demo") as s:
        row = (await s.scalars(select(WebhookSubscriptionRow))).one()
    assert secret not in row.sealed_secret and secret.encode() not in row.body  # sealed at rest


async def test_ed25519_subscriptions_publish_a_public_key_and_keep_the_private_one(outbound: Stack) -> None:
    made = await outbound.call("CreateWebhookSubscription", pb.CreateWebhookSubscriptionRequest(
        subscription=subscription("https://erp.example.com/h", signing_scheme=wh.WEBHOOK_SIGNING_SCHEME_ED25519)
    ))  # fmt: skip
    assert made.generated_signing_secret == "" and made.subscription.verification_public_key.startswith(
        "whpk_"
    )
    assert made.subscription.signing_secret_hint == ""
    rotated = await outbound.call(
        "RotateWebhookSubscriptionSecret", pb.RotateWebhookSubscriptionSecretRequest(subscription_id="sub-1")
    )
    s = rotated.subscription
    assert s.verification_public_key != made.subscription.verification_public_key
    assert s.previous_verification_public_key == made.subscription.verification_public_key
    assert s.HasField("previous_secret_expire_time")


async def test_every_problem_at_once_and_no_internal_destinations(outbound: Stack) -> None:
    bad = wh.WebhookSubscription(
        subscription_id="sub 1",
        endpoint_url="https://169.254.169.254/latest",
        event_types=["Pipeline"],
        headers={"Authorization": "Bearer x"},
        signing_secret="short",
        retry_policy=wh.RetryPolicy(max_attempts=30, multiplier=2.0),
        timeout=Duration(seconds=60),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await outbound.call(
            "CreateWebhookSubscription", pb.CreateWebhookSubscriptionRequest(subscription=bad)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    text = (err.value.details() or "") + str(err.value.trailing_metadata())
    for f in ("subscription_id", "display_name", "endpoint_url", "event_types", "headers", "signing_secret",
              "retry_policy.max_attempts", "retry_policy", "timeout"):  # fmt: skip
        assert f"subscription.{f}" in text, f


async def test_admins_only_other_tenants_not_found_and_audited(outbound: Stack) -> None:
    create = pb.CreateWebhookSubscriptionRequest(subscription=subscription("https://erp.example.com/h"))
    assert await code_of(outbound.call("CreateWebhookSubscription", create, user="rep-a1")) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    await outbound.call("CreateWebhookSubscription", create)
    for method, req in [
        ("GetWebhookSubscription", pb.GetWebhookSubscriptionRequest(subscription_id="sub-1")),
        ("DisableWebhookSubscription", pb.DisableWebhookSubscriptionRequest(subscription_id="sub-1")),
        (
            "RotateWebhookSubscriptionSecret",
            pb.RotateWebhookSubscriptionSecretRequest(subscription_id="sub-1"),
        ),
        ("DeleteWebhookSubscription", pb.DeleteWebhookSubscriptionRequest(subscription_id="sub-1")),
        ("ReplayDeadLetters", pb.ReplayDeadLettersRequest(subscription_id="sub-1")),
        ("TestWebhookSubscription", pb.TestWebhookSubscriptionRequest(subscription_id="sub-1")),
    ]:
        assert await code_of(outbound.call(method, req, tenant="acme")) == grpc.StatusCode.NOT_FOUND, method
        assert await code_of(outbound.call(method, req, user="rep-a1")) == grpc.StatusCode.PERMISSION_DENIED
    listed = await outbound.call(
        "ListWebhookSubscriptions", pb.ListWebhookSubscriptionsRequest(), tenant="acme"
    )
    assert list(listed.subscriptions) == []

    incoming = wh.WebhookSubscription(subscription_id="sub-1", event_types=["pipeline.*"], etag="1")
    mask = FieldMask(paths=["event_types"])
    updated = await outbound.call(
        "UpdateWebhookSubscription",
        pb.UpdateWebhookSubscriptionRequest(subscription=incoming, update_mask=mask),
    )
    assert list(updated.subscription.event_types) == ["pipeline.*"] and updated.subscription.etag == "2"
    stale = pb.UpdateWebhookSubscriptionRequest(subscription=incoming, update_mask=mask)
    assert await code_of(outbound.call("UpdateWebhookSubscription", stale)) == grpc.StatusCode.ABORTED
    by_type = await outbound.call(
        "ListWebhookSubscriptions", pb.ListWebhookSubscriptionsRequest(event_type="pipeline.DealLost")
    )
    assert [s.subscription_id for s in by_type.subscriptions] == ["sub-1"]
    none = await outbound.call(
        "ListWebhookSubscriptions", pb.ListWebhookSubscriptionsRequest(event_type="leads.X")
    )
    assert list(none.subscriptions) == []
    await outbound.call(
        "DisableWebhookSubscription",
        pb.DisableWebhookSubscriptionRequest(subscription_id="sub-1", reason="maint"),
    )
    await outbound.call(
        "RotateWebhookSubscriptionSecret",
        pb.RotateWebhookSubscriptionSecretRequest(subscription_id="sub-1", overlap=Duration(seconds=3600)),
    )
    await outbound.call(
        "DeleteWebhookSubscription", pb.DeleteWebhookSubscriptionRequest(subscription_id="sub-1")
    )
    trail = pb.ListWebhookSubscriptionChangesRequest(subscription_id="sub-1", page_size=2)
    changes, token = [], ""
    while True:  # kept after the delete, oldest first, paged
        trail.page_token = token
        page = await outbound.call("ListWebhookSubscriptionChanges", trail)
        changes += list(page.changes)
        token = page.next_page_token
        if not token:
            break
    assert [c.action for c in changes] == ["create", "update", "disable", "rotate_secret", "delete"]
    assert changes[2].reason == "maint" and list(changes[3].fields) == ["signing_secret"]
    assert changes[1].changed_by == "admin" and list(changes[1].fields) == ["event_types"]
    trail.page_token = ""
    assert await code_of(outbound.call("ListWebhookSubscriptionChanges", trail, tenant="acme")) == (
        grpc.StatusCode.NOT_FOUND
    )
    assert await code_of(outbound.call("ListWebhookSubscriptionChanges", trail, user="rep-a1")) == (
        grpc.StatusCode.PERMISSION_DENIED
    )


async def test_ping_is_signed_and_reports_the_attempt(outbound: Stack) -> None:
    async with receiver() as r:
        made = await outbound.call(
            "CreateWebhookSubscription", pb.CreateWebhookSubscriptionRequest(subscription=subscription(r.url))
        )
        tested = await outbound.call(
            "TestWebhookSubscription", pb.TestWebhookSubscriptionRequest(subscription_id="sub-1")
        )
    assert tested.ok and tested.attempt.http_status == 204
    seen = r.seen[0]
    assert seen.headers["x-salesops-event-type"] == "integration.WebhookPing"
    checked = verify_standard(seen.headers, seen.body, secret=made.generated_signing_secret, public_key_text="",
                              now=datetime.now(UTC))  # fmt: skip
    assert checked.ok


async def test_demo_subscription_seeds_once_and_signs_for_the_demo_receiver(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESOPS_OUTBOUND_ALLOW_LOOPBACK", "1")  # what `make run` sets (embedded mode)
    async with stack(database_url) as s:
        md = (("authorization", f"Bearer {token('admin')}"),)
        for _ in range(2):  # idempotent
            await seed_outbound.seed_outbound(s.stub, md, DEMO_SIGNING_SECRET)
        got = await s.call(
            "GetWebhookSubscription", pb.GetWebhookSubscriptionRequest(subscription_id=DEMO_SUBSCRIPTION_ID)
        )
    sub = got.subscription
    assert sub.endpoint_url.endswith("/hooks/v1/demo/demo-finance") and sub.endpoint_url.startswith(
        "http://127.0.0.1"
    )
    assert sub.signing_secret_hint == DEMO_SIGNING_SECRET[-4:] and "pipeline.DealWon" in sub.event_types
    assert not set(sub.event_types) & {
        "payment.succeeded",
        "invoice.issued",
        "contract.signed",
    }  # no loop back


async def test_the_demo_subscription_is_skipped_where_loopback_is_refused(database_url: str) -> None:
    async with stack(database_url) as s:  # no loopback setting: the production policy
        md = (("authorization", f"Bearer {token('admin')}"),)
        await seed_outbound.seed_outbound(s.stub, md, DEMO_SIGNING_SECRET)
        listed = await s.call("ListWebhookSubscriptions", pb.ListWebhookSubscriptionsRequest())
    assert list(listed.subscriptions) == []
