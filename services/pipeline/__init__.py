"""The pipeline service: deals, stage models with gate reviews, weighted forecasts and their accuracy, targets, stale-deal freezing and multi-step approvals."""
