"""Member profiles (the directory's view of the sales org): read in scope, written by admins and
directory sync (a partner key with the "directory" scope). A profile's org path places its
owner's deals; its manager is the supervisor notices go to. Never commit.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.field_mask_pb2 import FieldMask

from kit.auth import Principal
from kit.errors import NotFound, PermissionDenied, Violations
from kit.resources import UnitOfWork, merge_update, sanitize_create
from salesops.pipeline.v1 import settings_pb2
from services.pipeline import access
from services.pipeline.convert import ts
from services.pipeline.repositories.members import MemberProfiles
from services.pipeline.store import MemberProfileRow

DIRECTORY_SCOPE = "directory"


def can_view(who: Principal, row: MemberProfileRow) -> bool:
    return (
        access.sees_all(who)
        or row.user_id == who.user_id
        or (bool(row.org_path) and who.org_contains(row.org_path))
    )


async def visible(uow: UnitOfWork, who: Principal, user_id: str) -> MemberProfileRow:
    row = await MemberProfiles(uow).find(user_id)
    if row is None or not can_view(who, row):
        raise NotFound(MemberProfiles.resource, user_id)
    return row


def _check(p: settings_pb2.MemberProfile) -> None:
    v = Violations()
    if not p.user_id.strip():
        v.add("member_profile.user_id", "required")
    if not p.display_name.strip():
        v.add("member_profile.display_name", "required")
    if any(part in (".", "..") for part in p.org_path.split("/")):
        v.add("member_profile.org_path", "a plain path such as east/shanghai/team-a")
    if any(("," in r or not r.strip()) for r in p.approver_roles):
        v.add("member_profile.approver_roles", "keys without commas")
    # The columns' widths (store.py): longer is INVALID_ARGUMENT, not a database error.
    for name, value, limit in (
        ("user_id", p.user_id, 128),
        ("display_name", p.display_name, 200),
        ("org_path", p.org_path.strip("/"), 200),
        ("manager_user_id", p.manager_user_id, 128),
        ("approver_roles", "," + ",".join(sorted(set(p.approver_roles))) + ",", 500),
    ):
        if len(value) > limit:
            v.add(f"member_profile.{name}", f"at most {limit} characters")
    v.raise_if_any("invalid member profile")


def _store(row: MemberProfileRow, p: settings_pb2.MemberProfile, who: Principal, at: datetime) -> None:
    row.display_name, row.org_path = p.display_name, p.org_path.strip("/")
    row.manager_user_id, row.active = p.manager_user_id, p.active
    row.approver_roles = "," + ",".join(sorted(set(p.approver_roles))) + "," if p.approver_roles else ""
    row.updated_at, row.updated_by = at, who.user_id
    body = settings_pb2.MemberProfile()
    body.CopyFrom(p)
    body.ClearField("etag")
    body.ClearField("audit")
    body.org_path = row.org_path
    row.body = body.SerializeToString(deterministic=True)


async def update_profile(
    uow: UnitOfWork,
    who: Principal,
    incoming: settings_pb2.MemberProfile,
    mask: FieldMask,
    allow_missing: bool,
    at: datetime,
) -> MemberProfileRow:
    if not (who.is_admin or (who.is_service and who.has_scope(DIRECTORY_SCOPE))):
        raise PermissionDenied(
            "member profiles are written by admins and directory sync", reason="DIRECTORY_ONLY"
        )
    repo = MemberProfiles(uow)
    row = await repo.find(incoming.user_id) if incoming.user_id else None
    if row is None:
        if not allow_missing:
            raise NotFound(repo.resource, incoming.user_id or "(empty)")
        created = sanitize_create(incoming)
        _check(created)
        row = MemberProfileRow(user_id=created.user_id, version=1)
        _store(row, created, who, at)
        await repo.add(row)
        return row
    merged = merge_update(document(row), incoming, mask)
    _check(merged)
    moved_from = row.org_path
    _store(row, merged, who, at)
    await repo.update_if_etag(row, incoming.etag)
    if row.org_path != moved_from:
        # The member's forecast calls follow them (audited, never dropped). Imported here: calls
        # reaches members through deals.
        from services.pipeline.calls import rehome_member

        await rehome_member(uow, row.user_id, row.org_path, who.user_id, at)
    return row


def document(row: MemberProfileRow) -> settings_pb2.MemberProfile:
    """The stored profile as the message, with its key, etag and audit."""
    msg = settings_pb2.MemberProfile.FromString(row.body)
    msg.user_id, msg.org_path, msg.etag = row.user_id, row.org_path, str(row.version)
    msg.audit.update_time.CopyFrom(ts(row.updated_at))
    msg.audit.updated_by = row.updated_by
    return msg


async def org_of(uow: UnitOfWork, user_id: str) -> str | None:
    """The org path of an active member's team, None when the directory does not know them."""
    row = await MemberProfiles(uow).find(user_id)
    return row.org_path if row is not None and row.active else None
