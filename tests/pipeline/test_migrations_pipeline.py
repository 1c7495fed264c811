"""Migration 0003 backfills the outcome columns of deals closed before it, and goes back down
(SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from alembic import command
from sqlalchemy import Connection, inspect, text

from kit.db import Database
from kit.migrations import alembic_config, upgrade_to_head
from salesops.pipeline.v1 import deal_pb2, stage_model_pb2


async def _alembic(db: Database, verb: str, target: str) -> None:
    cfg = alembic_config("pipeline", db.url.render_as_string(hide_password=False))

    def run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, target)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


def _body(status: str) -> bytes:
    deal = deal_pb2.Deal(deal_id=status)
    at = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    if status == "LOST":
        deal.lost.lost_time.FromDatetime(at)
        deal.lost.category = stage_model_pb2.LOST_REASON_CATEGORY_COMPETITOR
        deal.lost.reason_code, deal.lost.competitor, deal.lost.lost_at_stage_id = "x", "Rival", "negotiation"
    if status == "WON":
        deal.won.won_time.FromDatetime(at)
    return deal.SerializeToString()


INSERT = text(
    "INSERT INTO deals (tenant_id, deal_id, title, customer_id, customer_name, industry, owner_user_id, org_path,"
    " amount_minor, currency, weighted_minor, stage_id, stage_model_version, probability, stage_probability,"
    " status, forecast_category, expected_close_date, lead_id, origin, frozen, stage_entered_at, last_confirm_at,"
    " created_at, created_by, updated_at, updated_by, version, request_digest, body) VALUES"
    " ('t1', :id, 'T', '', 'C', '', 'rep', 'east', 100, 'CNY', 10, 'negotiation', 0, 10, 10, :status, 'PIPELINE',"
    " :close, NULL, 'MANUAL', :frozen, :at, :at, :at, 'rep', :at, 'rep', 1, 'd', :body)"
)


async def test_closed_deals_get_their_outcome_columns_and_the_migration_goes_back(database_url: str) -> None:
    db = Database(database_url)
    try:
        await _alembic(db, "upgrade", "0002")
        at = datetime(2026, 11, 1, tzinfo=UTC)
        async with db.engine.begin() as conn:
            for status in ("OPEN", "WON", "LOST"):
                await conn.execute(
                    INSERT,
                    {
                        "id": status,
                        "status": status,
                        "close": date(2026, 12, 1),
                        "frozen": False,
                        "at": at,
                        "body": _body(status),
                    },
                )
        await upgrade_to_head("pipeline", db)
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT deal_id, closed_at, lost_category, lost_reason_code, lost_competitor, lost_stage_id"
                        " FROM deals ORDER BY deal_id"
                    )
                )
            ).all()
        got = {r[0]: (r[1] is not None, r[2], r[3], r[4], r[5]) for r in rows}
        assert got == {
            "LOST": (True, "COMPETITOR", "x", "Rival", "negotiation"),
            "OPEN": (False, "", "", "", ""),
            "WON": (True, "", "", "", ""),
        }
        await _alembic(db, "downgrade", "0002")
        async with db.engine.connect() as conn:
            columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("deals")})
        assert "closed_at" not in columns and "lost_category" not in columns
    finally:
        await db.dispose()
