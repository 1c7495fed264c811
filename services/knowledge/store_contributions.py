"""Contributions and points: tables on the service's metadata (placeholder until built)."""

from __future__ import annotations
