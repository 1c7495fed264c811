"""Customer use cases: create (deduped), update, and the match a converted lead makes. Never commit.

Dedupe follows leads: the normalised company name, and each contact's
normalised phone and e-mail, name one customer per tenant (unique keys in the
database back the checks when two writers race; the unit of work then runs
once more and matches).
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.field_mask_pb2 import FieldMask
from ulid import ULID

from kit.auth import Principal
from kit.errors import AlreadyExists, NotFound, Violations
from kit.resources import UnitOfWork, merge_update, sanitize_create
from salesops.pipeline.v1 import customer_pb2, events_pb2
from services.pipeline import access, members
from services.pipeline.convert import ts
from services.pipeline.domain import customers as rules
from services.pipeline.repositories.customers import CustomerActivity, Customers
from services.pipeline.store_customers import CustomerRow

CUSTOMER_CREATED = "pipeline.CustomerCreated"
MAX_CONTACTS = 50
LIMITS = {
    "customer_id": 64,
    "display_name": 300,
    "industry": 64,
    "city": 100,
    "website": 300,
    "owner_user_id": 128,
}
CONTACT_LIMITS = {"contact_id": 64, "name": 200, "job_title": 200, "phone": 64, "email": 254, "lead_id": 64}


def normalised(c: customer_pb2.Customer, prefix: str = "customer") -> tuple[customer_pb2.Customer, list[str]]:
    """`c` checked, contacts normalised and given ids; its contact keys. Every problem at once."""
    out = customer_pb2.Customer()
    out.CopyFrom(c)
    v = Violations()
    if not out.display_name.strip():
        v.add(f"{prefix}.display_name", "required")
    elif not rules.normalize_company(out.display_name):
        v.add(f"{prefix}.display_name", "needs letters or digits besides legal suffixes")
    for name, limit in LIMITS.items():
        if len(getattr(out, name)) > limit:
            v.add(f"{prefix}.{name}", f"at most {limit} characters")
    if len(out.contacts) > MAX_CONTACTS:
        v.add(f"{prefix}.contacts", f"at most {MAX_CONTACTS} contacts")
    keys: list[str] = []
    seen_ids: set[str] = set()
    for i, contact in enumerate(out.contacts):
        at = f"{prefix}.contacts[{i}]"
        for name, limit in CONTACT_LIMITS.items():
            if len(getattr(contact, name)) > limit:
                v.add(f"{at}.{name}", f"at most {limit} characters")
        if not contact.name.strip():
            v.add(f"{at}.name", "required")
        phone, email = rules.normalize_phone(contact.phone), rules.normalize_email(contact.email)
        if phone is None:
            v.add(f"{at}.phone", "not a phone number (E.164, or a Chinese mobile or landline)")
        if email is None:
            v.add(f"{at}.email", "not an e-mail address")
        contact.phone, contact.email = phone or "", email or ""
        contact.contact_id = contact.contact_id or str(ULID())
        if contact.contact_id in seen_ids:
            v.add(f"{at}.contact_id", "used twice")
        seen_ids.add(contact.contact_id)
        keys.extend(k for k in rules.contact_keys(contact.phone, contact.email) if k not in keys)
    v.raise_if_any("invalid customer")
    out.normalized_name = rules.normalize_company(out.display_name)
    return out, keys


def _store(row: CustomerRow, c: customer_pb2.Customer, who: str, at: datetime) -> None:
    row.display_name, row.normalized_name = c.display_name.strip(), c.normalized_name
    row.industry, row.city, row.owner_user_id = c.industry, c.city, c.owner_user_id
    row.updated_at, row.updated_by = at, who
    body = customer_pb2.Customer()
    body.CopyFrom(c)
    for name in ("etag", "audit", "lead_ids", "org_path", "normalized_name", "customer_id"):
        body.ClearField(name)
    row.body = body.SerializeToString(deterministic=True)


async def match(uow: UnitOfWork, normalized_name: str, keys: list[str]) -> CustomerRow | None:
    """The customer this name or any of these contact keys already names."""
    repo = Customers(uow)
    found = await repo.by_name(normalized_name)
    if found is None and keys:
        taken = await repo.by_keys(keys)
        if taken:
            found = await repo.find(taken[next(k for k in keys if k in taken)])
    return found


async def create_customer(
    uow: UnitOfWork,
    who: Principal,
    incoming: customer_pb2.Customer,
    at: datetime,
    *,
    lead_id: str = "",
    org_path: str | None = None,
) -> tuple[CustomerRow, bool]:
    """The new customer, or the one it duplicates (True)."""
    repo = Customers(uow)
    c, keys = normalised(sanitize_create(incoming))
    if c.customer_id:
        same = await repo.find(c.customer_id)
        if same is not None:  # a replay of the create (idempotent on the client's id)
            if not access.can_view(who, same.owner_user_id, same.org_path):
                raise AlreadyExists(repo.resource, c.customer_id)
            return same, True
    existing = await match(uow, c.normalized_name, keys)
    if existing is not None:
        if not access.can_view(who, existing.owner_user_id, existing.org_path):
            # Dedupe says it exists; its content stays with those who may see it.
            raise AlreadyExists(
                repo.resource, existing.customer_id, "a customer with this name or contact exists"
            )
        return existing, True
    c.owner_user_id = c.owner_user_id or who.user_id
    if org_path is None:  # a converted lead's customer takes the lead's team (org_path given)
        org = await members.org_of(uow, c.owner_user_id)
        org_path = org if org is not None else (who.org.strip("/") if c.owner_user_id == who.user_id else "")
    if c.owner_user_id != who.user_id:
        access.require_assign(who, org_path)
    row = CustomerRow(
        customer_id=c.customer_id or str(ULID()),
        org_path=org_path,
        created_at=at,
        created_by=who.user_id,
        version=1,
    )
    _store(row, c, who.user_id, at)
    await repo.add(row)
    await repo.set_keys(row.customer_id, keys)
    await uow.emit(
        CUSTOMER_CREATED,
        events_pb2.CustomerCreated(
            customer_id=row.customer_id,
            display_name=row.display_name,
            owner_user_id=row.owner_user_id,
            org_path=row.org_path,
            lead_id=lead_id,
        ),
        subject=row.customer_id,
    )
    return row, False


async def writable(uow: UnitOfWork, who: Principal, customer_id: str) -> CustomerRow:
    """The customer if `who` may change it: its owner, managers of its org, admins (else NOT_FOUND)."""
    row = await Customers(uow).find(customer_id)
    if row is None or not access.can_view(who, row.owner_user_id, row.org_path):
        raise NotFound(Customers.resource, customer_id)
    return row


async def update_customer(
    uow: UnitOfWork, who: Principal, incoming: customer_pb2.Customer, mask: FieldMask, at: datetime
) -> CustomerRow:
    repo = Customers(uow)
    row = await writable(uow, who, incoming.customer_id)
    merged, keys = normalised(merge_update(await document(uow, row), incoming, mask))
    if merged.owner_user_id != row.owner_user_id:
        org = await members.org_of(uow, merged.owner_user_id)
        row.org_path = org if org is not None else row.org_path
        access.require_assign(who, row.org_path)
    if merged.normalized_name != row.normalized_name:
        other = await repo.by_name(merged.normalized_name)
        if other is not None and other.customer_id != row.customer_id:
            raise AlreadyExists(repo.resource, other.customer_id, "another customer has this name")
    taken = {k: c for k, c in (await repo.by_keys(keys)).items() if c != row.customer_id}
    if taken:
        raise AlreadyExists(
            repo.resource,
            next(iter(taken.values())),
            f"contact {next(iter(taken))} belongs to another customer",
        )
    renamed = merged.display_name.strip() != row.display_name
    _store(row, merged, who.user_id, at)
    await repo.update_if_etag(row, incoming.etag)
    await repo.set_keys(row.customer_id, keys)
    if renamed:  # its deals show the account's name: they change (new etag) with it
        await repo.rename_deals(row.customer_id, row.display_name[:300], who.user_id, at)
    return row


async def add_contact(
    uow: UnitOfWork, row: CustomerRow, contact: customer_pb2.CustomerContact, at: datetime
) -> None:
    """Add a contact known by name only (a converted lead's), unless one of that name is there."""
    current = customer_pb2.Customer.FromString(row.body)
    if (
        any(c.name.strip() == contact.name.strip() for c in current.contacts)
        or len(current.contacts) >= MAX_CONTACTS
    ):
        return
    current.contacts.add().CopyFrom(contact)
    current.contacts[-1].contact_id = contact.contact_id or str(ULID())
    row.body = current.SerializeToString(deterministic=True)
    row.updated_at, row.version = at, row.version + 1


def customer_message(row: CustomerRow, lead_ids: list[str]) -> customer_pb2.Customer:
    """The stored customer as the message: key, dedupe name, org, leads it came from, audit, etag."""
    msg = customer_pb2.Customer.FromString(row.body)
    msg.customer_id, msg.normalized_name, msg.display_name = (
        row.customer_id,
        row.normalized_name,
        row.display_name,
    )
    msg.owner_user_id, msg.org_path, msg.etag = row.owner_user_id, row.org_path, str(row.version)
    msg.lead_ids.extend(lead_ids)
    msg.audit.create_time.CopyFrom(ts(row.created_at))
    msg.audit.update_time.CopyFrom(ts(row.updated_at))
    msg.audit.created_by, msg.audit.updated_by = row.created_by, row.updated_by
    return msg


async def document(uow: UnitOfWork, row: CustomerRow) -> customer_pb2.Customer:
    return customer_message(row, await CustomerActivity(uow).lead_ids(row.customer_id))
