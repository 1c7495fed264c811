"""Sync jobs, runs, lag alerts: tables on the service's metadata (placeholder until built)."""

from __future__ import annotations
