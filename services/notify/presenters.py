"""What a viewer may see of each notify resource: the one presentation step per resource.

Every response path of a resource (get, list, create, update, replay, batch, stream)
answers with `<RESOURCE>.present(viewer, item)`; nothing else builds the wire form.
Secrets and push tokens are write-only; subscribers outside the viewer's org scope
do not exist for them, and other people's contact details are masked.
"""

from __future__ import annotations

from typing import Any

from kit.auth import Principal
from kit.errors import NotFound
from kit.secrets import is_sealed
from salesops.notify.v1 import channel_config_pb2, delivery_pb2, inbox_pb2, notification_pb2, subscriber_pb2
from services.notify import convert
from services.notify.store import DeliveryRow, InboxItemRow, SubscriberRow

# Every Secret field of a ChannelConfig, by settings group.
SECRET_PATHS: tuple[tuple[str, str], ...] = (
    ("sms", "access_key_secret"),
    ("email", "password"),
    ("wecom_bot", "webhook_key"),
    ("dingtalk_bot", "access_token"),
    ("dingtalk_bot", "signing_secret"),
    ("webhook", "signing_secret"),
    ("mobile_push", "credentials"),
)


def _hide(secret: channel_config_pb2.Secret) -> None:
    """A write-only secret as responses show it: set or not, its last characters, when it changed.

    Stored values are sealed (kit.secrets) with their hint taken from the plaintext at save.
    """
    value, hint = secret.value, secret.hint
    when = channel_config_pb2.Secret()
    when.update_time.CopyFrom(secret.update_time)
    secret.Clear()
    if value:
        secret.set = True
        secret.hint = hint if hint or is_sealed(value) else (value[-4:] if len(value) > 8 else "")
        if when.HasField("update_time"):
            secret.update_time.CopyFrom(when.update_time)


class ChannelConfigPresenter:
    """Secrets are never returned; webhook header values neither (names only)."""

    def present(
        self, viewer: Principal, item: channel_config_pb2.ChannelConfig
    ) -> channel_config_pb2.ChannelConfig:
        out = channel_config_pb2.ChannelConfig()
        out.CopyFrom(item)
        kind = out.WhichOneof("settings")
        for group, name in SECRET_PATHS:
            if kind == group:
                _hide(getattr(getattr(out, group), name))
        if kind == "webhook":
            for key in list(out.webhook.headers):
                out.webhook.headers[key] = ""
        return out


class DevicePresenter:
    """Push tokens are write-only."""

    def present(self, viewer: Principal, item: subscriber_pb2.Device) -> subscriber_pb2.Device:
        out = subscriber_pb2.Device()
        out.CopyFrom(item)
        _hide(out.push_token)
        return out


def _mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if phone else ""


def _mask_email(email: str) -> str:
    return "***" + email[email.find("@") :] if "@" in email else ""


class SubscriberPresenter:
    """Admins, services and the subscriber see everything; people whose org unit contains
    the subscriber's see a masked entry; to anyone else the subscriber does not exist."""

    def present(self, viewer: Principal, item: SubscriberRow) -> subscriber_pb2.Subscriber:
        sub = subscriber_pb2.Subscriber(
            user_id=item.user_id,
            display_name=item.display_name,
            org_unit_path=item.org_unit_path,
            roles=[convert.role_enum(r) for r in item.roles.split(",") if r],  # type: ignore[misc]
            active=item.active,
            phone=item.phone,
            email=item.email,
            wecom_user_id=item.wecom_user_id,
            dingtalk_user_id=item.dingtalk_user_id,
            etag=str(item.version),
        )
        if viewer.is_admin or viewer.is_service or viewer.user_id == item.user_id:
            return sub
        if not viewer.org_contains(item.org_unit_path):
            raise NotFound("subscriber", item.user_id)
        sub.phone, sub.email = _mask_phone(sub.phone), _mask_email(sub.email)
        # Chat ids are addresses too: a colleague sees that one exists, not which.
        sub.wecom_user_id = "***" if sub.wecom_user_id else ""
        sub.dingtalk_user_id = "***" if sub.dingtalk_user_id else ""
        return sub


class NotificationPresenter:
    """Who may see a notification at all is decided when it is read (recipients, admins and
    services); what they see of it is the whole notification."""

    def present(
        self, viewer: Principal, item: notification_pb2.Notification
    ) -> notification_pb2.Notification:
        return item


class InboxItemPresenter:
    """An inbox item is its owner's alone: to anyone else it does not exist.

    Live stream events are published to the owner's channel only, so they take the
    owner's view (`for_owner`); every other path names the viewer (`present`).
    """

    def present(self, viewer: Principal, item: InboxItemRow) -> inbox_pb2.InboxItem:
        if item.user_id != viewer.user_id:
            raise NotFound("inbox_item", item.id)
        return self.for_owner(item)

    def for_owner(self, item: InboxItemRow | Any, escalation_state: int = 0) -> inbox_pb2.InboxItem:
        return convert.inbox_item(item, escalation_state)


def _delivery(row: DeliveryRow) -> delivery_pb2.Delivery:
    out = delivery_pb2.Delivery(
        delivery_id=row.id,
        notification_id=row.notification_id,
        recipient_user_id=row.user_id,
        channel=row.channel,  # type: ignore[arg-type]
        channel_config_id=row.channel_config_id,  # type: ignore[arg-type]
        address_masked=_mask(row.address),
        status=row.status,  # type: ignore[arg-type]
        attempt_count=row.attempts,  # type: ignore[arg-type]
        provider_message_id=row.provider_message_id,
        resent_from_delivery_id=row.resent_from,
    )
    if row.folded_into:
        out.folded_into_delivery_id = row.folded_into
    out.suppression_reason = row.suppression_reason  # type: ignore[assignment]
    if row.last_error_code:
        out.last_error.CopyFrom(
            delivery_pb2.DeliveryError(
                code=row.last_error_code,
                message=row.last_error,
                permanent=row.status == delivery_pb2.DELIVERY_STATUS_FAILED,
            )
        )
    out.rendered.CopyFrom(delivery_pb2.RenderedMessage(locale=row.locale, title=row.title, body=row.body))
    for name, value in (
        ("queue_time", row.queued_at),
        ("sent_time", row.sent_at),
        ("failed_time", row.failed_at),
        ("hold_until", row.hold_until),
    ):
        stamp = convert.ts(value)
        if stamp is not None:
            getattr(out, name).CopyFrom(stamp)
    return out


def _mask(address: str) -> str:
    if "@" in address:
        return address[:1] + "***" + address[address.find("@") :]
    return address[:3] + "****" + address[-4:] if len(address) > 7 else address


class DeliveryPresenter:
    """Addresses are shown masked; provider answers never (kit.net keeps them out of errors)."""

    def present(self, viewer: Principal, item: DeliveryRow) -> delivery_pb2.Delivery:
        return _delivery(item)

    def for_event(self, item: DeliveryRow) -> delivery_pb2.Delivery:
        """The view events carry (DeliveryFailed): the same masked form."""
        return _delivery(item)


CHANNEL_CONFIG = ChannelConfigPresenter()
DELIVERY = DeliveryPresenter()
INBOX_ITEM = InboxItemPresenter()
NOTIFICATION = NotificationPresenter()
DEVICE = DevicePresenter()
SUBSCRIBER = SubscriberPresenter()
