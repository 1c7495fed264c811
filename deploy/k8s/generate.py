"""Write deploy/k8s/base/services/<svc>.yaml and base/gateway.yaml: objects alike but for name and port.

    python -m deploy.k8s.generate          # rewrite the files
    python -m deploy.k8s.generate --check  # exit 1 if a file differs (tests/deploy runs this)

Per service (kit.config.SERVICE_PORTS): the API and worker Deployments (``--role api|worker``),
a Service and a headless Service (client-side round_robin over its DNS answers), an HPA on
CPU for the API, a PodDisruptionBudget per Deployment and the migration Job; the gateway's Deployment,
Service, HPA and PDB. What they share (ConfigMap, ServiceAccount, NetworkPolicies) is written by hand
beside them; overlays change replicas, images and addresses.

Termination grace: the runtime's drain (kit/runtime.py) is, in order, readiness turned
NOT_SERVING, the gRPC server's grace for calls in flight (SALESOPS_GRPC_GRACE_SECONDS, 10 s),
the Temporal worker's graceful shutdown (10 s) and each loop's STOP_GRACE_SECONDS (30 s) to
finish its current item; plus the preStop pause that lets endpoints and DNS forget the pod.
tests/deploy/test_k8s_policy.py checks the grace against those figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # pyyaml, a dev dependency (kubernetes-validate)

from kit.config import SERVICE_PORTS
from kit.grpc.health import LIVENESS

BASE = Path(__file__).resolve().parent / "base"
IMAGE = "salesops"  # overlays pin name and tag (kustomize `images:`)
METRICS_PORT = 9464  # SALESOPS_METRICS_PORT in containers
GATEWAY_PORT = 8080
SERVICE_ACCOUNT = "salesops"
CONFIG_MAP = "salesops-config"
SECRET = "salesops-secrets"
PRE_STOP_SECONDS = 5
GRACE_SECONDS = {"api": 75, "worker": 75, "gateway": 30}
# Notify sends over channels, integration calls connectors: the only pods allowed out.
INTERNET_EGRESS = {"notify", "integration"}
RESOURCES: dict[str, dict[str, dict[str, str]]] = {
    "api": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
    "worker": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "768Mi"}},
    "migrate": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
}
# What the migration Jobs need carries this label, so they can run before anything else:
# kubectl apply -k <overlay> -l salesops.io/migrate=true (README: applying).
MIGRATE_PHASE = {"salesops.io/migrate": "true"}
HEADER = "# Written by `python -m deploy.k8s.generate` (ports from kit.config): edit that, not this file.\n"


def labels(service: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": service,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "salesops",
    }


def selector(service: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": service, "app.kubernetes.io/component": component}


def pod_labels(service: str, component: str) -> dict[str, str]:
    extra = (
        {"salesops.io/egress": "internet"} if service in INTERNET_EGRESS and component != "migrate" else {}
    )
    return {**labels(service, component), **extra}


def container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def spread(service: str, component: str) -> list[dict[str, Any]]:
    """Replicas on different nodes (a lost machine takes one), and across zones when there are any."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": selector(service, component)},
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key, when in (
            ("kubernetes.io/hostname", "DoNotSchedule"),
            ("topology.kubernetes.io/zone", "ScheduleAnyway"),
        )
    ]


