"""Presentation: the one place per resource that decides what a viewer may see.

    class ItemPresenter:
        def present(self, viewer: Principal, item: ItemRow) -> item_pb2.Item:
            msg = item_pb2.Item(item_id=item.id, name=item.name, etag=str(item.version))
            if not viewer.has_role("admin"):
                msg.ClearField("secret_note")
            return msg

Every response path (get, list, create, idempotent replay, merge, batch, events
pushed to clients) goes through the resource's presenter, so a masking rule is
written once and cannot be forgotten on the path added last.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from google.protobuf.message import Message

from kit.auth import Principal

RowT_contra = TypeVar("RowT_contra", contravariant=True)
M_co = TypeVar("M_co", bound=Message, covariant=True)
RowT = TypeVar("RowT")
M = TypeVar("M", bound=Message)


class Presenter(Protocol[RowT_contra, M_co]):
    def present(self, viewer: Principal, item: RowT_contra) -> M_co:
        """The wire form of `item` as `viewer` may see it (raise NotFound if nothing may be seen)."""
        ...


def present_all(presenter: Presenter[RowT, M], viewer: Principal, items: Iterable[RowT]) -> list[M]:
    return [presenter.present(viewer, item) for item in items]


__all__ = ["Presenter", "present_all"]
