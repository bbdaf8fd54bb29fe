"""Kubernetes manifests generated from the topic registry and the services' settings classes.

``python -m deploy.generate`` writes, under ``deploy/k8s/base/``:

* ``kafka/``: a Strimzi ``KafkaTopic`` per registry topic (partitions, ``retention.ms`` /
  ``cleanup.policy``), a ``KafkaUser`` per service whose ACLs come from the registry's
  producer and consumer lists, and per worker a KEDA ``ScaledObject`` (one kafka trigger per
  consumed topic, scaled on the consumer group's lag) with its ``TriggerAuthentication``;
* ``services/``: per service role a Deployment, ServiceAccount, ConfigMap, Service (APIs),
  PodDisruptionBudget and NetworkPolicy allow-list, per service an Alembic migration Job and
  a retention CronJob (access's workspaces, the others' own tables); ``portal.yaml`` the same
  for the portal (no bus participant), with a Service per worker's probe port for its status
  page;
* ``deploy/k8s/jobs/pseudonymise-reencode.yaml``: the re-encode Job of a linkage-key rotation
  and its NetworkPolicy, applied by hand (no kustomization lists it).

``--check`` writes nothing and exits 1 when a committed file differs from what would be
generated (CI runs the same comparison as a test). Output is deterministic: the same registry
and settings always give byte-identical files.

The documents are built by ``deploy/manifests/`` (roles, workloads, network, kafka, compose,
documents: one module per concept); which roles a service has, and its settings class, come
from ``services/catalogue.py``; a worker must consume some registry topic.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contracts.services import SERVICES, Service
from contracts.topics import TOPICS
from deploy.manifests.compose import compose, postgres_init_sql
from deploy.manifests.documents import HEADER, dump, kustomization, to_yaml
from deploy.manifests.jobs import job_runner_resources
from deploy.manifests.kafka import autoscaling_resources, kafka_topic, kafka_user
from deploy.manifests.portal import portal_resources
from deploy.manifests.roles import roles
from deploy.manifests.workloads import (
    migration_resources,
    reencode_resources,
    retention_resources,
    service_role_resources,
)

__all__ = ["generate", "main", "stale_files"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def generate() -> dict[Path, str]:
    """Every generated file (path relative to the repository root) and its content."""
    files: dict[Path, str] = {}
    kafka = Path("deploy/k8s/base/kafka")
    files[kafka / "topics.yaml"] = dump(kafka_topic(t) for t in TOPICS)
    files[kafka / "users.yaml"] = dump(kafka_user(s) for s in SERVICES)
    files[kafka / "autoscaling.yaml"] = dump(
        doc for s in SERVICES for doc in autoscaling_resources(s)
    )
    files[kafka / "kustomization.yaml"] = kustomization(
        ["topics.yaml", "users.yaml", "autoscaling.yaml"]
    )
    services = Path("deploy/k8s/base/services")
    for s in SERVICES:
        docs = [doc for sr in roles(s) for doc in service_role_resources(sr)]
        docs += migration_resources(s)
        if s is Service.ACCESS:
            docs += job_runner_resources()
        docs += retention_resources(s)
        files[services / f"{s.value}.yaml"] = dump(docs)
    files[services / "portal.yaml"] = dump(portal_resources())
    files[services / "kustomization.yaml"] = kustomization(
        [*(f"{s.value}.yaml" for s in SERVICES), "portal.yaml"]
    )
    # Applied by hand for a key rotation (docs/operators.md), so in no kustomization.
    files[Path("deploy/k8s/jobs/pseudonymise-reencode.yaml")] = dump(reencode_resources())
    files[Path("deploy/compose.yaml")] = HEADER.replace(
        "# GENERATED",
        "# For users with Docker: `docker compose -f deploy/compose.yaml up`.\n# GENERATED",
    ) + to_yaml(compose())
    files[Path("deploy/compose/postgres-init.sql")] = postgres_init_sql()
    return files


def stale_files(root: Path = REPO_ROOT) -> list[Path]:
    """Generated files whose committed content differs from a fresh generation."""
    stale = []
    for rel, content in generate().items():
        path = root / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            stale.append(rel)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate deploy manifests from the registry.")
    parser.add_argument("--check", action="store_true", help="fail if committed files drift")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for rel in stale:
            print(f"out of date: {rel} (run `python -m deploy.generate`)", file=sys.stderr)
        return 1 if stale else 0
    for rel, content in generate().items():
        path = REPO_ROOT / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        print(rel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