def secret_env(name: str, key: str, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": SECRET, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def service_env(service: str, component: str) -> list[dict[str, Any]]:
    """Secrets by reference only; a pod gets its own service's database URL and nothing else's."""
    database = f"SALESOPS_{service.upper()}_DATABASE_URL"
    env = [secret_env(database, database)]
    if component == "migrate":
        return env
    return [
        *env,
        secret_env("SALESOPS_REDIS_URL", "SALESOPS_REDIS_URL"),
        secret_env("SALESOPS_JWT_SECRET", "SALESOPS_JWT_SECRET"),
        secret_env("SALESOPS_SECRETS_KEY", "SALESOPS_SECRETS_KEY"),
        secret_env("SALESOPS_PAGE_TOKEN_SECRET", "SALESOPS_PAGE_TOKEN_SECRET", optional=True),
    ]


def pod_spec(service: str, component: str) -> dict[str, Any]:
    port = SERVICE_PORTS[service]
    if component == "migrate":
        command = ["python", "-m", "kit.migrations", service, "upgrade"]
        args: list[str] = []
    else:
        command = ["python", "-m", f"services.{service}"]
        args = ["--role", component]
    container: dict[str, Any] = {
        "name": service,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
    }
    if args:
        container["args"] = args
    if component != "migrate":
        ports = [{"name": "grpc", "containerPort": port, "protocol": "TCP"}] if component == "api" else []
        container["ports"] = [*ports, {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}]
    container["envFrom"] = [{"configMapRef": {"name": CONFIG_MAP}}]
    container["env"] = service_env(service, component)
    container["resources"] = RESOURCES[component]
    if component == "api":
        # grpc.health.v1 of the runtime. Readiness (service ""): SERVING once database, Redis and
        # Temporal answer. Startup and liveness (service LIVENESS): the process answers and is not
        # wedged, whatever its dependencies do (restarting a pod cures no database outage).
        grpc = {"port": port}
        live = {"port": port, "service": LIVENESS}
        container["startupProbe"] = {"grpc": live, "periodSeconds": 5, "failureThreshold": 60}
        container["readinessProbe"] = {
            "grpc": grpc,
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 2,
        }
        container["livenessProbe"] = {
            "grpc": live,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 12,
        }
    elif component == "worker":
        # A worker serves no gRPC: its metrics listener shows the process is up.
        http = {"path": "/metrics", "port": "metrics"}
        container["readinessProbe"] = {"httpGet": http, "periodSeconds": 10, "timeoutSeconds": 5}
        container["livenessProbe"] = {
            "httpGet": http,
            "periodSeconds": 20,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        }
    if component != "migrate":
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}}
    container["securityContext"] = container_security()
    container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    spec: dict[str, Any] = {
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security(),
    }
    if component == "migrate":
        spec["restartPolicy"] = "Never"
    else:
        spec["terminationGracePeriodSeconds"] = GRACE_SECONDS[component]
        spec["topologySpreadConstraints"] = spread(service, component)
    spec["containers"] = [container]
    spec["volumes"] = [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]
    return spec


def deployment(
    name: str, service: str, component: str, spec: dict[str, Any], *, autoscaled: bool
) -> dict[str, Any]:
    # An autoscaled Deployment has no `replicas`: each `kubectl apply` would reset it,
    # shrinking what the HPA grew until the HPA grows it again.
    replicas = {} if autoscaled else {"replicas": 1}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels(service, component)},
        "spec": {
            **replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector(service, component)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": pod_labels(service, component),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": spec,
            },
        },
    }


def services(service: str) -> list[dict[str, Any]]:
    port = {
        "name": "grpc",
        "port": SERVICE_PORTS[service],
        "targetPort": "grpc",
        "protocol": "TCP",
        "appProtocol": "grpc",
    }
    plain = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service, "labels": labels(service, "api")},
        "spec": {"type": "ClusterIP", "selector": selector(service, "api"), "ports": [port]},
    }
    # DNS answers every ready pod's address: clients balance calls with round_robin
    # (SALESOPS_<SVC>_ADDR=dns:///<svc>-headless...) instead of one long-lived connection.
    headless = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{service}-headless", "labels": labels(service, "api")},
        "spec": {"clusterIP": "None", "selector": selector(service, "api"), "ports": [port]},
    }
    return [plain, headless]


