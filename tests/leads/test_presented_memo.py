"""presenters._row_into: a read's row (LeadView, body as JSON text) presented from the memo is what
the presenter builds field by field, for every viewer (each sees the masking decided for them,
whoever was shown the row first), in both views, and a changed row never shows the old answer."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kit.auth import Principal
from kit.memo import BytesMemo
from salesops.leads.v1 import lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import access, presenters
from services.leads.presenters import LEADS, LeadDetails
from services.leads.repositories.lead_reads import LeadView

EXPIRES = datetime(2100, 1, 1, tzinfo=UTC)
VIEWERS = [
    Principal("admin", "demo", frozenset({"admin"}), "", EXPIRES),
    Principal("rep-1", "demo", frozenset({"rep"}), "/east/sh/t1", EXPIRES),
    Principal("rep-2", "demo", frozenset({"rep"}), "/east/sh/t1", EXPIRES),
    Principal("sup-1", "demo", frozenset({"supervisor"}), "/east/sh", EXPIRES),
    Principal("sup-9", "demo", frozenset({"supervisor"}), "/north", EXPIRES),
]


def _row(rnd: random.Random, i: int) -> LeadView:
    phone = rnd.choice(["", f"+86139{i:08d}"])
    body = {"contact": {"name": f"李{i}", "phone": phone}, "tags": ["vip"] * rnd.randint(0, 2)}
    at = datetime(2026, 1, 1) + timedelta(minutes=rnd.randint(0, 10_000))  # naive, as read

    def maybe() -> datetime | None:
        return rnd.choice([None, at + timedelta(hours=rnd.randint(1, 50))])

    values: dict[str, Any] = {
        "lead_id": f"L{i}",
        "status": rnd.choice(["IN_POOL", "ASSIGNED", "WORKING"]),
        "display_name": f"{phone} 李{i}".strip(),
        "phone": phone,
        "region": "east/shanghai",
        "grade": rnd.choice(["", "A", "B"]),
        "score": rnd.randint(0, 100),
        "grading": rnd.choice([None, {"score": 40, "grade": "LEAD_GRADE_B"}]),
        "owner_user_id": rnd.choice([None, "rep-1", "rep-2"]),
        "team_path": rnd.choice(["", "east/sh/t1", "north/bj"]),
        "supervisor_user_id": rnd.choice(["", "sup-1"]),
        "pool_id": rnd.choice([None, "p1"]),
        "pool_entry_reason": rnd.choice(["", "RECYCLED"]),
        "assignment_reason": rnd.choice(["", "ROUTED"]),
        "assign_time": maybe(),
        "last_decision_id": rnd.choice(["", "d1"]),
        "last_activity_time": maybe(),
        "activity_count": rnd.randint(0, 3),
        "sla_state": rnd.choice(["", "PENDING", "MET"]),
        "sla_grade": rnd.choice(["", "A"]),
        "sla_start": maybe(),
        "sla_due": maybe(),
        "sla_reminder": maybe(),
        "sla_reminded": rnd.random() < 0.5,
        "sla_response_time": maybe(),
        "sla_response_activity_id": "",
        "sla_responder": rnd.choice(["", "rep-1"]),
        "sla_business_seconds": rnd.choice([None, 125.0]),
        "sla_breach_time": maybe(),
        "sla_breach_action": "",
        "sla_reassignments": rnd.randint(0, 2),
        "needs_attention": rnd.random() < 0.5,
        "recycle_warned": False,
        "duplicate_review_needed": rnd.random() < 0.5,
        "intake_count": rnd.randint(0, 3),
        "merged_into": "",
        "converted_opportunity_id": "",
        "close_time": maybe(),
        "body": json.dumps(body, ensure_ascii=False),
        "version": rnd.randint(1, 5),
        "created_by": "admin",
        "created_at": at,
        "updated_at": at,
    }
    return LeadView(**values)


def _reference(
    viewer: Principal, row: LeadView, full: bool, monkeypatch: pytest.MonkeyPatch
) -> lead_pb2.Lead:
    """What the presenter builds without the memo (the path every other row takes)."""
    with monkeypatch.context() as m:
        m.setattr(presenters, "LeadView", type("NotALeadView", (), {}))
        return LEADS.present(viewer, LeadDetails(row, full=full))


@pytest.mark.parametrize("seed", range(3))
def test_memo_presents_what_the_presenter_builds_for_each_viewer(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(presenters, "_PRESENTED", BytesMemo(1 << 20))
    rnd = random.Random(seed)
    rows = [_row(rnd, i) for i in range(40)]
    masked_seen = 0
    for _ in range(3):  # first built, then from the memo (viewers in a new order each time)
        for viewer in rnd.sample(VIEWERS, len(VIEWERS)):
            for row in rows:
                for full in (False, True):
                    got = LEADS.present(viewer, LeadDetails(row, full=full))
                    want = _reference(viewer, row, full, monkeypatch)
                    assert got == want, (viewer.user_id, row.lead_id, full)
                    masked_seen += got.contact.phone_masked
    assert masked_seen and presenters._PRESENTED


def test_a_changed_row_shows_its_new_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presenters, "_PRESENTED", BytesMemo(1 << 20))
    row = _row(random.Random(7), 1)._replace(owner_user_id="rep-1", version=1)
    viewer = VIEWERS[1]
    assert LEADS.present(viewer, row).etag == "1"
    changed = row._replace(version=2, owner_user_id="rep-2", display_name="new name")
    got = LEADS.present(viewer, changed)
    assert got == _reference(viewer, changed, False, monkeypatch)
    assert (got.etag, got.owner_user_id, got.display_name) == ("2", "rep-2", "new name")


def test_the_memo_is_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    memo: BytesMemo[Any, Any] = BytesMemo(3 * 1024 * 8)
    monkeypatch.setattr(presenters, "_PRESENTED", memo)
    rnd = random.Random(3)
    for i in range(100):
        LEADS.present(VIEWERS[0], _row(rnd, i))
        assert 0 < memo.used <= memo.budget
    assert len(memo) < 100


def _page(viewer: Principal, rows: list[LeadView], full: bool, answer: Any) -> pb.ListLeadsResponse:
    page = pb.ListLeadsResponse()
    LEADS.present_page(page, viewer, rows, full=full, answer=answer)
    return page


@pytest.mark.parametrize("seed", range(3))
def test_a_page_from_the_memo_is_each_lead_as_its_viewer_sees_it(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One answer's page presented to viewers who see its phones differently (the memo's worst case:
    the same read's name for all of them): each gets the masking decided for them, in both views."""
    monkeypatch.setattr(presenters, "_PAGES", BytesMemo(1 << 20))
    rnd = random.Random(seed)
    rows = [_row(rnd, i) for i in range(20)]
    answer = ("SELECT ...", ("demo", 21), (1, 5))
    masked_seen = 0
    for _ in range(3):  # first built, then from the memo (viewers in a new order each time)
        for viewer in rnd.sample(VIEWERS, len(VIEWERS)):
            for full in (False, True):
                want = [_reference(viewer, row, full, monkeypatch) for row in rows]
                got = _page(viewer, rows, full, answer)
                assert list(got.leads) == want, (viewer.user_id, full)
                assert got == _page(viewer, rows, full, None)  # unnamed: presented lead by lead
                masked_seen += sum(lead.contact.phone_masked for lead in got.leads)
    assert masked_seen and len(presenters._PAGES) == 2 * len(
        {tuple(access.can_see_phone(v, r) for r in rows) for v in VIEWERS}
    )


def test_a_page_of_another_answer_shows_its_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presenters, "_PAGES", BytesMemo(1 << 20))
    rows = [_row(random.Random(5), i)._replace(version=1) for i in range(3)]
    viewer = VIEWERS[0]
    assert [lead.etag for lead in _page(viewer, rows, False, ("q", (), (1, 1))).leads] == ["1"] * 3
    changed = [row._replace(version=2) for row in rows]  # after a commit: another version
    assert [lead.etag for lead in _page(viewer, changed, False, ("q", (), (1, 2))).leads] == ["2"] * 3
