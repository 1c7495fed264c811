"""Lead statuses and the transitions between them: the one definition of the lead life cycle.

IN_POOL --claim/assign/route--> ASSIGNED --first completed activity--> WORKING
ASSIGNED/WORKING --release/recycle/breach--> IN_POOL
ASSIGNED/WORKING --convert--> CONVERTED
IN_POOL/ASSIGNED/WORKING --disqualify--> DISQUALIFIED
any but MERGED --merge--> MERGED   (a closed lead may be merged into another)
"""

from __future__ import annotations

from enum import StrEnum

from kit.errors import FailedPrecondition

IN_POOL = "IN_POOL"
ASSIGNED = "ASSIGNED"
WORKING = "WORKING"
CONVERTED = "CONVERTED"
DISQUALIFIED = "DISQUALIFIED"
MERGED = "MERGED"

OPEN = frozenset({ASSIGNED, WORKING})  # owned and being worked
LIVE = frozenset({IN_POOL, ASSIGNED, WORKING})  # not closed: gradable, watchable
CLOSED = frozenset({CONVERTED, DISQUALIFIED, MERGED})
WON_OR_LOST = frozenset({CONVERTED, DISQUALIFIED})  # closed by a decision (dedupe still matches them)


class Action(StrEnum):
    ASSIGN = "assign"  # routing, manual assignment, a claim
    CONTACT = "contact"  # a completed activity
    RETURN_TO_POOL = "return_to_pool"  # release, recycle, SLA breach
    CONVERT = "convert"
    DISQUALIFY = "disqualify"
    MERGE = "merge"


def owned_status(activity_count: int) -> str:
    """The status of a lead that has just got an owner: WORKING once anyone has followed it up."""
    return WORKING if activity_count else ASSIGNED


def next_status(current: str, action: Action, *, activity_count: int = 0) -> str:
    """The status after `action`, or FAILED_PRECONDITION when the life cycle does not allow it."""
    if action is Action.ASSIGN and current in LIVE:
        return owned_status(activity_count)
    if action is Action.CONTACT and current in OPEN:
        return WORKING
    if action is Action.RETURN_TO_POOL and current in OPEN:
        return IN_POOL
    if action is Action.CONVERT and current in OPEN:
        return CONVERTED
    if action is Action.DISQUALIFY and current in LIVE:
        return DISQUALIFIED
    if action is Action.MERGE and current != MERGED:
        return MERGED
    raise FailedPrecondition(f"a {current} lead cannot {action.value.replace('_', ' ')}", reason="BAD_STATUS")


def is_open(status: str) -> bool:
    return status in OPEN


def is_closed(status: str) -> bool:
    return status in CLOSED
