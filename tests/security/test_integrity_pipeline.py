"""Integrity in pipeline: settings values that would break every later use are refused when saved."""

from __future__ import annotations

import math

import grpc
import pytest

from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import settings_pb2
from tests.pipeline.conftest import Pipeline, pipeline
from tests.pipeline.helpers import bad_fields, mask, refused

__all__ = ["pipeline"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("converted_deal_close_offset_days", 2**31 - 1),  # every conversion would overflow the calendar
        ("default_payment_term_days", 2**31 - 1),
        ("coaching_lookback_months", 2**31 - 1),
        ("anomaly_sigma", math.nan),  # NaN passed "<= 0"
        ("bias_threshold_ratio", math.inf),
    ],
)
async def test_settings_out_of_range_are_refused(pipeline: Pipeline, field: str, value: float) -> None:
    incoming = settings_pb2.PipelineSettings()
    setattr(incoming, field, value)
    status = await refused(
        pipeline.call(
            "UpdatePipelineSettings",
            pb.UpdatePipelineSettingsRequest(settings=incoming, update_mask=mask(field)),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert bad_fields(status) == [f"settings.{field}"]
