"""Offline sync: a field rep's queued writes, applied in order, answered per item.

POST /v1/sync:batch {"items": [{"clientId", "idempotencyKey", "method", "path", "body"}]}
Each item goes through the same pipeline as a direct request with its own
idempotency key, so replaying a batch (the phone never saw the answer) applies
nothing twice: already-applied items answer with their stored response.

Rate limits: the batch request counts once and every item once more, right before it
is applied. Items beyond the caller's quota are not applied: each answers 429 with a
RESOURCE_EXHAUSTED Status (RetryInfo), the batch answers 200 with `Retry-After`, and
the client sends just those items again later (their idempotency keys were not used).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from gateway import errors as gw_errors
from gateway.bounds import RequestBounds, parse_json, query_problem
from gateway.outcomes import BodyRefused, Outcome, respond, throttled
from gateway.proxy import Gateway
from kit import errors

BATCH_PATH = "/v1/sync:batch"
ITEM_METHODS = ("POST", "PATCH", "PUT", "DELETE")


def _invalid(field: str, description: str) -> Outcome:
    status, data = gw_errors.from_error(errors.InvalidArgument.field(field, description))
    return Outcome(status, data)


def parse_items(
    raw: bytes, max_items: int, bounds: RequestBounds | None = None
) -> list[dict[str, Any]] | Outcome:
    bounds = bounds or RequestBounds()
    try:
        payload = parse_json(raw or b"null", bounds.max_json_depth)
    except errors.InvalidArgument as exc:
        status, data = gw_errors.from_error(exc)
        return Outcome(status, data)
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        return _invalid("items", "the body must be an object with an `items` list")
    items: list[dict[str, Any]] = payload["items"]
    if not items or len(items) > max_items:
        return _invalid("items", f"between 1 and {max_items} items")
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"items[{i}]"
        if not isinstance(item, dict):
            return _invalid(where, "must be an object")
        for name in ("clientId", "idempotencyKey", "path"):
            if not isinstance(item.get(name), str) or not item[name]:
                return _invalid(f"{where}.{name}", "required string")
        if item.get("method") not in ITEM_METHODS:
            return _invalid(f"{where}.method", f"one of {', '.join(ITEM_METHODS)}")
        if not item["path"].startswith("/") or item["path"].startswith(BATCH_PATH):
            return _invalid(f"{where}.path", "an API path such as /v1/leads")
        problem = query_problem(urlsplit(item["path"]).query, bounds)
        if problem is not None:
            return _invalid(f"{where}.path", problem[1])
        if item["clientId"] in seen:
            return _invalid(f"{where}.clientId", "client ids must be unique in a batch")
        seen.add(item["clientId"])
    return items


async def handle_batch(gateway: Gateway, request: Request, max_items: int) -> Response:
    guarded = await gateway.guard(request)
    if isinstance(guarded, Outcome):
        return respond(guarded)
    caller, headers = guarded
    try:
        raw = await gateway.read_body(request)
    except BodyRefused as too_much:
        return respond(too_much.outcome(headers))
    items = parse_items(raw, max_items, gateway.bounds)
    if isinstance(items, Outcome):
        items.headers.update(headers)
        return respond(items)
    stop_on_failure = request.query_params.get("stopOnFailure", "").lower() in {"1", "true"}
    results: list[dict[str, Any]] = []
    failed = False
    for item in items:
        if failed and stop_on_failure:
            results.append({"clientId": item["clientId"], "status": 424, "replayed": False, "body": None})
            continue
        if gateway.limiter is not None:  # every item is a request against the caller's quota
            decision = await gateway.limiter.check(caller.principal.tenant, caller.principal.user_id)
            headers.update(decision.headers)
            if not decision.allowed:
                failed = True
                refused = throttled(decision)
                results.append(_result(item, refused))
                continue
        split = urlsplit(item["path"])
        body = b"" if item.get("body") is None else json.dumps(item["body"]).encode()
        outcome = await gateway.dispatch(
            item["method"],
            split.path,
            parse_qsl(split.query, keep_blank_values=True),
            split.query,
            body,
            caller,
            f"{request.state.request_id}/{item['clientId']}",
            item["idempotencyKey"],
        )
        failed = failed or outcome.status >= 400
        results.append(_result(item, outcome))
    payload = json.dumps({"results": results}, separators=(",", ":")).encode()
    return Response(payload, 200, headers, media_type="application/json")


def _result(item: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    return {
        "clientId": item["clientId"],
        "status": outcome.status,
        "replayed": outcome.replayed,
        "body": json.loads(outcome.body) if outcome.body else None,
    }
