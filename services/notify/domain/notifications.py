"""What a notification must hold to be accepted (pure)."""

from __future__ import annotations

from kit.errors import PermissionDenied, Violations
from salesops.notify.v1 import notification_pb2 as N

EXTERNAL_CHANNELS = (
    N.CHANNEL_SMS,
    N.CHANNEL_EMAIL,
    N.CHANNEL_WECOM_BOT,
    N.CHANNEL_DINGTALK_BOT,
    N.CHANNEL_WEBHOOK,
)


def validate(n: N.Notification, *, is_admin: bool) -> None:
    v = Violations()
    if not n.category:
        v.add("notification.category", "required")
    if not n.recipients:
        v.add("notification.recipients", "at least one recipient")
    for i, r in enumerate(n.recipients):
        kind = r.WhichOneof("target")
        if kind is None:
            v.add(f"notification.recipients[{i}]", "one target is required")
        elif kind == "user_id" and not r.user_id.strip():
            v.add(f"notification.recipients[{i}].user_id", "empty")
        elif kind == "org_role" and (not r.org_role.role or not r.org_role.org_unit_path):
            v.add(f"notification.recipients[{i}].org_role", "role and org_unit_path are required")
        elif kind == "manager" and (not r.manager.role or not r.manager.user_id):
            v.add(f"notification.recipients[{i}].manager", "user_id and role are required")
    content = n.WhichOneof("content")
    if content is None:
        v.add("notification.content", "a template or raw content is required")
    elif content == "raw":
        if not n.raw.title.strip() or len(n.raw.title) > 200:
            v.add("notification.raw.title", "1 to 200 characters")
        if not n.raw.body.strip():
            v.add("notification.raw.body", "required")
    if len(n.dedupe_key) > 300:
        v.add("notification.dedupe_key", "at most 300 characters")
    if n.notification_id and len(n.notification_id) != 26:
        v.add("notification.notification_id", "a ULID")
    for ch in n.channels:
        if ch not in EXTERNAL_CHANNELS and ch != N.CHANNEL_IN_APP:
            v.add("notification.channels", f"channel {ch} is not supported")
    v.raise_if_any("invalid notification")
    if content == "raw" and not is_admin:
        raise PermissionDenied("raw content is for admins only; services send templates")
