"""WeCom / DingTalk group bots take 20 messages a minute: alerts over it fold into the bot's digest
(none dropped, none failed), planned when queued and kept when sent; DingTalk's signature.

The delivery activities run as the workflow runs them, against a loopback bot that enforces
the platform's cap and checks DingTalk's signature; one clock (the test's) drives the queueing,
the sends and the fake bot, and the digest's hold is the workflow's timer, advanced by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from google.protobuf.struct_pb2 import Struct
from sqlalchemy import select

from salesops.notify.v1 import channel_config_pb2 as C
from salesops.notify.v1 import delivery_pb2 as D
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from salesops.notify.v1 import subscriber_pb2
from services.notify import bot_folding, sending
from services.notify.activities import DeliveryActivities
from services.notify.channels.http_channels import DingTalkBot, WeComBot, dingtalk_sign
from services.notify.store import DeliveryRow
from services.notify.workflows import DeliveryRef
from tests.notify.bot_fakes import CAP, FakeBot, fake_bot
from tests.notify.conftest import ADMIN, SERVICE, TENANT, NotifyStack, auth

pytestmark = pytest.mark.timeout(120)
SECRET = "SECd1f2c3b4a5968778695a4b3c2d1e0f"
USERS = [f"bot-u{n:02d}" for n in range(60)]


def test_dingtalk_signature_matches_the_documented_algorithm() -> None:
    # base64(HMAC-SHA256(secret, "<timestamp ms>\n<secret>")), computed independently with
    # `printf '1700000000000\nSEC...' | openssl dgst -sha256 -hmac 'SEC...' -binary | base64`.
    assert dingtalk_sign(SECRET, 1_700_000_000_000) == "wr05NyqlFY8OKlfIcF8t0Tg9kI/UzTDIXaOJSYEUU/0="
    assert (
        dingtalk_sign("this is secret", 1_700_000_000_000) == "sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0="
    )


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    async def tick(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(bot_folding, "clock", c)
    return c


async def _setup(notify: NotifyStack, channel: int) -> None:
    subs = [
        subscriber_pb2.Subscriber(
            user_id=u, display_name=u, active=True, dingtalk_user_id=f"dt-{u}", wecom_user_id=f"wx-{u}"
        )
        for u in USERS
    ]
    await notify.stub.BatchUpsertSubscribers(
        M.BatchUpsertSubscribersRequest(subscribers=subs), metadata=auth(SERVICE)
    )
    config = C.ChannelConfig(display_name="sales group bot", channel=channel, enabled=True)  # type: ignore[arg-type]
    if channel == N.CHANNEL_DINGTALK_BOT:
        config.dingtalk_bot.CopyFrom(
            C.DingTalkBotSettings(access_token=C.Secret(value="tok-1"), signing_secret=C.Secret(value=SECRET))
        )
    else:
        config.wecom_bot.CopyFrom(C.WeComBotSettings(webhook_key=C.Secret(value="key-1")))
    await notify.stub.CreateChannelConfig(
        M.CreateChannelConfigRequest(channel_config=config), metadata=auth(ADMIN)
    )


async def _alerts(notify: NotifyStack, clock: Clock, names: list[str], channel: int) -> None:
    """One alert per name, each to its own user, queued on the test's clock."""
    sender = sending.Sender(notify.rt.db, notify.rt.redis, clock=clock)
    for n, name in enumerate(names):
        values = Struct()
        values.update({"lead_name": name})
        note = N.Notification(
            category=N.NOTIFICATION_CATEGORY_LEAD_ASSIGNED,
            recipients=[N.Recipient(user_id=USERS[n % len(USERS)])],
            template=N.TemplateContent(variables=values),
            channels=[channel],  # type: ignore[list-item]
        )
        await sender.send(TENANT, note)


async def _rows(notify: NotifyStack) -> list[DeliveryRow]:
    async with notify.rt.db.system_session() as s:
        return list(await s.scalars(select(DeliveryRow).order_by(DeliveryRow.id)))


async def _attempt_due(notify: NotifyStack, acts: DeliveryActivities, *, digests: bool) -> list[str]:
    """What the delivery workflows do: one attempt per pending delivery (digests once their hold is over)."""
    out = []
    for row in await _rows(notify):
        pending = row.status in (D.DELIVERY_STATUS_QUEUED, D.DELIVERY_STATUS_HELD, D.DELIVERY_STATUS_RETRYING)
        if pending and row.is_summary == digests:
            out.append(await acts.attempt(DeliveryRef(TENANT, row.id)))
    return out


def _windows_hold(bot: FakeBot) -> int:
    """The most posts in any 60 s window the bot saw."""
    times = sorted(p.at for p in bot.posts)
    return max((sum(1 for t in times if s <= t < s + timedelta(minutes=1)) for s in times), default=0)


