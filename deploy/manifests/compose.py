"""docker compose for people with Docker: Apache Kafka (KRaft), PostgreSQL, topics,
migrations and every role, hardened like the pods."""

from __future__ import annotations

from typing import Any

from contracts.services import SERVICES, Service
from deploy.manifests.kafka import kafka_security_env
from deploy.manifests.roles import (
    ALL_INTERFACES,
    API_PORT,
    DATA_DIR,
    PROBE_PORT,
    ServiceRole,
    env_name,
    roles,
)
from deploy.manifests.workloads import config_data

__all__ = ["compose", "postgres_init_sql"]

KAFKA_IMAGE = "apache/kafka:4.1.0"
POSTGRES_IMAGE = "postgres:17"
COMPOSE_PORTS = {Service.INGEST: 8001, Service.PSEUDONYMISE: 8002, Service.LINK: 8003}
COMPOSE_PORTS[Service.ACCESS] = 8004


def _compose_env(service: Service) -> dict[str, str]:
    # compose runs its own Kafka with a PLAINTEXT listener: no SASL, no TLS; and in dev,
    # pseudonymise uses its bundled synthetic postcode lookup (no directory is mounted).
    dropped = {*kafka_security_env(service), env_name(service, "postcode_lookup_file")}
    env = {k: v for k, v in config_data(ServiceRole(service, "api")).items() if k not in dropped}
    env[env_name(service, "environment")] = "dev"
    env[env_name(service, "bus", "kafka_bootstrap")] = "kafka:9092"
    env[env_name(service, "database_url")] = (
        f"postgresql+psycopg://fjo:dev-insecure-password@postgres:5432/fjo_{service.value}"
    )
    return dict(sorted(env.items()))


def compose() -> dict[str, Any]:
    """docker compose: Apache Kafka (KRaft), PostgreSQL, topics, migrations, every role."""
    hardened = {
        "image": "fjo:dev",
        "build": {"context": "..", "dockerfile": "deploy/Dockerfile"},
        "user": "10001:10001",
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "tmpfs": ["/tmp", f"{DATA_DIR}:uid=10001,gid=10001"],  # noqa: S108 - in the container
    }
    services: dict[str, Any] = {
        "kafka": {
            "image": KAFKA_IMAGE,
            "environment": {
                "KAFKA_NODE_ID": "1",
                "KAFKA_PROCESS_ROLES": "broker,controller",
                "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
                "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:9092",
                "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@kafka:9093",
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
                "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
                "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
                "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
                # Topics come from the registry (`fjo topics create`), never from a typo.
                "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
            },
            "healthcheck": {
                "test": [
                    "CMD-SHELL",
                    "/opt/kafka/bin/kafka-broker-api-versions.sh "
                    "--bootstrap-server localhost:9092 >/dev/null 2>&1",
                ],
                "interval": "5s",
                "timeout": "10s",
                "retries": 24,
            },
            "volumes": ["kafka-data:/var/lib/kafka/data"],
        },
        "postgres": {
            "image": POSTGRES_IMAGE,
            "environment": {
                "POSTGRES_USER": "fjo",
                "POSTGRES_PASSWORD": "dev-insecure-password",
                "POSTGRES_DB": "fjo",
            },
            "healthcheck": {
                "test": ["CMD-SHELL", "pg_isready -U fjo -d fjo"],
                "interval": "5s",
                "timeout": "5s",
                "retries": 24,
            },
            "volumes": [
                "postgres-data:/var/lib/postgresql/data",
                "./compose/postgres-init.sql:/docker-entrypoint-initdb.d/10-fjo.sql:ro",
            ],
        },
        "topics": {
            **hardened,
            "command": ["topics", "create", "--bootstrap", "kafka:9092"],
            "depends_on": {"kafka": {"condition": "service_healthy"}},
            "restart": "on-failure",
        },
    }
    for s in SERVICES:
        services[f"{s.value}-migrate"] = {
            **hardened,
            "command": ["db", "upgrade", s.value],
            "environment": _compose_env(s),
            "depends_on": {"postgres": {"condition": "service_healthy"}},
            "restart": "on-failure",
        }
        after = {
            f"{s.value}-migrate": {"condition": "service_completed_successfully"},
            "topics": {"condition": "service_completed_successfully"},
        }
        for sr in roles(s):
            if sr.role == "api":
                command = [
                    "serve",
                    s.value,
                    "api",
                    "--host",
                    ALL_INTERFACES,
                    "--port",
                    str(API_PORT),
                ]
                ports = [f"127.0.0.1:{COMPOSE_PORTS[s]}:{API_PORT}"]
                probe = API_PORT
            else:
                command = [
                    "serve",
                    s.value,
                    "worker",
                    "--host",
                    ALL_INTERFACES,
                    "--probe-port",
                    str(PROBE_PORT),
                ]
                ports = []
                probe = PROBE_PORT
            entry: dict[str, Any] = {
                **hardened,
                "command": command,
                "environment": _compose_env(s),
                "depends_on": after,
                "restart": "unless-stopped",
                "healthcheck": {
                    "test": [
                        "CMD",
                        "python",
                        "-c",
                        "import urllib.request,sys; "
                        f"urllib.request.urlopen('http://127.0.0.1:{probe}/readyz', timeout=3)",
                    ],
                    "interval": "10s",
                    "timeout": "5s",
                    "retries": 6,
                },
            }
            if ports:
                entry["ports"] = ports
            services[f"{s.value}-{sr.role}"] = entry
    return {
        "name": "fjo",
        "services": services,
        "volumes": {"kafka-data": {}, "postgres-data": {}},
    }


def postgres_init_sql() -> str:
    lines = ["-- GENERATED by `python -m deploy.generate`: one database per service.\n"]
    lines += [f"CREATE DATABASE fjo_{s.value} OWNER fjo;\n" for s in SERVICES]
    return "".join(lines)
