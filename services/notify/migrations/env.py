"""Alembic environment of the notify service."""

from kit.migrations import run_env
from services.notify.store import metadata

run_env(metadata)
