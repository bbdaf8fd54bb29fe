"""The portal's documents: its ServiceAccount, ConfigMap, Deployment, Service, PDB and
NetworkPolicy, a Service per worker's probe port for its status page, and its migration Job.

The portal is no bus participant (``services.catalogue.PORTAL``), so it has no Kafka user,
credentials or egress. It is labelled as every API role is (``fjo-portal-api``), which is the
label the workers' NetworkPolicies already admit to their probe port.
"""

from __future__ import annotations

import json
from typing import Any

from contracts.services import SERVICES
from deploy.manifests.network import (
    DNS_EGRESS,
    INGRESS_CONTROLLER_FROM,
    JWKS_EGRESS,
    MONITORING_FROM,
    OTLP_EGRESS,
    POSTGRES_EGRESS,
)
from deploy.manifests.roles import (
    ALL_INTERFACES,
    API_PORT,
    DATA_DIR,
    IMAGE,
    PROBE_PORT,
    SECRETS_DIR,
    meta,
    roles,
)
from deploy.manifests.workloads import (
    CONTAINER_SECURITY,
    POD_SECURITY,
    RESOURCES,
    migration_job,
    rolling_deployment_spec,
)
from services.catalogue import PORTAL, WORKER

__all__ = ["PORTAL_NAME", "portal_env_name", "portal_resources", "portal_secret_keys"]

PORTAL_NAME = f"fjo-{PORTAL}-api"
PORTAL_PLATFORM_ENV = {
    "FJO_ENVIRONMENT": "environment",
    "FJO_PORTAL_TELEMETRY__OTLP_ENDPOINT": "otlp-endpoint",
    "FJO_PORTAL_OIDC__ISSUER": "oidc-issuer",
}
"""What the portal takes from ``fjo-platform``: the environment, the OTLP endpoint and the
organisation's OIDC issuer (an overlay names it once)."""


def portal_env_name(*path: str) -> str:
    return "FJO_PORTAL_" + "__".join(p.upper() for p in path)


def portal_secret_keys() -> tuple[str, ...]:
    """The portal's secret files: its database URL. There is no session key to keep:
    sessions are server-side (a random id in the cookie, only its SHA-256 stored), and the
    portal is a public OIDC client (PKCE), so it holds no client secret either."""
    return (portal_env_name("database_url"),)


def _labels(role: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": f"fjo-{PORTAL}-{role}",
        "app.kubernetes.io/part-of": "fjo",
        "app.kubernetes.io/component": role,
        "fjo.dev/service": PORTAL,
    }


def _workers() -> list[tuple[str, str]]:
    """(worker role name, its probe Service) for every worker the status page reads."""
    return [
        (sr.name, f"{sr.name}-status") for s in SERVICES for sr in roles(s) if sr.role == WORKER
    ]


def _config() -> dict[str, str]:
    apis = {
        s.value: f"http://fjo-{s.value}-api"
        for s in SERVICES
        if any(sr.role == "api" for sr in roles(s))
    }
    data = {
        portal_env_name("apis", "access"): apis["access"],
        portal_env_name("apis", "link"): apis["link"],
        portal_env_name("apis", "ingest"): apis["ingest"],
        portal_env_name("migrate_on_start"): "false",  # the migration Job runs them
        portal_env_name("status_workers"): json.dumps(
            {name: f"http://{service}:{PROBE_PORT}" for name, service in _workers()},
            sort_keys=True,
        ),
        portal_env_name("telemetry", "log_json"): "true",
        portal_env_name("telemetry", "log_level"): "INFO",
    }
    return dict(sorted(data.items()))


def _env() -> list[dict[str, Any]]:
    return [
        {"name": name, "valueFrom": {"configMapKeyRef": {"name": "fjo-platform", "key": key}}}
        for name, key in PORTAL_PLATFORM_ENV.items()
    ]


