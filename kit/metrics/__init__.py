"""Prometheus metrics of every salesops process: every name and label is defined here, once.

Every process (each service's ``--role api`` and ``--role worker``, the gateway)
serves the default registry over HTTP at ``/metrics`` on ``SALESOPS_METRICS_PORT``
(9464 in containers; unset = off in the embedded stack). A port already taken is
logged and the process goes on without metrics (see :mod:`kit.metrics.endpoint`).

Labels are bounded by construction: gRPC service and method names from the
contracts, gateway route *templates* (``/v1/leads/{lead_id}``), status codes, stream
and consumer-group names, enum values. Never an id, a tenant or a user.

gRPC server (every API process, :class:`kit.grpc.interceptors.ServerPipeline`), the
names of go-grpc-prometheus so stock dashboards work:

- ``grpc_server_started_total{grpc_service,grpc_method,grpc_type}``
- ``grpc_server_handled_total{grpc_service,grpc_method,grpc_type,grpc_code}``
- ``grpc_server_handling_seconds{grpc_service,grpc_method,grpc_type}`` (histogram; unary calls only,
  a stream's lifetime is not a latency)

Gateway (:mod:`gateway.metrics`):

- ``salesops_gateway_requests_total{method,route,code}``: ``route`` is the template, or
  ``unmatched`` for paths no route knows; ``code`` the HTTP status
- ``salesops_gateway_request_duration_seconds{method,route}`` (histogram)
- ``salesops_gateway_requests_in_flight``

Events (API processes; read every ``SALESOPS_METRICS_EVENTS_INTERVAL_SECONDS``, 15 s):

- ``salesops_outbox_backlog{stream}``: committed events the relay has not published yet
- ``salesops_stream_consumer_lag{stream,group}``: entries of the stream the group has not read yet
- ``salesops_stream_consumer_pending{stream,group}``: entries read but not acknowledged
- ``salesops_dead_letters{group}``: entries in the group's dead-letter stream ``salesops:dlq:<group>``
- ``salesops_metrics_refresh_errors_total{source}``: a gauge read that failed (the gauge keeps its last value)

SLA timers (leads worker, when a watch timer is applied):

- ``salesops_sla_reminders_total``
- ``salesops_sla_breaches_total{action}``: ``action`` = the breach action (``REASSIGN_NEXT_REP``, ...)

Temporal SDK (worker processes): the SDK's own metrics, bridged from a temporalio
``MetricBuffer`` into the same endpoint (one port per process, see :mod:`kit.metrics.temporal`),
with the SDK's names, the ``temporal_`` prefix and durations in seconds (no unit suffix), labelled
by namespace, task_queue, workflow_type / activity_type, worker_type. Seen on a leads worker:
``temporal_workflow_task_schedule_to_start_latency`` and ``temporal_activity_schedule_to_start_latency``
(histograms: task-queue backlog), ``temporal_workflow_task_execution_latency``,
``temporal_workflow_completed_total`` / ``temporal_workflow_failed_total``,
``temporal_activity_execution_failed_total``, ``temporal_worker_task_slots_available`` /
``_used``, ``temporal_num_pollers``, ``temporal_sticky_cache_size``, ``temporal_request_total``
(client calls to the server) and ``temporal_request_failure_total``.

Process: ``process_cpu_seconds_total``, ``process_resident_memory_bytes`` ... from
prometheus-client's default collectors (the capacity benchmark reads CPU the same way).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Latency buckets (seconds): our RPCs are milliseconds; the tail up to the 10 s default deadline.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GRPC_LABELS = ("grpc_service", "grpc_method", "grpc_type")

RPC_STARTED = Counter("grpc_server_started", "RPCs started on the server.", GRPC_LABELS)
RPC_HANDLED = Counter(
    "grpc_server_handled", "RPCs completed on the server, by status code.", (*GRPC_LABELS, "grpc_code")
)
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time the server took to answer a unary RPC.",
    GRPC_LABELS,
    buckets=LATENCY_BUCKETS,
)

GATEWAY_REQUESTS = Counter(
    "salesops_gateway_requests",
    "HTTP requests answered by the gateway, by route template and status code.",
    ("method", "route", "code"),
)
GATEWAY_SECONDS = Histogram(
    "salesops_gateway_request_duration_seconds",
    "Time the gateway took to answer, by route template.",
    ("method", "route"),
    buckets=LATENCY_BUCKETS,
)
GATEWAY_IN_FLIGHT = Gauge("salesops_gateway_requests_in_flight", "HTTP requests being answered now.")

OUTBOX_BACKLOG = Gauge(
    "salesops_outbox_backlog", "Committed events not yet published by the outbox relay.", ("stream",)
)
CONSUMER_LAG = Gauge(
    "salesops_stream_consumer_lag", "Stream entries the consumer group has not read yet.", ("stream", "group")
)
CONSUMER_PENDING = Gauge(
    "salesops_stream_consumer_pending",
    "Stream entries the consumer group read but has not acknowledged.",
    ("stream", "group"),
)
DEAD_LETTERS = Gauge(
    "salesops_dead_letters", "Entries in the consumer group's dead-letter stream.", ("group",)
)
REFRESH_ERRORS = Counter("salesops_metrics_refresh_errors", "Periodic gauge reads that failed.", ("source",))

SLA_REMINDERS = Counter("salesops_sla_reminders", "SLA reminders sent to lead owners.")
SLA_BREACHES = Counter("salesops_sla_breaches", "SLA breaches applied, by breach action.", ("action",))

__all__ = [
    "CONSUMER_LAG",
    "CONSUMER_PENDING",
    "DEAD_LETTERS",
    "GATEWAY_IN_FLIGHT",
    "GATEWAY_REQUESTS",
    "GATEWAY_SECONDS",
    "GRPC_LABELS",
    "LATENCY_BUCKETS",
    "OUTBOX_BACKLOG",
    "REFRESH_ERRORS",
    "RPC_HANDLED",
    "RPC_SECONDS",
    "RPC_STARTED",
    "SLA_BREACHES",
    "SLA_REMINDERS",
]
