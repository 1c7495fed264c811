"""Who may see and change which SOP card, decided here and nowhere else.

Reps read published cards their audience includes (domain.cards.audience_sees).
Supervisors and directors also see every draft and card in review, and retired
cards of their audience; they write and submit cards. Admins (sales ops) see
everything and alone publish, retire and return cards. The author always sees
their own card. A card the caller may not see answers NOT_FOUND, like one that
does not exist.

The SQL twin of `can_read` (for lists and search) is `Cards.visible_to`.
"""

from __future__ import annotations

from kit.auth import Principal
from kit.errors import NotFound, PermissionDenied
from services.knowledge.domain.cards import DRAFT, IN_REVIEW, PUBLISHED, RETIRED, audience_sees
from services.knowledge.store import SopCardRow

MANAGERS = ("supervisor", "director")
RESOURCE = "knowledge.SopCard"


def is_manager(who: Principal) -> bool:
    return who.has_role(*MANAGERS)


def manages_cards(who: Principal) -> bool:
    """Writes cards and sees every status: admins (sales ops), supervisors and directors."""
    return who.acts_tenant_wide or is_manager(who)


def can_read(who: Principal, row: SopCardRow, visible_org_paths: list[str]) -> bool:
    if who.acts_tenant_wide or row.author_user_id == who.user_id:
        return True
    manager = is_manager(who)
    if row.status in (DRAFT, IN_REVIEW):
        return manager
    if row.status == PUBLISHED or (row.status == RETIRED and manager):
        return audience_sees(row.visibility, visible_org_paths, org=who.org, manager=manager, admin=False)
    return False


def can_manage(who: Principal, row: SopCardRow, visible_org_paths: list[str]) -> bool:
    return manages_cards(who) or row.author_user_id == who.user_id


def require_read(who: Principal, row: SopCardRow, visible_org_paths: list[str]) -> None:
    if not can_read(who, row, visible_org_paths):
        raise NotFound(RESOURCE, row.card_id)


def require_write(who: Principal) -> None:
    if not manages_cards(who):
        raise PermissionDenied(
            "cards are written by sales ops and managers; reps contribute field cases instead",
            reason="NOT_CARD_EDITOR",
        )


def require_manage(who: Principal, row: SopCardRow, visible_org_paths: list[str]) -> None:
    """Editing or submitting this card: NOT_FOUND if the caller cannot see it, else DENIED."""
    require_read(who, row, visible_org_paths)
    if not can_manage(who, row, visible_org_paths):
        raise PermissionDenied(
            "only the card's author, managers and admins change it", reason="NOT_CARD_EDITOR"
        )


def require_admin(who: Principal) -> None:
    if not who.may_configure:  # admins, or a partner key naming this very method
        raise PermissionDenied("admin (sales ops) only", reason="ADMIN_ONLY")
