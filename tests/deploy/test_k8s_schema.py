"""Every rendered object against the Kubernetes 1.30 schemas; the monitoring CRDs structurally.

kubernetes-validate ships the schemas in the package (no network). Strict schemas refuse
fields Kubernetes does not know, so a misspelled or misplaced field fails here rather
than being silently dropped by the API server. PrometheusRule and PodMonitor are custom
resources of the Prometheus Operator, in no core schema: they are checked against the
parts of the operator's CRDs we use, and every metric an alert reads must be one that
kit.metrics defines.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from prometheus_client import REGISTRY

import kit.metrics  # noqa: F401  # registers every salesops metric in the default registry
from tests.deploy.conftest import Obj, Rendered, pod_labels

K8S_VERSION = "1.30.0"
CRD_GROUP = "monitoring.coreos.com/v1"

DURATION = r"^(0|([0-9]+(ms|s|m|h|d|w|y))+)$"  # the operator's Duration pattern
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": LABELS,
    },
}
RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expr"],
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "properties": {
        "alert": {"type": "string", "minLength": 1},
        "record": {"type": "string", "minLength": 1},
        "expr": {"type": "string", "minLength": 1},
        "for": {"type": "string", "pattern": DURATION},
        "keep_firing_for": {"type": "string", "pattern": DURATION},
        "labels": LABELS,
        "annotations": LABELS,
    },
}
PROMETHEUS_RULE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": CRD_GROUP},
        "kind": {"const": "PrometheusRule"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": {"type": "string", "pattern": DURATION},
                            "rules": {"type": "array", "minItems": 1, "items": RULE},
                        },
                    },
                }
            },
        },
    },
}
POD_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": CRD_GROUP},
        "kind": {"const": "PodMonitor"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": LABELS, "matchExpressions": {"type": "array"}},
                },
                "namespaceSelector": {"type": "object"},
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": DURATION},
                        },
                    },
                },
            },
        },
    },
}
CRD_SCHEMAS = {"PrometheusRule": PROMETHEUS_RULE, "PodMonitor": POD_MONITOR}


def validate(obj: Obj) -> None:
    if obj["apiVersion"] == CRD_GROUP:
        jsonschema.validate(obj, CRD_SCHEMAS[obj["kind"]])
    else:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_every_object_validates_against_the_1_30_schemas(overlay: Rendered) -> None:
    failures = []
    for obj in overlay.objects:
        try:
            validate(obj)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            failures.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
    assert not failures, "\n".join(failures)


def test_the_schema_check_refuses_a_misplaced_field(production: Rendered) -> None:
    """The check can fail: a probe field one level too high is refused, not ignored."""
    broken = copy.deepcopy(production.get("Deployment", "leads-api"))
    broken["spec"]["template"]["spec"]["containers"][0]["periodSeconds"] = 5
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    rule = copy.deepcopy(production.of_kind("PrometheusRule")[0])
    rule["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
    with pytest.raises(jsonschema.ValidationError):
        validate(rule)


def test_monitoring_resources_come_with_production_only(production: Rendered, dev: Rendered) -> None:
    """Dev clusters (kind, minikube) rarely run the operator: its CRDs would refuse to apply."""
    assert {o["kind"] for o in production.objects} >= {"PrometheusRule", "PodMonitor"}
    assert not {o["kind"] for o in dev.objects} & {"PrometheusRule", "PodMonitor"}


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _known_series() -> set[str]:
    """Series names of every metric in the default registry (kit.metrics registers there)."""
    return {family.name + suffix for family in REGISTRY.collect() for suffix in SUFFIXES.get(family.type, ())}


def _series(expr: str) -> set[str]:
    # Identifiers followed by a selector or range, or standing alone: metric names are the
    # ones that are not PromQL functions, aggregations, keywords or label names.
    words = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b\s*(?=[{\[)\s]|$)", expr))
    return {w for w in words if w.startswith(("salesops_", "grpc_server_"))}


def _alerts(production: Rendered) -> dict[str, dict[str, Any]]:
    (rule,) = production.of_kind("PrometheusRule")
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}


def test_alerts_read_metrics_that_kit_metrics_defines(production: Rendered) -> None:
    known = _known_series()
    assert {"salesops_outbox_backlog", "grpc_server_handled_total", "salesops_sla_breaches_total"} <= known
    used: set[str] = set()
    for name, alert in _alerts(production).items():
        expr = alert["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), name
        series = _series(expr)
        assert series or "temporal_" in expr, f"{name} reads no metric"
        assert series <= known, f"{name} reads {series - known}, which kit.metrics does not define"
        used |= series
        assert alert["labels"]["severity"] in {"warning", "critical"}
        assert alert["annotations"]["summary"]
    # What issue 16 asks to alert on: event lag, breach rate, error rate, dead letters growing.
    assert {
        "salesops_stream_consumer_lag",
        "salesops_sla_breaches_total",
        "grpc_server_handled_total",
        "salesops_dead_letters",
    } <= used


def test_pod_monitor_scrapes_a_port_every_selected_pod_has(production: Rendered) -> None:
    (monitor,) = production.of_kind("PodMonitor")
    wanted = monitor["spec"]["selector"]["matchLabels"]
    ports = {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]}
    selected = [w for w in production.of_kind("Deployment") if wanted.items() <= pod_labels(w).items()]
    assert len(selected) == 11  # five APIs, five workers, the gateway
    for workload in selected:
        names = {
            p["name"] for c in workload["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])
        }
        assert ports <= names, workload["metadata"]["name"]
