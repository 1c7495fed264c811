"""Shared fixtures of the security suite: the in-process leads and notify servers of their own suites.

Imported here once, so security modules take `leads` / `notify` as parameters without
re-importing the fixtures (which would shadow them and trip the linter).
"""

from __future__ import annotations

from tests.leads.conftest import leads
from tests.notify.conftest import notify

__all__ = ["leads", "notify"]