@pytest.mark.parametrize("channel", [N.CHANNEL_DINGTALK_BOT, N.CHANNEL_WECOM_BOT])
async def test_a_burst_of_50_alerts_is_20_posts_and_one_digest_listing_the_rest(
    notify: NotifyStack, clock: Clock, channel: int
) -> None:
    async with fake_bot(secrets={"tok-1": SECRET}, clock=clock.tick) as bot, httpx.AsyncClient() as client:
        adapters = {
            N.CHANNEL_DINGTALK_BOT: DingTalkBot(client, f"{bot.url}/robot/send"),
            N.CHANNEL_WECOM_BOT: WeComBot(client, f"{bot.url}/cgi-bin/webhook/send"),
        }
        acts = DeliveryActivities(notify.rt.db, adapters)
        await _setup(notify, channel)
        names = [f"Lead-{n:02d}" for n in range(50)]
        await _alerts(notify, clock, names, channel)  # 50 within the same minute

        rows = await _rows(notify)
        [digest] = [r for r in rows if r.is_summary]
        alone = [r for r in rows if not r.is_summary and r.status == D.DELIVERY_STATUS_QUEUED]
        folded = [r for r in rows if r.folded_into == digest.id]
        # 20 post now; the digest is planned a minute later, in a minute of its own.
        assert len(alone) == CAP and len(folded) == 50 - CAP
        assert all(r.suppression_reason == D.SUPPRESSION_REASON_FOLDED for r in folded)
        assert digest.status == D.DELIVERY_STATUS_HELD and digest.user_id == ""

        clock.advance(1)
        assert await _attempt_due(notify, acts, digests=False) == ["sent"] * CAP
        clock.advance(60)  # the digest's hold (the workflow's timer)
        assert await _attempt_due(notify, acts, digests=True) == ["sent"]

    assert bot.refused == []  # never over the platform's cap
    assert len(bot.posts) == CAP + 1 and _windows_hold(bot) <= CAP
    # Nothing lost: every alert is in exactly one post, alone or listed in the digest.
    for name in names:
        assert sum(name in p.text for p in bot.posts) == 1, name
    assert "30" in bot.posts[-1].text.splitlines()[0]  # the digest: "还有 30 条通知", then one line each
    assert {r.status for r in await _rows(notify)} == {D.DELIVERY_STATUS_SENT, D.DELIVERY_STATUS_SUPPRESSED}


async def test_posts_delayed_past_their_plan_are_still_capped_when_sent(
    notify_any_db: NotifyStack, clock: Clock
) -> None:
    notify = notify_any_db  # the send-time lock is a row lock on PostgreSQL
    channel = N.CHANNEL_DINGTALK_BOT
    async with fake_bot(secrets={"tok-1": SECRET}, clock=clock.tick) as bot, httpx.AsyncClient() as client:
        acts = DeliveryActivities(notify.rt.db, {channel: DingTalkBot(client, f"{bot.url}/robot/send")})
        await _setup(notify, channel)
        await _alerts(notify, clock, [f"Early-{n:02d}" for n in range(19)], channel)
        clock.advance(65)  # a minute later another 19 are planned; the first ones were never sent
        await _alerts(notify, clock, [f"Late-{n:02d}" for n in range(19)], channel)
        assert sum(1 for r in await _rows(notify) if r.is_summary) == 0
        clock.advance(1)  # all 38 go out now (e.g. Temporal was down): 20 post, the rest fold
        results = await _attempt_due(notify, acts, digests=False)
        assert results.count("sent") == CAP and results.count("folded") == 38 - CAP
        clock.advance(61)
        assert await _attempt_due(notify, acts, digests=True) == ["sent"]
    assert bot.refused == [] and _windows_hold(bot) <= CAP
    assert sum(len(p.text.splitlines()) for p in bot.posts[-1:]) >= 38 - CAP


async def test_the_platforms_rate_limit_answer_folds_the_alert_and_the_digest_waits(
    notify: NotifyStack, clock: Clock
) -> None:
    channel = N.CHANNEL_WECOM_BOT
    async with fake_bot(clock=clock.tick, limited_times=1) as bot, httpx.AsyncClient() as client:
        acts = DeliveryActivities(
            notify.rt.db, {channel: WeComBot(client, f"{bot.url}/cgi-bin/webhook/send")}
        )
        await _setup(notify, channel)
        await _alerts(notify, clock, ["Refused-once", "Second"], channel)
        # WeCom answers 45009 to the first (another sender used the bot's minute): folded, not failed.
        assert await _attempt_due(notify, acts, digests=False) == ["folded", "sent"]
        assert bot.refused == [("wecom:key-1", 45009)]
        clock.advance(61)
        assert await _attempt_due(notify, acts, digests=True) == ["sent"]
    assert "Refused-once" in bot.posts[-1].text
    assert D.DELIVERY_STATUS_FAILED not in {r.status for r in await _rows(notify)}
