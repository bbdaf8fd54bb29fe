"""The Kafka and service manifests under deploy/k8s/base are what the registry generates."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from contracts.services import SERVICES, Service
from contracts.topics import TOPICS, topic, topics_consumed_by, topics_produced_by
from deploy import generate
from deploy.manifests import roles as manifest_roles
from tests.deploy.conftest import REPO_ROOT, load_yaml_docs

KAFKA = REPO_ROOT / "deploy" / "k8s" / "base" / "kafka"


def _acls(user: dict[str, Any]) -> list[dict[str, Any]]:
    return user["spec"]["authorization"]["acls"]


def _committed_users() -> dict[str, dict[str, Any]]:
    return {u["metadata"]["name"]: u for u in load_yaml_docs(KAFKA / "users.yaml")}


def test_committed_manifests_equal_a_fresh_generation_from_the_registry() -> None:
    stale = generate.stale_files()
    assert not stale, f"regenerate with `python -m deploy.generate`; out of date: {stale}"


def test_the_drift_check_notices_a_hand_edit(tmp_path: Any) -> None:
    for rel, content in generate.generate().items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content)
    assert generate.stale_files(tmp_path) == []
    users = tmp_path / "deploy/k8s/base/kafka/users.yaml"
    users.write_text(users.read_text().replace("- Write", "- Read", 1))
    assert generate.stale_files(tmp_path) == [users.relative_to(tmp_path)]


def test_generation_is_deterministic() -> None:
    assert generate.generate() == generate.generate()


def test_every_registry_topic_has_a_kafka_topic_with_its_partitions_and_retention() -> None:
    committed = {t["spec"]["topicName"]: t for t in load_yaml_docs(KAFKA / "topics.yaml")}
    assert set(committed) == {t.name for t in TOPICS}
    for t in TOPICS:
        spec = committed[t.name]["spec"]
        assert spec["partitions"] == t.partitions
        assert committed[t.name]["metadata"]["labels"]["strimzi.io/cluster"] == "fjo"
        config = spec["config"]
        if t.retention == "compact":
            assert config["cleanup.policy"] == "compact"
            assert "retention.ms" not in config
        else:
            assert config["cleanup.policy"] == "delete"
            assert int(config["retention.ms"]) == t.retention


def test_only_pseudonymise_may_read_identifiable_topics() -> None:
    identifiable = {t.name for t in TOPICS if t.identifiable}
    assert identifiable, "the registry has identifiable topics (ingest.records.v1 at least)"
    readers: dict[str, set[str]] = defaultdict(set)
    for name, user in _committed_users().items():
        for acl in _acls(user):
            resource = acl["resource"]
            if resource["type"] != "topic":
                continue
            # A prefix or wildcard ACL could cover an identifiable topic without naming it.
            assert resource["patternType"] == "literal", (name, resource)
            assert resource["name"] != "*", name
            if {"Read", "All"} & set(acl["operations"]):
                readers[resource["name"]].add(name)
    for name in identifiable:
        assert readers.get(name, set()) <= {"fjo-pseudonymise"}, (name, readers.get(name))
    assert "fjo-pseudonymise" in readers["ingest.records.v1"]


def test_acls_follow_the_registrys_producers_and_consumers() -> None:
    users = _committed_users()
    assert set(users) == {f"fjo-{s.value}" for s in SERVICES}
    for service in SERVICES:
        acls = _acls(users[f"fjo-{service.value}"])
        topic_ops: dict[str, set[str]] = defaultdict(set)
        groups: dict[str, set[str]] = defaultdict(set)
        for acl in acls:
            target = topic_ops if acl["resource"]["type"] == "topic" else groups
            target[acl["resource"]["name"]] |= set(acl["operations"])
        expected: dict[str, set[str]] = defaultdict(set)
        for t in topics_produced_by(service):
            expected[t.name] |= {"Write", "Describe"}
        for t in topics_consumed_by(service):
            expected[t.name] |= {"Read", "Describe"}
        assert dict(topic_ops) == dict(expected), service
        if topics_consumed_by(service):
            assert groups == {manifest_roles.consumer_group(service): {"Read"}}
        else:
            assert not groups


def test_each_worker_scales_on_its_consumer_group_lag_within_its_partitions() -> None:
    docs = load_yaml_docs(KAFKA / "autoscaling.yaml")
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in docs if d["kind"] == "ScaledObject"}
    workers = {
        f"fjo-{s.value}-worker"
        for s in SERVICES
        if any(r.role == "worker" for r in manifest_roles.roles(s))
    }
    assert set(scaled) == workers
    assert workers == {f"fjo-{s.value}-worker" for s in SERVICES if topics_consumed_by(s)}
    for name, so in scaled.items():
        service = Service(name.removeprefix("fjo-").removesuffix("-worker"))
        consumed = {t.name for t in topics_consumed_by(service)}
        triggers = so["spec"]["triggers"]
        assert {tr["metadata"]["topic"] for tr in triggers} == consumed
        for tr in triggers:
            meta = tr["metadata"]
            assert tr["type"] == "kafka"
            assert meta["consumerGroup"] == manifest_roles.consumer_group(service)
            assert meta["bootstrapServers"] and int(meta["lagThreshold"]) > 0
        max_replicas = so["spec"]["maxReplicaCount"]
        assert 1 <= so["spec"]["minReplicaCount"] <= max_replicas
        assert max_replicas <= max(topic(t).partitions for t in consumed)


@pytest.mark.parametrize("service", list(SERVICES), ids=str)
def test_each_service_role_has_its_kubernetes_objects(service: Service) -> None:
    docs = load_yaml_docs(REPO_ROOT / "deploy/k8s/base/services" / f"{service.value}.yaml")
    by_kind: dict[str, set[str]] = defaultdict(set)
    for d in docs:
        by_kind[d["kind"]].add(d["metadata"]["name"])
    for sr in manifest_roles.roles(service):
        for kind in ("Deployment", "ServiceAccount", "ConfigMap", "PodDisruptionBudget"):
            assert sr.name in by_kind[kind], (kind, sr.name)
        assert sr.name in by_kind["NetworkPolicy"]
        assert (sr.name in by_kind["Service"]) == (sr.role == "api")
    assert by_kind["Job"] == {f"fjo-{service.value}-migrate"}
