"""Kafka on Strimzi: a KafkaTopic per registry topic, a KafkaUser per service with ACLs from
the registry, KEDA scaling of each worker on its group's lag, and how a role reaches the
listener."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from contracts.services import Service
from contracts.topics import Topic, topics_consumed_by, topics_produced_by
from deploy.manifests.roles import (
    KAFKA_BOOTSTRAP,
    KAFKA_CA_FILE,
    KAFKA_CA_SECRET,
    KAFKA_CLUSTER,
    KAFKA_SASL_MECHANISM,
    KAFKA_SECURITY_PROTOCOL,
    LAG_THRESHOLD,
    SECRETS_DIR,
    ServiceRole,
    consumer_group,
    env_name,
    nested_fields,
)

__all__ = [
    "autoscaling_resources",
    "kafka_password_file",
    "kafka_security_env",
    "kafka_topic",
    "kafka_user",
    "kafka_user_name",
]


def kafka_user_name(service: Service) -> str:
    """The service's Strimzi ``KafkaUser``, and so its SASL username and credentials Secret."""
    return f"fjo-{service.value}"


def kafka_security_env(service: Service) -> dict[str, str]:
    """How a role reaches the Strimzi listener: SCRAM-SHA-512 over TLS as its KafkaUser, the
    cluster CA from the secrets folder. The password is not here: it is the KafkaUser's
    Secret, mounted as the file ``kafka_password_file`` names (``_volumes``)."""
    if "kafka_security_protocol" not in nested_fields(service, "bus"):
        return {}
    return {
        env_name(service, "bus", "kafka_security_protocol"): KAFKA_SECURITY_PROTOCOL,
        env_name(service, "bus", "kafka_sasl_mechanism"): KAFKA_SASL_MECHANISM,
        env_name(service, "bus", "kafka_sasl_username"): kafka_user_name(service),
        env_name(service, "bus", "kafka_ssl_cafile"): f"{SECRETS_DIR}/{KAFKA_CA_FILE}",
        # Topics are Strimzi KafkaTopics here, and the KafkaUsers have no Create ACL.
        env_name(service, "bus", "create_topics"): "false",
    }


def kafka_password_file(service: Service) -> str:
    """The file in the secrets folder that fills ``bus.kafka_sasl_password`` (named like
    its variable, as the settings read nested secrets)."""
    return env_name(service, "bus", "kafka_sasl_password")


def kafka_topic(t: Topic) -> dict[str, Any]:
    """Strimzi KafkaTopic: the registry's name, partitions and retention/cleanup."""
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaTopic",
        "metadata": {
            # Kubernetes names cannot hold dots' neighbours freely; topicName keeps the real one.
            "name": t.name.replace(".", "-"),
            "labels": {
                "strimzi.io/cluster": KAFKA_CLUSTER,
                "app.kubernetes.io/part-of": "fjo",
                "fjo.dev/producer": t.producer.value,
                "fjo.dev/identifiable": str(t.identifiable).lower(),
            },
        },
        "spec": {
            "topicName": t.name,
            "partitions": t.partitions,
            "replicas": 3,
            "config": {**t.kafka_configs(), "min.insync.replicas": 2},
        },
    }


def _acl(topic_name: str, operations: Iterable[str]) -> dict[str, Any]:
    return {
        "resource": {"type": "topic", "name": topic_name, "patternType": "literal"},
        "operations": sorted(operations),
        "host": "*",
    }


def kafka_acls(service: Service) -> list[dict[str, Any]]:
    """Write/Describe on produced topics, Read/Describe on consumed ones, Read on its group."""
    acls = [_acl(t.name, ["Describe", "Write"]) for t in topics_produced_by(service)]
    acls += [_acl(t.name, ["Describe", "Read"]) for t in topics_consumed_by(service)]
    if topics_consumed_by(service):
        acls.append(
            {
                "resource": {
                    "type": "group",
                    "name": consumer_group(service),
                    "patternType": "literal",
                },
                "operations": ["Read"],
                "host": "*",
            }
        )
    return acls


def kafka_user(service: Service) -> dict[str, Any]:
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaUser",
        "metadata": {
            "name": kafka_user_name(service),
            "labels": {
                "strimzi.io/cluster": KAFKA_CLUSTER,
                "app.kubernetes.io/part-of": "fjo",
                "fjo.dev/service": service.value,
            },
        },
        "spec": {
            "authentication": {"type": KAFKA_SASL_MECHANISM.lower()},
            "authorization": {"type": "simple", "acls": kafka_acls(service)},
        },
    }


def autoscaling_resources(service: Service) -> list[dict[str, Any]]:
    """KEDA ScaledObject on consumer-group lag, its TriggerAuthentication and identity."""
    consumed = topics_consumed_by(service)
    if not consumed:
        return []
    worker = ServiceRole(service, "worker").name
    labels = {"app.kubernetes.io/part-of": "fjo", "fjo.dev/service": service.value}
    auth_name = f"fjo-{service.value}-kafka"
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": auth_name, "labels": labels},
            # KEDA reads the SASL username from here; the password from the KafkaUser secret.
            "data": {"username": kafka_user_name(service)},
        },
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "TriggerAuthentication",
            "metadata": {"name": auth_name, "labels": labels},
            "spec": {
                "configMapTargetRef": [
                    {"parameter": "username", "name": auth_name, "key": "username"}
                ],
                "secretTargetRef": [
                    {
                        "parameter": "password",
                        "name": kafka_user_name(service),
                        "key": "password",
                    },
                    {"parameter": "ca", "name": KAFKA_CA_SECRET, "key": "ca.crt"},
                ],
            },
        },
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": worker, "labels": labels},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": worker},
                "minReplicaCount": 1,
                # More members than partitions would sit idle (KEDA caps each trigger too).
                "maxReplicaCount": max(t.partitions for t in consumed),
                "pollingInterval": 15,
                "cooldownPeriod": 300,
                "triggers": [
                    {
                        "type": "kafka",
                        "metadata": {
                            "bootstrapServers": KAFKA_BOOTSTRAP,
                            "consumerGroup": consumer_group(service),
                            "topic": t.name,
                            "lagThreshold": str(LAG_THRESHOLD),
                            "offsetResetPolicy": "earliest",
                            "sasl": KAFKA_SASL_MECHANISM.lower().replace("-sha-", "_sha"),
                            "tls": "enable",
                        },
                        "authenticationRef": {"name": auth_name},
                    }
                    for t in consumed
                ],
            },
        },
    ]
