"""Which process kinds each service runs, what they are called and labelled, and the
cluster's constants every document shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, SecretStr

from contracts.services import Service
from contracts.topics import topics_consumed_by
from services import catalogue
from services.runtime.settings import ENVIRONMENT_VARIABLE

__all__ = [
    "API_PORT",
    "KAFKA_CLUSTER",
    "PROBE_PORT",
    "SECRETS_DIR",
    "ServiceRole",
    "consumer_group",
    "env_name",
    "roles",
    "secret_keys",
]

KAFKA_CLUSTER = "fjo"
"""Name of the Strimzi ``Kafka`` resource; topics and users carry ``strimzi.io/cluster``."""
KAFKA_BOOTSTRAP = "fjo-kafka-bootstrap.kafka.svc:9093"
"""Strimzi's bootstrap Service for the TLS + SCRAM-SHA-512 listener (namespace ``kafka``)."""
KAFKA_CA_SECRET = "fjo-kafka-cluster-ca"  # noqa: S105 - a Secret's name, not a secret
"""Copy of the cluster CA certificate (``ca.crt``) in the fjo namespace (see operators.md)."""
KAFKA_SECURITY_PROTOCOL = "SASL_SSL"
KAFKA_SASL_MECHANISM = "SCRAM-SHA-512"
"""The listener's authentication: the KafkaUsers' ``scram-sha-512``, KEDA's ``scram_sha512``."""
KAFKA_CA_FILE = "kafka-ca.crt"
"""Where the cluster CA certificate lands in the secrets folder."""
API_PORT = 8000
# In a pod or container a server must listen on its own address; NetworkPolicy limits who
# reaches it.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
PROBE_PORT = 9000
SECRETS_DIR = "/run/secrets/fjo"
DATA_DIR = "/var/lib/fjo"
IMAGE = "fjo"
LAG_THRESHOLD = 100
"""Messages of lag per worker replica before KEDA adds one."""
PUBLIC_APIS = frozenset({Service.INGEST, Service.ACCESS})
"""APIs reached from outside the namespace (partners, researchers) through the ingress."""


@dataclass(frozen=True)
class ServiceRole:
    """One process kind: ``fjo serve <service> <role>``."""

    service: Service
    role: str  # "api" | "worker"

    @property
    def name(self) -> str:
        return f"fjo-{self.service.value}-{self.role}"


def roles(service: Service) -> tuple[ServiceRole, ...]:
    """The roles ``service`` runs as: the catalogue's (``services.catalogue``). A worker must
    consume a registry topic, or it has no input."""
    found = catalogue.entry(service).roles
    if catalogue.WORKER in found and not topics_consumed_by(service):
        raise ValueError(f"{service.value} has a worker but consumes no registry topic")
    return tuple(ServiceRole(service, role) for role in found)


def env_name(service: Service, *path: str) -> str:
    """``env_name(ingest, "bus", "backend")`` -> ``FJO_INGEST_BUS__BACKEND``; the
    environment is the platform's one ``FJO_ENVIRONMENT`` for every service."""
    if path == ("environment",):
        return ENVIRONMENT_VARIABLE
    return f"FJO_{service.value.upper()}_" + "__".join(p.upper() for p in path)


def settings_fields(service: Service) -> Mapping[str, Any]:
    return catalogue.entry(service).settings.model_fields


def nested_fields(service: Service, name: str) -> Mapping[str, Any]:
    field = settings_fields(service).get(name)
    model = field.annotation if field is not None else None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_fields
    return {}


def consumer_group(service: Service) -> str:
    """The worker's consumer group: its ``worker_group`` setting's default, else its name."""
    field = settings_fields(service).get("worker_group")
    if field is not None and isinstance(field.default, str):
        return field.default
    return service.value


def secret_keys(service: Service) -> tuple[str, ...]:
    """Secret files of a service: its database URL and every top-level ``SecretStr`` setting.

    Files are named like the environment variables, which is how pydantic-settings'
    ``secrets_dir`` finds them.
    """
    keys = [env_name(service, "database_url")]
    for name, field in settings_fields(service).items():
        if field.annotation is SecretStr:
            keys.append(env_name(service, name))
    return tuple(sorted(set(keys)))


KEY_FILES = {
    "master_key_files": "master-v1.key",
    "vault_kek_files": "vault-kek-k1.key",
    "alf_key_file": "alf.key",
    "audit_signing_key_file": "audit-signing.key",
}
"""Settings that name key files the service reads itself: the file each expects in its
secret (created by the operator's key ceremony, never generated; docs/operators.md)."""


def role_labels(sr: ServiceRole | None, service: Service, role: str) -> dict[str, str]:
    del sr
    return {
        "app.kubernetes.io/name": f"fjo-{service.value}-{role}",
        "app.kubernetes.io/part-of": "fjo",
        "app.kubernetes.io/component": role,
        "fjo.dev/service": service.value,
    }


def role_selector(service: Service, role: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": f"fjo-{service.value}-{role}"}


def meta(name: str, labels: Mapping[str, str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "labels": dict(labels), **extra}
