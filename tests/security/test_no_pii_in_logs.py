"""PIPL / API3: no phone number or e-mail address in any log line, whatever the traffic.

The suite's representative traffic runs in process (leads and notify on real SQLite and
Redis, leads on PostgreSQL too when configured) while every log record is captured at
DEBUG, SQL statement logging included, and rendered the way production renders it (the
JSON formatter, exception tracebacks and extras included). Failure paths are part of the
traffic: invalid input, a unique-key violation escaping an RPC (the pipeline logs it with
its traceback) and an event dead-lettered after a database error (log line and DLQ entry).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from google.protobuf.wrappers_pb2 import StringValue
from redis.asyncio import Redis
from sqlalchemy import MetaData, String, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from deploy.local.infra import free_port
from kit.auth import AuthConfig, TokenMinter, TokenVerifier
from kit.config import GrpcSettings
from kit.db import Database, TenantScoped
from kit.events import (
    EventEnvelope,
    OutboxRelay,
    StreamConsumer,
    dead_letters,
    emit,
    outbox_table,
    processed_events_table,
    service_stream,
    unpack_payload,
)
from kit.grpc import context as call
from kit.grpc.server import GrpcServer, Registration
from kit.telemetry import JsonFormatter
from salesops.common.v1 import diagnostics_pb2, diagnostics_pb2_grpc, types_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from salesops.notify.v1 import subscriber_pb2
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, hot_lead
from tests.notify.conftest import ADMIN, REP_A1, SERVICE, NotifyStack, auth

# Anything shaped like a CN mobile (with or without +86) or an E.164 number, and e-mail addresses.
PHONE = re.compile(r"(?<![\w+])(?:\+?86[- ]?)?1[3-9]\d{9}(?!\d)|(?<![\w+])\+\d{8,15}(?!\d)")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Ids that may contain digit runs by chance: trace/span ids (hex) and ULIDs.
IDS = re.compile(r"\b[0-9a-f]{16,}\b|\b[0-9A-HJKMNP-TV-Z]{26}\b")

Lines = Callable[[], list[str]]


@pytest.fixture
def log_lines(caplog: pytest.LogCaptureFixture) -> Iterator[Lines]:
    """Every record of the test (setup included) at DEBUG, as the message and as the JSON line."""
    caplog.set_level(logging.DEBUG)
    for name in ("salesops", "sqlalchemy", "sqlalchemy.engine", "grpc", "aiosqlite", "asyncpg", "redis"):
        caplog.set_level(logging.DEBUG, logger=name)
    formatter = JsonFormatter("test")

    def lines() -> list[str]:
        records = caplog.get_records("setup") + caplog.get_records("call")
        return [text for r in records for text in (r.getMessage(), formatter.format(r))]

    yield lines


def personal_data(lines: list[str]) -> list[str]:
    found = []
    for line in lines:
        scrubbed = IDS.sub("<id>", line)
        found += PHONE.findall(scrubbed) + EMAIL.findall(scrubbed)
    return found


def assert_no_personal_data(lines: list[str], *sent: str) -> None:
    assert len(lines) > 10, "nothing was logged: the capture is not working"
    leaked = personal_data(lines)
    assert not leaked, f"personal data in logs: {sorted(set(leaked))[:10]}"
    for value in sent:  # the exact values this test sent, whatever their shape
        assert not any(value in line for line in lines), f"{value!r} appears in a log line"


def test_the_detector_finds_what_it_must() -> None:
    lines = [
        "lead 13912345678 created",
        '{"msg": "x", "phone": "+8613912345678"}',
        "duplicate key (email)=(zhang.wei@acme.example.cn)",
        "uk +447911123456",
    ]
    assert len(personal_data(lines)) == 4
    clean = [
        "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
        "lead 01JF3Q9ZK8R1V4T6X2M0N5P7BC masked 139****5678",
        "took 1733450000123 ms at 2026-12-06T00:25:02.123+00:00",
    ]
    assert personal_data(clean) == []


async def test_leads_traffic_logs_no_personal_data(leads: Leads, log_lines: Lines) -> None:
    sent = ["13912345678", "13687654321", "zhang.wei@acme.example.cn", "li.na@acme.example.cn"]
    await configure(leads)
    first = await leads.call(
        "CreateLead", pb.CreateLeadRequest(lead=hot_lead("PII-1", phone=sent[0], email=sent[2]))
    )
    await leads.call(
        "CreateLead",
        pb.CreateLeadRequest(lead=hot_lead("PII-2", phone=sent[1], email=sent[3], company="Other Co")),
        user="rep-a1",
    )
    # The same contact again: the dedupe path compares phones and e-mails.
    await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("PII-3", phone=sent[0], email=sent[2])))
    for bad in ("12345", "not-a-phone"):
        with pytest.raises(grpc.aio.AioRpcError):
            await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead(phone=bad, email="no-at-sign")))
    await leads.call("GetLead", pb.GetLeadRequest(lead_id=first.lead.lead_id))
    with pytest.raises(grpc.aio.AioRpcError):
        await leads.call("GetLead", pb.GetLeadRequest(lead_id=first.lead.lead_id), user="rep-b1")
    await leads.call("ListLeads", pb.ListLeadsRequest(page_size=10))
    rows = [pb.ImportLeadRow(row_ref=f"r{i}", lead=hot_lead(phone=f"1371234{i:04d}")) for i in range(3)]
    rows.append(pb.ImportLeadRow(row_ref="bad", lead=hot_lead(phone="999")))
    await leads.call("ImportLeads", pb.ImportLeadsRequest(import_id="pii-import", rows=rows))
    assert_no_personal_data(log_lines(), *sent)


async def test_notify_traffic_logs_no_personal_data(notify: NotifyStack, log_lines: Lines) -> None:
    # The fixture already upserted the directory: every subscriber has a phone and an e-mail.
    stub: Any = notify.stub  # the generated stubs are typed for the sync API
    fresh = subscriber_pb2.Subscriber(
        user_id="rep-new", display_name="New Rep", org_unit_path="east/team-a", active=True,
        phone="+8613512345678", email="new.rep@acme.example.cn",
    )  # fmt: skip
    await stub.BatchUpsertSubscribers(
        M.BatchUpsertSubscribersRequest(subscribers=[fresh]), metadata=auth(SERVICE)
    )
    broken = subscriber_pb2.Subscriber(user_id="rep-bad", phone="+86 abc", email="@@")
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.BatchUpsertSubscribers(
            M.BatchUpsertSubscribersRequest(subscribers=[broken]), metadata=auth(SERVICE)
        )
    values = Struct()
    values.update({"lead_name": "ACME 13912345678", "lead_id": "L1"})  # a phone in the content, too
    notification = N.Notification(
        category=N.NOTIFICATION_CATEGORY_SLA_REMINDER,
        recipients=[N.Recipient(user_id=u) for u in ("rep-a1", "rep-new", "nobody")],
        template=N.TemplateContent(variables=values),
        subject=types_pb2.ResourceRef(service="leads", kind="lead", id="L1"),
    )
    sent = await stub.SendNotification(
        M.SendNotificationRequest(notification=notification), metadata=auth(SERVICE)
    )
    assert "rep-a1" in sent.notification.resolved_user_ids
    await stub.ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(REP_A1))
    await stub.ListSubscribers(M.ListSubscribersRequest(page_size=50), metadata=auth(ADMIN))
    assert_no_personal_data(log_lines(), "+8613512345678", "new.rep@acme.example.cn", "13912345678")


# --------------------------------------------------------------------------- database failure paths

PHONE_VALUE = "+8613712345678"
EMAIL_VALUE = "wang.fang@acme.example.cn"
SOURCE = "piitest"


class Base(DeclarativeBase):
    metadata = MetaData()


OUTBOX = outbox_table(Base.metadata)
PROCESSED = processed_events_table(Base.metadata)


class Contact(TenantScoped, Base):
    __tablename__ = "contact"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), unique=True)
    email: Mapped[str] = mapped_column(String(128))


async def add_duplicate(session: AsyncSession, contact_id: str) -> None:
    """The unique phone again: an IntegrityError whose parameters are a phone and an e-mail."""
    values = {"id": contact_id, "tenant_id": "demo", "phone": PHONE_VALUE, "email": EMAIL_VALUE}
    await session.execute(insert(Contact).values(**values))


class Clash(diagnostics_pb2_grpc.DiagnosticsServiceServicer):
    """An RPC whose write violates a unique key and escapes: the pipeline's 'unhandled error' path."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def WhoAmI(self, request: Any, context: Any) -> Any:
        async with self.db.session(call.principal().tenant) as session:
            await add_duplicate(session, "c-rpc")
            await session.commit()
        raise AssertionError("the insert should have failed")


