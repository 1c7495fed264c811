"""The leads service: intake, dedupe, grading, the public pool, routing, follow-ups and first-response SLAs."""
