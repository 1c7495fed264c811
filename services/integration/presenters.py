"""What a viewer sees of connectors and received webhooks: the one place deciding it.

Secrets never leave: the stored body has them cleared, only their names and a
4-character hint of the signing secret are shown. Payloads (may hold personal
data) only in the FULL view, only to admins.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import status_pb2

from kit.auth import Principal
from salesops.common.v1.types_pb2 import Audit
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration.store import ConnectorChangeRow, ConnectorRow, ExternalLinkRow, ReceivedWebhookRow

HOOK_PATH = "/hooks/v1/{tenant}/{connector_id}"


def ts(at: datetime | None) -> Timestamp | None:
    if at is None:
        return None
    out = Timestamp()
    out.FromDatetime(at)
    return out


def stamp(at: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(at)
    return out


def enum(value: int) -> Any:
    """A stored enum number as the stubs' ValueType (columns hold plain integers)."""
    return cast(Any, value)


def hook_path(tenant: str, connector_id: str) -> str:
    return HOOK_PATH.format(tenant=tenant, connector_id=connector_id)


class ConnectorPresenter:
    def present(self, viewer: Principal, row: ConnectorRow) -> c.Connector:
        msg = c.Connector.FromString(row.body)
        msg.connector_id, msg.display_name, msg.kind, msg.provider = (
            row.connector_id,
            row.display_name,
            enum(row.kind),
            row.provider,
        )
        msg.ClearField("secrets")
        msg.secret_names.extend(sorted(json.loads(row.sealed_secrets or "{}")))
        if row.secrets_updated_at is not None:
            msg.secrets_update_time.CopyFrom(stamp(row.secrets_updated_at))
        if msg.HasField("inbound"):
            msg.inbound.signing_secret = ""
            msg.inbound.signing_secret_hint = row.signing_secret_hint
            # Relative to the gateway: the deployment's public host is prefixed by whoever shows it.
            msg.inbound.endpoint_url = hook_path(row.tenant_id, row.connector_id)
        msg.state, msg.health = enum(row.state), enum(row.health)
        if row.last_test:
            msg.last_test.CopyFrom(c.ConnectionTestResult.FromString(row.last_test))
        if row.last_success_at is not None:
            msg.last_success_time.CopyFrom(stamp(row.last_success_at))
        if row.last_error_at is not None:
            msg.last_error_time.CopyFrom(stamp(row.last_error_at))
        msg.last_error = row.last_error
        msg.etag = str(row.version)
        msg.audit.CopyFrom(
            Audit(
                create_time=ts(row.created_at),
                update_time=ts(row.updated_at),
                created_by=row.created_by,
                updated_by=row.updated_by,
            )
        )
        return msg


def present_link(row: ExternalLinkRow) -> c.ExternalLink:
    link = c.ExternalLink(
        link_id=row.link_id,
        external=c.ExternalReference(
            connector_id=row.connector_id,
            object_type=enum(row.object_type),
            external_id=row.external_id,
            external_number=row.external_number,
        ),
        origin=enum(row.origin),
        audit=Audit(create_time=stamp(row.created_at), created_by=row.created_by),
    )
    if row.deal_id:
        link.deal_id = row.deal_id
    else:
        link.customer_id = row.customer_id
    return link


def present_change(row: ConnectorChangeRow) -> c.ConnectorChange:
    return c.ConnectorChange(
        change_id=row.change_id,
        connector_id=row.connector_id,
        action=row.action,
        fields=[f for f in row.fields.split(",") if f],
        reason=row.reason,
        changed_by=row.changed_by,
        change_time=stamp(row.changed_at),
    )


def present_webhook(viewer: Principal, row: ReceivedWebhookRow, full: bool) -> wh.ReceivedWebhook:
    msg = wh.ReceivedWebhook(
        received_webhook_id=row.received_webhook_id,
        connector_id=row.connector_id,
        external_event_id=row.external_event_id,
        external_event_type=row.external_event_type,
        signature_time=ts(row.signature_time),
        receive_time=ts(row.received_at),
        verification=enum(row.verification),
        state=enum(row.state),
        duplicate_count=row.duplicate_count,
        attempt_count=row.attempt_count,
        process_time=ts(row.processed_at),
        deal_id=row.deal_id,
        body_size_bytes=row.body_size,
        content_type=row.content_type,
        body_sha256=row.body_sha256,
        replay_count=row.replay_count,
        last_replay_time=ts(row.last_replay_at),
    )
    if row.last_error:
        msg.last_error.CopyFrom(status_pb2.Status(code=9, message=row.last_error))
    for line in row.emitted.splitlines():
        event_id, _, event_type = line.partition(" ")
        msg.emitted_events.add(event_id=event_id, event_type=event_type)
    if full and viewer.is_admin:
        try:
            doc = json.loads(row.body)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            payload = Struct()
            json_format.ParseDict(doc, payload)
            msg.payload.CopyFrom(payload)
    return msg
