"""ListLeads' filter memo holds short filters only, and a search text has a bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kit.auth import Principal
from kit.errors import InvalidArgument
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.api import leads as api


def _who() -> Principal:
    expires = datetime.now(UTC) + timedelta(hours=1)
    return Principal(user_id="rep-1", tenant="t1", roles=frozenset({"rep"}), org="org/a", expires_at=expires)


def test_a_long_filter_is_answered_but_not_kept() -> None:
    api._PARSED.clear()
    long_name = "x" * api.MAX_QUERY
    request = pb.ListLeadsRequest(
        filter=pb.LeadFilter(query=long_name, owner_user_ids=[f"rep-{i}" for i in range(40)])
    )
    search, _, _ = api.list_query(_who(), request)
    assert search.query == long_name
    assert api._PARSED == {}  # over _PARSED_KEY_MAX bytes: not kept
    short = pb.ListLeadsRequest(filter=pb.LeadFilter(query="acme"))
    api.list_query(_who(), short)
    assert len(api._PARSED) == 1


def test_a_search_text_over_its_bound_is_refused_on_its_field() -> None:
    request = pb.ListLeadsRequest(filter=pb.LeadFilter(query="x" * (api.MAX_QUERY + 1)))
    with pytest.raises(InvalidArgument) as refused:
        api.list_query(_who(), request)
    assert "filter.query" in repr(refused.value.violations)
