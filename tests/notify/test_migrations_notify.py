"""Notify's own migrations go down and up again with data in place (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, text

from kit.db import Database
from kit.migrations import alembic_config, upgrade_to_head


async def _alembic(db: Database, verb: str, target: str) -> None:
    cfg = alembic_config("notify", db.url.render_as_string(hide_password=False))

    def run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, target)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


async def test_down_to_global_keys_and_up_again(database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade_to_head("notify", db)
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO notify_escalation_policies (tenant_id, id, version, payload, updated_at)"
                    " VALUES ('t1', 'default', 1, :p, CURRENT_TIMESTAMP)"
                ),
                {"p": b""},
            )
        await _alembic(db, "downgrade", "0006")
        await upgrade_to_head("notify", db)
        async with db.engine.begin() as conn:
            # Ids are per tenant: a second tenant's "default" is its own row.
            await conn.execute(
                text(
                    "INSERT INTO notify_escalation_policies (tenant_id, id, version, payload, updated_at)"
                    " VALUES ('t2', 'default', 1, :p, CURRENT_TIMESTAMP)"
                ),
                {"p": b""},
            )
            count = await conn.scalar(text("SELECT count(*) FROM notify_escalation_policies"))
        assert count == 2
    finally:
        await db.dispose()


async def test_settings_move_to_the_store_and_secrets_get_sealed_and_back(database_url: str) -> None:
    from salesops.notify.v1 import channel_config_pb2 as C
    from salesops.notify.v1 import notification_pb2 as N
    from salesops.notify.v1 import settings_pb2

    db = Database(database_url)
    try:
        await _alembic(db, "upgrade", "0008")
        cfg = C.ChannelConfig(
            display_name="hook",
            channel=N.CHANNEL_WEBHOOK,
            webhook=C.WebhookSettings(
                url="https://hooks.example.com/x",
                signing_secret=C.Secret(value="whsec-0123456789"),
                headers={"X-Token": "header-secret"},
            ),
        )
        settings = settings_pb2.NotifySettings(default_locale="en")
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO notify_channel_configs (tenant_id, id, channel, enabled, version, payload, updated_at)"
                    " VALUES ('t1', 'c1', 6, true, 1, :p, CURRENT_TIMESTAMP)"
                ),
                {"p": cfg.SerializeToString()},
            )
            await conn.execute(
                text(
                    "INSERT INTO notify_settings (tenant_id, version, payload, updated_at)"
                    " VALUES ('t1', 3, :p, CURRENT_TIMESTAMP)"
                ),
                {"p": settings.SerializeToString()},
            )
        await upgrade_to_head("notify", db)
        async with db.engine.begin() as conn:
            sealed = C.ChannelConfig.FromString(
                await conn.scalar(text("SELECT payload FROM notify_channel_configs WHERE id = 'c1'"))
            )
            moved = (await conn.execute(text("SELECT document, version, body FROM tenant_settings"))).one()
        assert sealed.webhook.signing_secret.value.startswith("sealed:v1:")
        assert sealed.webhook.signing_secret.hint == "6789"
        assert sealed.webhook.headers["X-Token"].startswith("sealed:v1:")
        assert moved.document == "salesops.notify.v1.NotifySettings" and moved.version == 3
        assert settings_pb2.NotifySettings.FromString(moved.body).default_locale == "en"
        await _alembic(db, "downgrade", "0008")
        async with db.engine.begin() as conn:
            opened = C.ChannelConfig.FromString(
                await conn.scalar(text("SELECT payload FROM notify_channel_configs WHERE id = 'c1'"))
            )
            back = (await conn.execute(text("SELECT version, payload FROM notify_settings"))).one()
        assert opened.webhook.signing_secret.value == "whsec-0123456789"
        assert opened.webhook.headers["X-Token"] == "header-secret"
        assert back.version == 3
    finally:
        await db.dispose()