@pytest.fixture
async def contacts(tmp_path: Path) -> Any:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'contacts.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.execute(
            insert(Contact).values(id="c-0", tenant_id="demo", phone=PHONE_VALUE, email=EMAIL_VALUE)
        )
    yield db
    await db.dispose()


async def test_unhandled_database_error_in_an_rpc_is_logged_without_parameters(
    contacts: Database, log_lines: Lines
) -> None:
    config = AuthConfig()
    settings = GrpcSettings(f"127.0.0.1:{free_port()}", False, 1.0, 5.0, 4 << 20, 30_000, 10_000)
    reg = Registration(
        diagnostics_pb2_grpc.add_DiagnosticsServiceServicer_to_server,
        Clash(contacts),
        diagnostics_pb2.DESCRIPTOR.services_by_name["DiagnosticsService"].full_name,
    )
    server = GrpcServer("piitest", settings, TokenVerifier(config), [reg])
    await server.start()
    try:
        token = TokenMinter(config).mint("rep-a1", "demo", ["rep"])
        async with grpc.aio.insecure_channel(server.address) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await diagnostics_pb2_grpc.DiagnosticsServiceStub(ch).WhoAmI(
                    diagnostics_pb2.WhoAmIRequest(),
                    metadata=(("authorization", f"Bearer {token}"),),
                    timeout=5,
                )
    finally:
        await server.stop(0)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    lines = log_lines()
    assert any("UNIQUE constraint failed: contact.phone" in line for line in lines), (
        "the failure was not logged"
    )
    assert_no_personal_data(lines, PHONE_VALUE, EMAIL_VALUE)
    assert PHONE_VALUE not in (caught.value.details() or "")