def autoscaler(name: str, service: str, component: str) -> dict[str, Any]:
    """CPU for request-serving pods. Workers scale on their task-queue backlog instead (README)."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": labels(service, component)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": 6,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def disruption_budget(name: str, service: str, component: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "labels": labels(service, component)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(service, component)}},
    }


def migration_job(service: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"{service}-migrate", "labels": {**labels(service, "migrate"), **MIGRATE_PHASE}},
        "spec": {
            "backoffLimit": 4,
            "activeDeadlineSeconds": 900,
            "template": {
                "metadata": {"labels": pod_labels(service, "migrate")},
                "spec": pod_spec(service, "migrate"),
            },
        },
    }


def gateway() -> list[dict[str, Any]]:
    """The REST gateway: stateless but for Redis (rate limits, idempotency keys)."""
    name = "gateway"
    http = {"path": "/healthz", "port": "http"}
    container: dict[str, Any] = {
        "name": name,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "gateway"],
        "ports": [
            {"name": "http", "containerPort": GATEWAY_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "envFrom": [{"configMapRef": {"name": CONFIG_MAP}}],
        "env": [
            secret_env("SALESOPS_REDIS_URL", "SALESOPS_REDIS_URL"),
            secret_env("SALESOPS_JWT_SECRET", "SALESOPS_JWT_SECRET"),
        ],
        "resources": RESOURCES["api"],
        # /healthz, not /readyz: /readyz is false while any one service is down, and
        # taking every gateway out of rotation for that would turn a partial outage total.
        "readinessProbe": {"httpGet": http, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 2},
        "livenessProbe": {"httpGet": http, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 6},
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    spec: dict[str, Any] = {
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security(),
        "terminationGracePeriodSeconds": GRACE_SECONDS["gateway"],
        "topologySpreadConstraints": spread(name, name),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels(name, name)},
        "spec": {
            "type": "ClusterIP",
            "selector": selector(name, name),
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}
            ],
        },
    }
    return [
        deployment(name, name, name, spec, autoscaled=True),
        service,
        autoscaler(name, name, name),
        disruption_budget(name, name, name),
    ]


def objects(service: str) -> list[dict[str, Any]]:
    api, worker = f"{service}-api", f"{service}-worker"
    return [
        deployment(api, service, "api", pod_spec(service, "api"), autoscaled=True),
        deployment(worker, service, "worker", pod_spec(service, "worker"), autoscaled=False),
        *services(service),
        autoscaler(api, service, "api"),
        disruption_budget(api, service, "api"),
        disruption_budget(worker, service, "worker"),
        migration_job(service),
    ]


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # untyped base
    def ignore_aliases(self, data: Any) -> bool:
        return True  # shared dicts (probes, resources) written out in full, no &anchors


def scaled_object(service: str) -> dict[str, Any]:
    """KEDA's Temporal scaler: the worker Deployment follows its task queue's backlog."""
    name = f"{service}-worker"
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "labels": labels(service, "worker")},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicaCount": 2,
            "maxReplicaCount": 10,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "triggers": [
                {
                    "type": "temporal",
                    "metadata": {
                        # KEDA reads the address from the worker's own environment (the ConfigMap).
                        "endpointFromEnv": "SALESOPS_TEMPORAL_ADDRESS",
                        "namespace": "default",
                        "taskQueue": f"salesops-{service}",
                        "targetQueueSize": "20",
                        "activationTargetQueueSize": "0",
                    },
                }
            ],
        },
    }


def render(objs: list[dict[str, Any]]) -> str:
    docs = [
        yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120) for obj in objs
    ]
    return HEADER + "---\n".join(docs)


def files() -> dict[Path, str]:
    written = {BASE / "services" / f"{service}.yaml": render(objects(service)) for service in SERVICE_PORTS}
    written[BASE / "gateway.yaml"] = render(gateway())
    keda = BASE.parent / "components" / "keda-workers" / "scaled-objects.yaml"
    written[keda] = render([scaled_object(service) for service in SERVICE_PORTS])
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="report files that differ; write nothing")
    args = parser.parse_args(argv)
    stale = [path for path, text in files().items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path} is not what deploy/k8s/generate.py writes", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files()[path])
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
