"""One way to build a resource: unit of work, repositories, keyset paging, masks, settings, presentation.

See services/README.md for a resource traced from proto to table.
"""

from kit.resources.groups import GroupCommit
from kit.resources.masks import behaviors, merge_update, output_only_paths, sanitize_create
from kit.resources.matching import (
    CaseSensitiveMatch,
    contains,
    escape_like,
    glob_pattern,
    like_pattern,
    starts_with,
)
from kit.resources.paging import PAGE_TOKEN_SECRET_ENV, PageRequest, PageTokens, page_token_secret, query_key
from kit.resources.presentation import Presenter, present_all
from kit.resources.repository import STALE_ETAG, Page, Repository, Sort
from kit.resources.settings import SettingsTables, Stored, TenantSettings, settings_tables
from kit.resources.uow import ReadOnlyError, Transactions, UnitOfWork, is_unique_violation

__all__ = [
    "PAGE_TOKEN_SECRET_ENV",
    "STALE_ETAG",
    "CaseSensitiveMatch",
    "GroupCommit",
    "Page",
    "PageRequest",
    "PageTokens",
    "Presenter",
    "ReadOnlyError",
    "Repository",
    "SettingsTables",
    "Sort",
    "Stored",
    "TenantSettings",
    "Transactions",
    "UnitOfWork",
    "behaviors",
    "contains",
    "escape_like",
    "glob_pattern",
    "is_unique_violation",
    "like_pattern",
    "merge_update",
    "output_only_paths",
    "page_token_secret",
    "present_all",
    "query_key",
    "sanitize_create",
    "settings_tables",
    "starts_with",
]
