"""The tenant criterion is built once per tenant and reused: each tenant still sees only its rows."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import Database, TenantScoped


class Base(DeclarativeBase):
    pass


class Row(TenantScoped, Base):
    __tablename__ = "row"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)


async def test_alternating_tenants_each_see_their_own_rows(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    for tenant in ("t1", "t2", "t3"):
        async with db.session(tenant) as s:
            s.add_all([Row(id=f"{tenant}-a"), Row(id=f"{tenant}-b")])
            await s.commit()
    for tenant in ("t1", "t2", "t1", "t3", "t2", "t1"):  # the cached criteria, reused in turn
        async with db.session(tenant, read_only=True) as s:
            ids = sorted((await s.scalars(select(Row.id))).all())
            by_key = await s.get(Row, "t2-a")
        assert ids == [f"{tenant}-a", f"{tenant}-b"]
        assert (by_key is not None) == (tenant == "t2")
    await db.dispose()
