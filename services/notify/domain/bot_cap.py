"""Group bots' own cap: WeCom and DingTalk take at most 20 messages a minute per bot.

Beyond it, WeCom answers errcode 45009 and DingTalk 130101 (and throttles the bot
for 10 minutes). So the cap is kept on our side, per bot (channel config), over
a sliding minute of planned posts: what was sent or is planned from a minute ago
on, digests still to go included. An alert over the cap folds into the bot's one
pending digest, which goes out once the minute it was made in is over; nothing is
dropped and nothing fails, and the inbox copy is never limited.

Why the window counts planned posts and the digest waits a full minute: every post
is admitted only if fewer than 20 are planned from a minute before it on, and a
digest made at t is planned at t + 1 min, so every post in any minute after t was
admitted knowing about it. Any 60 s window then holds at most 20 posts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from salesops.notify.v1 import notification_pb2 as N

MAX_POSTS = 20
WINDOW = timedelta(minutes=1)
BOT_CHANNELS = frozenset({N.CHANNEL_WECOM_BOT, N.CHANNEL_DINGTALK_BOT})
# The platforms' "too many messages" answers: fold and retry later, never fail.
RATE_LIMITED_CODES = frozenset({"45009", "130101"})
# DingTalk throttles an over-cap bot for 10 minutes: a rate-limited digest waits between tries.
RATE_LIMITED_RETRY = timedelta(minutes=2)
DIGEST_LINES = 30


def is_bot(channel: int) -> bool:
    return channel in BOT_CHANNELS


def window_start(now: datetime) -> datetime:
    """Posts planned after this instant count against a post admitted at `now`."""
    return now - WINDOW


def must_fold(planned: int) -> bool:
    return planned >= MAX_POSTS


def digest_due(now: datetime) -> datetime:
    return now + WINDOW


def digest_lines(titles: list[str], total: int, locale: str) -> str:
    """The folded alerts' titles, one a line (at most DIGEST_LINES, then how many more)."""
    lines = [f"- {t}" for t in titles[:DIGEST_LINES]]
    more = total - len(lines)
    if more > 0:
        lines.append(f"- 以及另外 {more} 条" if locale == "zh-CN" else f"- and {more} more")
    return "\n".join(lines)
