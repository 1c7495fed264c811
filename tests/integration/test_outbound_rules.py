"""Outbound webhook rules without I/O: the schedule, answers, Retry-After, matching, signing vectors, rotation."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kit.events import new_envelope
from salesops.integration.v1 import events_pb2 as ev
from services.integration.domain import outbound as o
from services.integration.domain import outbound_signing as s
from services.integration.domain.signatures import sign_standard_v1, verify_standard
from services.notify import consumers as notify_consumers

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
SCHEDULE = [timedelta(0), timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30)] + [
    h * H for h in (2, 5, 10, 14, 20, 24)
]


def test_the_schedule_is_standard_webhooks() -> None:
    assert list(o.SCHEDULE) == SCHEDULE
    assert o.MAX_ATTEMPTS == 10


@pytest.mark.parametrize("attempt", range(2, 11))
def test_waits_are_jittered_within_ten_percent(attempt: int) -> None:
    rng = random.Random(attempt)
    base = SCHEDULE[attempt - 1]
    waits = [o.wait_before(attempt, rng) for _ in range(200)]
    assert all(base * 0.9 <= w <= base * 1.1 for w in waits)
    assert len(set(waits)) > 1  # jitter, not a constant
    assert o.wait_before(1, rng) == timedelta(0)


def _decide(attempt: int, status: int, **kw: object) -> o.Decision:
    args: dict[str, object] = dict(
        max_attempts=0, after=None, failing_since=None, now=NOW, rng=random.Random(1)
    )
    args.update(kw)
    return o.decide(attempt=attempt, status=status, **args)  # type: ignore[arg-type]


def test_answers() -> None:
    assert _decide(1, 200).outcome is o.Outcome.SUCCEEDED
    assert _decide(3, 204).outcome is o.Outcome.SUCCEEDED
    retry = _decide(1, 500)
    assert retry.outcome is o.Outcome.RETRY and timedelta(seconds=4.5) <= retry.wait <= timedelta(seconds=5.5)
    assert _decide(2, 0).outcome is o.Outcome.RETRY  # no answer (timeout, refused) is retried
    assert _decide(1, 302).outcome is o.Outcome.RETRY  # a redirect is never followed: a failure
    gone = _decide(1, 410)
    assert gone.outcome is o.Outcome.DEAD_LETTERED and "410" in gone.suspend
    last = _decide(10, 503)
    assert last.outcome is o.Outcome.DEAD_LETTERED and not last.suspend
    assert _decide(3, 500, max_attempts=3).outcome is o.Outcome.DEAD_LETTERED


def test_five_days_of_failure_suspend() -> None:
    almost = _decide(2, 500, failing_since=NOW - timedelta(days=5) + timedelta(minutes=1))
    assert almost.outcome is o.Outcome.RETRY and not almost.suspend
    five = _decide(2, 500, failing_since=NOW - timedelta(days=5))
    assert five.outcome is o.Outcome.DEAD_LETTERED and "5 days" in five.suspend
    assert _decide(2, 200, failing_since=NOW - timedelta(days=9)).outcome is o.Outcome.SUCCEEDED


def test_retry_after_is_honoured_never_shortened_and_capped() -> None:
    assert o.retry_after("120", NOW) == timedelta(seconds=120)
    assert o.retry_after("Sun, 06 Dec 2026 09:00:00 GMT", NOW) == H
    assert o.retry_after("Sun, 06 Dec 2026 07:00:00 GMT", NOW) == timedelta(0)
    assert o.retry_after("999999", NOW) == timedelta(hours=24)
    assert o.retry_after("soon", NOW) is None and o.retry_after("", NOW) is None
    longer = _decide(1, 503, after=H)
    assert longer.wait == H  # the partner asked for an hour: not 5 s
    shorter = _decide(3, 503, after=timedelta(seconds=1))
    assert shorter.wait >= timedelta(minutes=27)  # the schedule's 30 min still applies


def test_event_type_matching_and_validation() -> None:
    assert o.matches(["pipeline.DealWon"], "pipeline.DealWon")
    assert o.matches(["pipeline.*"], "pipeline.DealLost")
    assert o.matches(["*"], "leads.LeadAssigned")
    assert not o.matches(["pipeline.DealWon"], "pipeline.DealWonX")
    assert not o.matches(["leads.*"], "pipeline.DealWon")
    assert o.type_problems(["pipeline.DealWon", "leads.*", "*"]) == []
    assert o.type_problems([])
    assert (
        o.type_problems(["pipeline"]) and o.type_problems(["Pipeline.X"]) and o.type_problems(["a.b", "a.b"])
    )


def test_reserved_headers_are_refused() -> None:
    assert o.header_problems({"X-Partner": "ok"}) == []
    for name in ("Authorization", "Cookie", "X-Salesops-Event-Id", "webhook-signature", "Host"):
        assert o.header_problems({name: "x"}), name
    assert o.header_problems({"X-Bad": "line\nbreak"})


# --- signing


def test_v1_standard_webhooks_vector() -> None:
    """The specification's own example (standard-webhooks/spec, libraries' test vectors)."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign_standard_v1(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    assert s.signature_header([secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