async def test_dead_lettered_event_carries_no_parameters(
    contacts: Database, redis_url: str, log_lines: Lines
) -> None:
    stream = service_stream(SOURCE)

    async def handler(envelope: EventEnvelope, session: AsyncSession) -> None:
        await add_duplicate(session, unpack_payload(envelope, StringValue).value)
        await session.flush()

    async with contacts.session("demo") as session:
        await emit(session, f"{SOURCE}.contact.added", StringValue(value="c-1"), source=SOURCE, subject="c-1")
        await session.commit()
    redis = Redis.from_url(redis_url)
    relay = OutboxRelay(contacts, redis, stream, table=OUTBOX, poll_interval=0.05)
    consumer = StreamConsumer(
        redis, contacts, "piigroup", [stream], handler, processed_table=PROCESSED,
        max_deliveries=1, retry_delay=0.02, block=0.2, min_idle=0.3, claim_interval=0.1,
    )  # fmt: skip
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not (letters := await dead_letters(redis, "piigroup")):
            assert asyncio.get_running_loop().time() < deadline, "the poison event was never dead-lettered"
            await asyncio.sleep(0.05)
    finally:
        await relay.stop()
        await consumer.stop()
        await asyncio.gather(*tasks)
        await redis.aclose()
    assert "UNIQUE constraint failed: contact.phone" in letters[0].error
    assert PHONE_VALUE not in letters[0].error and EMAIL_VALUE not in letters[0].error
    assert personal_data([letters[0].error]) == []
    assert_no_personal_data(log_lines(), PHONE_VALUE, EMAIL_VALUE)
