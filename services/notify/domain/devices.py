"""Device registration rules (pure)."""

from __future__ import annotations

from kit.errors import FailedPrecondition, Violations

MAX_DEVICES_PER_USER = 20
DEVICE_ID_MAX = 64


def check(device_id: str, platform: int, push_provider: int, has_token: bool) -> None:
    v = Violations()
    if not device_id or len(device_id) > DEVICE_ID_MAX:
        v.add("device.device_id", f"1 to {DEVICE_ID_MAX} characters")
    if not platform:
        v.add("device.platform", "required")
    if not push_provider:
        v.add("device.push_provider", "required")
    if not has_token:
        v.add("device.push_token", "required")
    v.raise_if_any("invalid device")


def may_add(registered: int) -> None:
    """A user's new installation: refused once they have the maximum."""
    if registered >= MAX_DEVICES_PER_USER:
        raise FailedPrecondition(
            f"at most {MAX_DEVICES_PER_USER} devices per user; unregister an old one first"
        )