def _pod(containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "serviceAccountName": PORTAL_NAME,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": POD_SECURITY,
        "containers": containers,
        "volumes": [
            {
                "name": "secrets",
                "projected": {
                    "defaultMode": 0o440,
                    "sources": [{"secret": {"name": f"fjo-{PORTAL}-secrets"}}],
                },
            },
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            {"name": "data", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
    }


MOUNTS = [
    {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True},
    {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, the root fs is read-only
    {"name": "data", "mountPath": DATA_DIR},
]


def _container() -> dict[str, Any]:
    probe = {"path": "/readyz", "port": "http"}
    return {
        "name": "fjo",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": ["serve", PORTAL, "api", "--host", ALL_INTERFACES, "--port", str(API_PORT)],
        "ports": [{"name": "http", "containerPort": API_PORT, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": PORTAL_NAME}}],
        "env": _env(),
        "readinessProbe": {
            "httpGet": probe,
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {**probe, "path": "/healthz"},
            "periodSeconds": 20,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "startupProbe": {
            "httpGet": {**probe, "path": "/healthz"},
            "periodSeconds": 5,
            "failureThreshold": 24,
        },
        "resources": RESOURCES["api"],
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": MOUNTS,
    }


def _api_egress() -> dict[str, Any]:
    """To the three APIs' pods (their container port; a Service's port 80 maps to it)."""
    return {
        "to": [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": f"fjo-{s.value}-api"}}}
            for s in SERVICES
            if any(sr.role == "api" for sr in roles(s))
        ],
        "ports": [{"protocol": "TCP", "port": API_PORT}],
    }


def _probe_egress() -> dict[str, Any]:
    return {
        "to": [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": name}}}
            for name, _ in _workers()
        ],
        "ports": [{"protocol": "TCP", "port": PROBE_PORT}],
    }


def _network_policy(name: str, role: str) -> dict[str, Any]:
    labels = _labels(role)
    # Its own database (sessions), DNS, telemetry; the API role also the APIs, the workers'
    # probes and the OIDC issuer (discovery, JWKS, token exchange over HTTPS).
    egress = [DNS_EGRESS, POSTGRES_EGRESS]
    ingress: list[dict[str, Any]] = []
    if role == "api":
        egress += [OTLP_EGRESS, _api_egress(), _probe_egress(), JWKS_EGRESS]
        ingress = [
            {
                # People through the ingress controller only; monitoring scrapes /metrics.
                "from": [INGRESS_CONTROLLER_FROM, MONITORING_FROM],
                "ports": [{"protocol": "TCP", "port": API_PORT}],
            }
        ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(name, labels),
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def _probe_services() -> list[dict[str, Any]]:
    """A ClusterIP Service per worker's probe port, for the status page: lag and durable
    dead letters are the consumer group's, the same whichever replica answers."""
    docs = []
    for name, service in _workers():
        svc = name.removeprefix("fjo-").removesuffix("-worker")
        labels = {
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/part-of": "fjo",
            "app.kubernetes.io/component": "worker",
            "fjo.dev/service": svc,
        }
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta(service, labels),
                "spec": {
                    "type": "ClusterIP",
                    "selector": {"app.kubernetes.io/name": name},
                    "ports": [
                        {
                            "name": "probe",
                            "port": PROBE_PORT,
                            "targetPort": "probe",
                            "protocol": "TCP",
                        }
                    ],
                },
            }
        )
    return docs


def portal_resources() -> list[dict[str, Any]]:
    """Every document of the portal, in apply order."""
    labels = _labels("api")
    selector = {"app.kubernetes.io/name": PORTAL_NAME}
    migrate_name = f"fjo-{PORTAL}-migrate"
    migrate_labels = _labels("migrate")
    migrate = {
        "name": "migrate",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": ["db", "upgrade", PORTAL],
        "env": _env(),
        "resources": RESOURCES["migrate"],
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": MOUNTS,
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(PORTAL_NAME, labels),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(PORTAL_NAME, labels),
            "data": _config(),
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(PORTAL_NAME, labels),
            "spec": {
                "replicas": 2,
                **rolling_deployment_spec(
                    selector,
                    labels,
                    API_PORT,
                    {**_pod([_container()]), "terminationGracePeriodSeconds": 30},
                ),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(PORTAL_NAME, labels),
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta(PORTAL_NAME, labels),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
        },
        _network_policy(PORTAL_NAME, "api"),
        *_probe_services(),
        migration_job(migrate_name, migrate_labels, {**_pod([migrate]), "restartPolicy": "Never"}),
        _network_policy(migrate_name, "migrate"),
    ]
