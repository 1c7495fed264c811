"""Migration 0007 fills the usage day counters from the uses and feedback already stored, on SQLite and
PostgreSQL: what the running code would have counted (days in UTC, newcomers of the last week only);
0008 counts the newcomers again for a tenant whose settings set another tenure than 0007's default."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from google.protobuf.duration_pb2 import Duration
from sqlalchemy import Connection, insert, select

from kit.db import Database
from kit.migrations import alembic_config, upgrade_to_head
from salesops.knowledge.v1.settings_pb2 import KnowledgeSettings, RecommendationPolicy
from services.knowledge.knowledge_settings import STORE
from services.knowledge.store_outcomes import RepFirstDealRow
from services.knowledge.store_usage_days import CardNewcomerDayRow, CardUseDayRow
from services.knowledge.store_uses import CardUseRow, FeedbackDutyRow


async def migrate(db: Database, revision: str) -> None:
    cfg = alembic_config("knowledge", db.url.render_as_string(hide_password=False))

    def run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


def a_use(use_id: str, card_id: str, user: str, at: datetime) -> CardUseRow:
    return CardUseRow(
        use_id=use_id, card_id=card_id, card_version=1, user_id=user, org_path="east/team-a",
        deal_id=f"deal-{use_id}", lead_id="", customer_id="", industry="manufacturing",
        stage_id="negotiation", recommendation_id="", used_at=at, recorded_at=at, duty_id=use_id,
        request_digest="",
    )  # fmt: skip


def a_rating(use: CardUseRow, rating: int, at: datetime) -> FeedbackDutyRow:
    return FeedbackDutyRow(
        duty_id=use.use_id, use_id=use.use_id, card_id=use.card_id, card_version=1, user_id=use.user_id,
        deal_id=use.deal_id, lead_id="", used_at=use.used_at, due_at=use.used_at + timedelta(days=2),
        state=3, rating=rating, recorded_at=at, created_at=use.used_at, updated_at=at,
    )  # fmt: skip


async def test_backfill_counts_uses_feedback_and_newcomers(database_url: str) -> None:
    db = Database(database_url, pool_size=2)
    try:
        await migrate(db, "0006")
        today = datetime.now(UTC).date()
        midnight = datetime.combine(today, datetime.min.time(), UTC)
        evening = midnight - timedelta(days=2, minutes=30)  # 23:30 UTC three days ago
        uses = [
            a_use("u1", "A", "old-rep", midnight + timedelta(hours=1)),
            a_use("u2", "A", "new-rep", midnight + timedelta(hours=2)),
            a_use("u3", "A", "new-rep", evening),
            a_use("u4", "B", "new-rep", midnight - timedelta(days=20)),  # a newcomer's, not this week
        ]
        async with db.session("t1") as session:
            session.add_all(uses)
            session.add_all(
                [
                    a_rating(uses[0], 1, midnight + timedelta(hours=3)),
                    a_rating(uses[1], 3, midnight + timedelta(hours=3)),
                    a_rating(uses[3], 2, midnight - timedelta(days=19)),
                    RepFirstDealRow(user_id="old-rep", first_deal_at=midnight - timedelta(days=400)),
                    RepFirstDealRow(user_id="new-rep", first_deal_at=midnight - timedelta(days=30)),
                ]
            )
            await session.commit()
        await upgrade_to_head("knowledge", db)
        async with db.session("t1", read_only=True) as session:
            days = {
                (r.card_id, r.day): (r.uses, r.fully, r.partly, r.not_applicable)
                for r in await session.scalars(select(CardUseDayRow))
            }
            newcomers = {
                (r.day, r.card_id): r.uses for r in await session.scalars(select(CardNewcomerDayRow))
            }
        assert days == {
            ("A", today): (2, 1, 0, 1),
            ("A", evening.date()): (1, 0, 0, 0),
            ("B", today - timedelta(days=20)): (1, 0, 0, 0),
            ("B", today - timedelta(days=19)): (0, 0, 1, 0),
        }
        assert newcomers == {(today, "A"): 1, (evening.date(), "A"): 1}
    finally:
        await db.dispose()


async def test_newcomers_recounted_with_each_tenants_tenure(database_url: str) -> None:
    """0007 counted with the default 180 days; 0008 counts a tenant's last days again with its own."""
    db = Database(database_url, pool_size=2)
    try:
        await migrate(db, "0006")
        now = datetime.now(UTC)
        short = KnowledgeSettings(
            recommendation=RecommendationPolicy(newcomer_tenure=Duration(seconds=20 * 86400))
        )
        for tenant in ("t1", "t2"):  # t2 keeps the default
            async with db.session(tenant) as session:
                session.add_all(
                    [
                        a_use(f"{tenant}-u1", "A", "rep-30d", now - timedelta(hours=1)),
                        a_use(f"{tenant}-u2", "A", "rep-10d", now - timedelta(hours=1)),
                        RepFirstDealRow(user_id="rep-30d", first_deal_at=now - timedelta(days=30)),
                        RepFirstDealRow(user_id="rep-10d", first_deal_at=now - timedelta(days=10)),
                    ]
                )
                await session.commit()
        async with db.system_session() as session:
            table = STORE.tables.current
            await session.execute(
                insert(table).values(
                    tenant_id="t1", document=STORE.document, version=1, body=short.SerializeToString(),
                    updated_at=now, updated_by="admin",
                )
            )  # fmt: skip
            await session.commit()
        await upgrade_to_head("knowledge", db)
        for tenant, expected in (("t1", 1), ("t2", 2)):
            async with db.session(tenant, read_only=True) as session:
                counted = {
                    (r.day, r.card_id): r.uses for r in await session.scalars(select(CardNewcomerDayRow))
                }
            assert counted == {((now - timedelta(hours=1)).date(), "A"): expected}
    finally:
        await db.dispose()
