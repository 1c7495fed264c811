"""The watch's activity payloads decode without compiling string annotations on every call."""

from __future__ import annotations

import dataclasses

from services.leads import workflows


def test_watch_dataclasses_carry_real_annotations() -> None:
    # The SDK decodes each activity input and result with typing.get_type_hints: string annotations
    # (`from __future__ import annotations` in workflows.py) are compiled anew on every decode.
    for cls in (workflows.WatchInput, workflows.FireInput, workflows.Timer):
        for field in dataclasses.fields(cls):
            assert not isinstance(field.type, str), (cls.__name__, field.name)
