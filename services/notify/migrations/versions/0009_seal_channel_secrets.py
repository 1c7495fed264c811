"""seal channel secrets, webhook header values and push tokens stored in plaintext

Data only: rewrites the serialized protos in place with kit.secrets (the key of
SALESOPS_SECRETS_KEY; the dev key in embedded mode). Downgrade opens them again.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from kit import secrets
from salesops.notify.v1 import channel_config_pb2, subscriber_pb2

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SECRET_PATHS = (
    ("sms", "access_key_secret"),
    ("email", "password"),
    ("wecom_bot", "webhook_key"),
    ("dingtalk_bot", "access_token"),
    ("dingtalk_bot", "signing_secret"),
    ("webhook", "signing_secret"),
    ("mobile_push", "credentials"),
)


def _seal(secret: channel_config_pb2.Secret) -> None:
    plain = secret.value
    if plain and not secrets.is_sealed(plain):
        secret.value = secrets.seal(plain)
        secret.set = True
        secret.hint = plain[-4:] if len(plain) > 8 else ""
        secret.update_time.FromDatetime(datetime.now(UTC))


def _open(secret: channel_config_pb2.Secret) -> None:
    if secret.value:
        secret.value = secrets.unseal(secret.value, allow_plaintext=True)


def _config(fix: Callable[[channel_config_pb2.Secret], None], seal: bool) -> Callable[[bytes], bytes]:
    def run(payload: bytes) -> bytes:
        cfg = channel_config_pb2.ChannelConfig.FromString(payload)
        kind = cfg.WhichOneof("settings")
        for group, name in SECRET_PATHS:
            if group == kind:
                fix(getattr(getattr(cfg, group), name))
        if kind == "webhook":
            for key, value in list(cfg.webhook.headers.items()):
                if value:
                    cfg.webhook.headers[key] = (
                        secrets.seal(value) if seal else secrets.unseal(value, allow_plaintext=True)
                    )
        return cfg.SerializeToString()

    return run


def _device(fix: Callable[[channel_config_pb2.Secret], None]) -> Callable[[bytes], bytes]:
    def run(payload: bytes) -> bytes:
        device = subscriber_pb2.Device.FromString(payload)
        fix(device.push_token)
        return device.SerializeToString()

    return run


def _rewrite(table: str, keys: tuple[str, ...], change: Callable[[bytes], bytes]) -> None:
    bind = op.get_bind()
    t = sa.table(table, *(sa.column(k) for k in keys), sa.column("payload", sa.LargeBinary))
    for row in bind.execute(sa.select(t)).all():
        new = change(row.payload)
        if new != row.payload:
            bind.execute(t.update().where(*(t.c[k] == getattr(row, k) for k in keys)).values(payload=new))


def upgrade() -> None:
    _rewrite("notify_channel_configs", ("tenant_id", "id"), _config(_seal, True))
    _rewrite("notify_devices", ("id",), _device(_seal))


def downgrade() -> None:
    _rewrite("notify_channel_configs", ("tenant_id", "id"), _config(_open, False))
    _rewrite("notify_devices", ("id",), _device(_open))
