"""Group commit for CreateLead (kit's GroupCommit, by tenant): the calls that arrive while one of the
tenant's intakes is in its transaction wait, then are decided together in one transaction by the
batch intake (imports.intake_rows: rows in arrival order, each seeing the ones before it), one
commit for all.

A lone call runs at once, as before. Each caller still gets its own answer: its replay, its
validation error, its lead as it may see it. If the group's transaction fails as a whole (a
database error, a unique race lost twice), every caller in it is served alone instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from kit.auth import Principal
from kit.errors import SalesopsError
from kit.resources import GroupCommit
from salesops.leads.v1 import leads_service_pb2 as pb

MAX_GROUP = 250  # rows per transaction, as an import's batch
# After a group, up to this long for its callers' next calls (kit's GroupCommit linger): clients
# with N in flight send again on each answer, and taken together they make one group of N, not
# alternating 1 and N-1 (or N/2 and N/2). On a loaded 2-core machine (load 10-20) 16 callers were
# all back in 10-25 ms (median), 40-80 ms (p90); a linger that ends first starts what came.
LINGER_S = 0.05

# A grouped call's answer: its response, or its own error (raised to that caller only).
Answer = pb.CreateLeadResponse | SalesopsError


@dataclass(frozen=True)
class Waiting:
    """A CreateLead waiting for the tenant's running intake to finish."""

    who: Principal
    request: pb.CreateLeadRequest
    at: datetime
    intake_id: str


Alone = Callable[[Principal, pb.CreateLeadRequest, datetime], Awaitable[pb.CreateLeadResponse]]
Group = Callable[[str, list[Waiting]], Awaitable[list[Answer]]]


class IntakeGroups:
    """Per tenant: at most one intake transaction of CreateLead calls at a time, the rest grouped."""

    def __init__(
        self, alone: Alone, group: Group, max_group: int = MAX_GROUP, linger: float = LINGER_S
    ) -> None:
        async def one(_: str, w: Waiting) -> Answer:
            return await alone(w.who, w.request, w.at)

        self._groups: GroupCommit[Waiting, Answer] = GroupCommit(
            one, group, max_group=max_group, what="CreateLead", linger=linger
        )

    async def create(
        self, who: Principal, request: pb.CreateLeadRequest, at: datetime, intake_id: str
    ) -> pb.CreateLeadResponse:
        got = await self._groups.submit(who.tenant, Waiting(who, request, at, intake_id))
        if isinstance(got, SalesopsError):
            raise got
        return got
