"""api/leads.list_query: ListLeads' checked filter, order and query key, kept by the filter's bytes,
the order and the caller, answers what lead_search, lead_order and query_key answer every time:
"me" is each caller's own, a filter reading the clock is never kept, an invalid one raises again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kit.auth import Principal
from kit.errors import InvalidArgument
from kit.resources import query_key
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.api import leads as api

AT = datetime.now(UTC) + timedelta(hours=1)
ANN = Principal("ann", "demo", frozenset({"rep"}), "east", AT)
BOB = Principal("bob", "demo", frozenset({"rep"}), "east", AT)


@pytest.fixture(autouse=True)
def _empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "_PARSED", {})


def _direct(who: Principal, request: pb.ListLeadsRequest) -> tuple[object, object, str]:
    order_by = (request.order_by or api.DEFAULT_ORDER).strip()
    return (
        api.lead_search(who, request.filter),
        api.lead_order(request.order_by),
        query_key("ListLeads", who.user_id, request.filter, order_by),
    )


def test_kept_answers_as_computed_and_me_is_each_callers_own() -> None:
    request = pb.ListLeadsRequest(
        order_by="score desc", filter=pb.LeadFilter(owner_user_ids=["me"], regions=["east/*"], grades=[1])
    )
    for who in (ANN, BOB, ANN, BOB):
        got = api.list_query(who, request)
        assert got == _direct(who, request)
        assert got[0].owners == [who.user_id]
    assert len(api._PARSED) == 2
    other = pb.ListLeadsRequest(order_by="score", filter=request.filter)  # another order: its own
    assert api.list_query(ANN, other) == _direct(ANN, other)
    changed = pb.ListLeadsRequest(order_by="score desc", filter=pb.LeadFilter(regions=["north/*"]))
    assert api.list_query(ANN, changed)[0].regions == ["north/*"]


def test_a_filter_reading_the_clock_is_not_kept() -> None:
    request = pb.ListLeadsRequest(filter=pb.LeadFilter(min_idle_days=3))
    first = api.list_query(ANN, request)[0].idle_since
    assert first is not None and not api._PARSED
    assert api.list_query(ANN, request)[0].idle_since >= first


def test_an_invalid_request_raises_every_time() -> None:
    for request in (
        pb.ListLeadsRequest(order_by="nonsense"),
        pb.ListLeadsRequest(filter=pb.LeadFilter(phone="x")),
    ):
        for _ in range(2):
            with pytest.raises(InvalidArgument):
                api.list_query(ANN, request)
    assert not api._PARSED


def test_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "_PARSED_MAX", 5)
    for i in range(12):
        request = pb.ListLeadsRequest(filter=pb.LeadFilter(query=f"q{i}"))
        assert api.list_query(ANN, request) == _direct(ANN, request)
        assert len(api._PARSED) <= 5
