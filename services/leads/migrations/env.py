"""Alembic environment of the leads service."""

from kit.migrations import run_env
from services.leads.store import metadata

run_env(metadata)