def test_v1a_rfc8032_vector_and_round_trip() -> None:
    """RFC 8032 test 1 (empty message) through our key format, then a delivery verified with the public key."""
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert s.public_of(seed) == "whpk_" + base64.b64encode(public).decode()
    sig = Ed25519PrivateKey.from_private_bytes(seed).sign(b"")
    assert sig.hex().startswith("e5564300c360ac729086e2cc806e828a")
    private, pub = s.new_ed25519_key()
    body = b'{"type":"pipeline.DealWon"}'
    header = s.signature_header([private], "evt_1", 1_700_000_000, body)
    assert header.startswith("v1a,")
    at = datetime.fromtimestamp(1_700_000_000, UTC)
    headers = {"webhook-id": "evt_1", "webhook-timestamp": "1700000000", "webhook-signature": header}
    assert verify_standard(headers, body, secret="", public_key_text=pub, now=at).ok
    assert not verify_standard(headers, body + b" ", secret="", public_key_text=pub, now=at).ok
    _, other = s.new_ed25519_key()
    assert not verify_standard(headers, body, secret="", public_key_text=other, now=at).ok


def test_rotation_overlap_signs_with_both_and_either_verifies() -> None:
    old, new = s.new_hmac_secret(), s.new_hmac_secret()
    body = b"{}"
    header = s.signature_header([new, old], "evt_2", 1_700_000_000, body)
    assert len(header.split()) == 2
    at = datetime.fromtimestamp(1_700_000_000, UTC)
    headers = {"webhook-id": "evt_2", "webhook-timestamp": "1700000000", "webhook-signature": header}
    for secret in (old, new):  # a receiver still on the old secret, and one already on the new
        assert verify_standard(headers, body, secret=secret, public_key_text="", now=at).ok
    assert not verify_standard(headers, body, secret=s.new_hmac_secret(), public_key_text="", now=at).ok


def test_secret_format() -> None:
    assert s.valid_hmac_secret(s.new_hmac_secret())
    assert not s.valid_hmac_secret("whsec_c2hvcnQ=")  # 5 bytes
    assert not s.valid_hmac_secret("plain-text-secret-of-some-length")


def test_notify_tells_the_owner_of_a_dead_letter_and_a_suspension() -> None:
    failed = ev.WebhookDeliveryFailed(
        delivery_id="d1", subscription_id="sub-1", subscription_name="ERP bridge", endpoint_host="erp.example.com",
        owner_user_id="admin", event_id="e1", event_type="pipeline.DealWon", attempt_count=10, last_http_status=503,
    )  # fmt: skip
    [dead] = notify_consumers.translate(
        new_envelope("integration.WebhookDeliveryFailed", "demo", failed, source="integration")
    )
    assert [r.user_id for r in dead.recipients] == ["admin"] and dead.dedupe_key == "webhook_dead_letter:d1"
    assert "HTTP 503" in str(dead.template.variables["message"]) and dead.subject.id == "sub-1"
    failed.subscription_suspended = True
    [gone] = notify_consumers.translate(
        new_envelope("integration.WebhookDeliveryFailed", "demo", failed, source="integration")
    )
    assert "suspended" in str(gone.template.variables["title"]) and gone.dedupe_key.startswith(
        "webhook_suspended:"
    )
    assert "integration.WebhookDeliveryFailed" in notify_consumers.TYPES
