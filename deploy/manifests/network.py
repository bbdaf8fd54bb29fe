"""The NetworkPolicy allow-list of each role; everything else is denied by
``default-deny-all``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contracts.services import Service
from deploy.manifests.roles import KAFKA_CLUSTER, PUBLIC_APIS, meta, role_selector

__all__ = [
    "DNS_EGRESS",
    "INGRESS_CONTROLLER_FROM",
    "JWKS_EGRESS",
    "MONITORING_FROM",
    "OTLP_EGRESS",
    "PORTAL_FROM",
    "POSTGRES_EGRESS",
    "network_policy",
]

DNS_EGRESS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}
KAFKA_EGRESS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kafka"}},
            "podSelector": {"matchLabels": {"strimzi.io/cluster": KAFKA_CLUSTER}},
        }
    ],
    "ports": [{"protocol": "TCP", "port": 9093}],
}
POSTGRES_EGRESS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "postgres"}},
        }
    ],
    "ports": [{"protocol": "TCP", "port": 5432}],
}
OTLP_EGRESS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
        }
    ],
    "ports": [{"protocol": "TCP", "port": 4318}],
}
# The APIs fetch their OIDC issuer's JWKS over HTTPS; nothing else leaves the cluster.
JWKS_EGRESS = {
    "to": [
        {
            "ipBlock": {
                "cidr": "0.0.0.0/0",
                "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"],
            }
        }
    ],
    "ports": [{"protocol": "TCP", "port": 443}],
}
MONITORING_FROM = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
}
PORTAL_FROM = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "fjo-portal-api"}}}
"""The portal's pods (labelled as every role is, deploy/manifests/portal.py): its pages call
the APIs with the person's token, and its status page reads each worker's ``/status`` on the
probe port, the only thing besides monitoring that may reach it."""
INGRESS_CONTROLLER_FROM = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
}


def network_policy(
    name: str,
    service: Service,
    role: str,
    labels: Mapping[str, str],
    port_name: str | None,
    port: int | None,
    *,
    extra_egress: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The allow-list of one role; everything else is denied by ``default-deny-all``."""
    egress: list[Mapping[str, Any]] = [DNS_EGRESS, POSTGRES_EGRESS]
    if role not in ("migrate", "retention"):  # jobs that only read and write the database
        egress += [KAFKA_EGRESS, OTLP_EGRESS]
    if role == "api":
        egress.append(JWKS_EGRESS)
    egress += extra_egress
    ingress: list[dict[str, Any]] = []
    if port_name is not None and port is not None:
        sources = [MONITORING_FROM]
        if role == "worker":
            sources = [MONITORING_FROM, PORTAL_FROM]
        if role == "api":
            public = [INGRESS_CONTROLLER_FROM] if service in PUBLIC_APIS else []
            sources = [*public, MONITORING_FROM, PORTAL_FROM]
        ingress.append({"from": sources, "ports": [{"protocol": "TCP", "port": port}]})
    spec: dict[str, Any] = {
        "podSelector": {"matchLabels": role_selector(service, role)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": ingress,
        "egress": egress,
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(name, labels),
        "spec": spec,
    }
