"""Each role's ConfigMap, Deployment, Service, PodDisruptionBudget and NetworkPolicy, and
each service's migration Job: hardened pods (restricted Pod Security and then some),
probes, secrets and writable mounts."""

from __future__ import annotations

import json
from typing import Any

from contracts.services import Service
from deploy.manifests.jobs import (
    API_SERVER_EGRESS,
    job_runner_config,
    job_runner_env,
    job_runner_mounts,
    job_runner_volumes,
)
from deploy.manifests.kafka import kafka_password_file, kafka_security_env, kafka_user_name
from deploy.manifests.network import network_policy
from deploy.manifests.roles import (
    ALL_INTERFACES,
    API_PORT,
    DATA_DIR,
    IMAGE,
    KAFKA_CA_FILE,
    KAFKA_CA_SECRET,
    KEY_FILES,
    PROBE_PORT,
    SECRETS_DIR,
    ServiceRole,
    consumer_group,
    env_name,
    meta,
    nested_fields,
    role_labels,
    role_selector,
    roles,
    settings_fields,
)
from services import catalogue

__all__ = [
    "config_data",
    "migration_job",
    "migration_resources",
    "reencode_resources",
    "retention_cronjob",
    "retention_resources",
    "service_role_resources",
]

# Kubernetes' restricted Pod Security Standard, and then some.
POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESOURCES: dict[str, dict[str, Any]] = {
    "api": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
    "worker": {"requests": {"cpu": "250m", "memory": "384Mi"}, "limits": {"memory": "768Mi"}},
    "migrate": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    "retention": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
}
for _r in RESOURCES.values():
    _r["limits"]["cpu"] = "1"
LINK_WORKER_RESOURCES: dict[str, dict[str, Any]] = {
    "requests": {"cpu": "500m", "memory": "2Gi"},
    "limits": {"cpu": "2", "memory": "8Gi"},
}
"""Link's worker holds the spine index: memory-mapped snapshot pages (charged to the pod as
page cache) plus its own memory. Sized for a spine of about 5M people (docs/linkage.md, "The
spine index at scale", gives bytes per person to size others by)."""
SNAPSHOT_DIR = f"{DATA_DIR}/snapshots"
POSTCODE_DIR = "/var/lib/fjo-postcodes"
POSTCODE_FILE = f"{POSTCODE_DIR}/postcode-directory.csv"
POSTCODE_CLAIM = "fjo-postcode-directory"
"""The ONS Postcode Directory (or NSPL) CSV, on a read-only volume the operator provides
(docs/operators.md, "Postcode data"): pseudonymise refuses its bundled synthetic lookup
outside dev."""
SNAPSHOT_VOLUME_LIMIT = "24Gi"
"""Room for two snapshots of a 5M spine (the newest and the one before it)."""


def config_data(sr: ServiceRole) -> dict[str, str]:
    """Non-secret settings of one role, as ``FJO_<SVC>_*`` environment variables.

    Only settings that the service's class has are set (a test checks every key against it).
    The environment, Kafka bootstrap and OTLP endpoint come from the ``fjo-platform``
    ConfigMap instead, so that an overlay changes them in one place.
    """
    svc = sr.service
    fields = settings_fields(svc)
    data = {
        env_name(svc, "bus", "backend"): "kafka",
        env_name(svc, "telemetry", "log_json"): "true",
        env_name(svc, "telemetry", "log_level"): "INFO",
    }
    if "migrate_on_start" in fields:
        data[env_name(svc, "migrate_on_start")] = "false"  # the migration Job runs them
    if "worker_group" in fields:
        data[env_name(svc, "worker_group")] = consumer_group(svc)
    if "master_key_files" in fields:
        data[env_name(svc, "master_key_files")] = json.dumps(
            {"1": f"{SECRETS_DIR}/{KEY_FILES['master_key_files']}"}
        )
    if "vault_kek_files" in fields:
        data[env_name(svc, "vault_kek_files")] = json.dumps(
            {"k1": f"{SECRETS_DIR}/{KEY_FILES['vault_kek_files']}"}
        )
    for setting in ("alf_key_file", "audit_signing_key_file"):
        if setting in fields:
            data[env_name(svc, setting)] = f"{SECRETS_DIR}/{KEY_FILES[setting]}"
    if "dev_key_dir" in fields:  # dev only, where no key files are mounted
        data[env_name(svc, "dev_key_dir")] = f"{DATA_DIR}/keys"
    if "spool_dir" in fields:
        data[env_name(svc, "spool_dir")] = f"{DATA_DIR}/spool"
    if "dev_key_file" in nested_fields(svc, "auth"):
        data[env_name(svc, "auth", "dev_key_file")] = f"{DATA_DIR}/dev-issuer.pem"
    if "directory" in nested_fields(svc, "extracts"):
        data[env_name(svc, "extracts", "directory")] = f"{DATA_DIR}/extracts"
    if "snapshot_dir" in fields:
        data[env_name(svc, "snapshot_dir")] = SNAPSHOT_DIR
    if "postcode_lookup_file" in fields:
        data[env_name(svc, "postcode_lookup_file")] = POSTCODE_FILE
    data.update(kafka_security_env(svc))
    return dict(sorted(data.items()))


def runs_jobs(sr: ServiceRole) -> bool:
    """Access's API runs the analysis jobs (its background tasks), as Kubernetes Jobs."""
    return (sr.service, sr.role) == (Service.ACCESS, "api")


PLATFORM_ENV = {
    ("environment",): "environment",
    ("bus", "kafka_bootstrap"): "kafka-bootstrap",
    ("telemetry", "otlp_endpoint"): "otlp-endpoint",
}
"""Settings every service takes from the ``fjo-platform`` ConfigMap (key on the right)."""


def platform_env(service: Service) -> list[dict[str, Any]]:
    return [
        {
            "name": env_name(service, *path),
            "valueFrom": {"configMapKeyRef": {"name": "fjo-platform", "key": key}},
        }
        for path, key in PLATFORM_ENV.items()
    ]


def volumes(service: Service, *, kafka: bool = True) -> list[dict[str, Any]]:
    """The secrets folder (the service's Secret, and for roles on Kafka its KafkaUser's
    password and the cluster CA), and the writable ``emptyDir``s."""
    sources: list[dict[str, Any]] = [{"secret": {"name": f"fjo-{service.value}-secrets"}}]
    if kafka:
        sources += [
            # Created by Strimzi's user operator for the KafkaUser of the same name.
            {
                "secret": {
                    "name": kafka_user_name(service),
                    "items": [{"key": "password", "path": kafka_password_file(service)}],
                }
            },
            {
                "secret": {
                    "name": KAFKA_CA_SECRET,
                    "items": [{"key": "ca.crt", "path": KAFKA_CA_FILE}],
                }
            },
        ]
    mounted = [
        {"name": "secrets", "projected": {"defaultMode": 0o440, "sources": sources}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    if "snapshot_dir" in settings_fields(service):
        # Per pod here; replicas on one node share one copy of the index in the page cache
        # when this is a node-local volume they all mount (docs/operators.md).
        mounted.append({"name": "snapshots", "emptyDir": {"sizeLimit": SNAPSHOT_VOLUME_LIMIT}})
    if kafka and "postcode_lookup_file" in settings_fields(service):
        # The roles' pods only (the migration Job is the one without Kafka): it reads none.
        mounted.append(
            {
                "name": "postcodes",
                "persistentVolumeClaim": {"claimName": POSTCODE_CLAIM, "readOnly": True},
            }
        )
    return mounted


VOLUME_MOUNTS = [
    {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True},
    {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, the root fs is read-only
    {"name": "data", "mountPath": DATA_DIR},
]


def volume_mounts(service: Service) -> list[dict[str, Any]]:
    mounts = list(VOLUME_MOUNTS)
    if "snapshot_dir" in settings_fields(service):
        mounts.append({"name": "snapshots", "mountPath": SNAPSHOT_DIR})
    if "postcode_lookup_file" in settings_fields(service):
        mounts.append({"name": "postcodes", "mountPath": POSTCODE_DIR, "readOnly": True})
    return mounts


def role_container(sr: ServiceRole) -> dict[str, Any]:
    svc = sr.service
    if sr.role == "api":
        args = ["serve", svc.value, "api", "--host", ALL_INTERFACES, "--port", str(API_PORT)]
        port = {"name": "http", "containerPort": API_PORT, "protocol": "TCP"}
    else:
        args = [
            "serve",
            svc.value,
            "worker",
            "--host",
            ALL_INTERFACES,
            "--probe-port",
            str(PROBE_PORT),
        ]
        port = {"name": "probe", "containerPort": PROBE_PORT, "protocol": "TCP"}
    probe_port = port["name"]
    return {
        "name": "fjo",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "ports": [port],
        "envFrom": [{"configMapRef": {"name": sr.name}}],
        "env": platform_env(svc) + (job_runner_env() if runs_jobs(sr) else []),
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": probe_port},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": probe_port},
            "periodSeconds": 20,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "startupProbe": {
            "httpGet": {"path": "/healthz", "port": probe_port},
            "periodSeconds": 5,
            "failureThreshold": 24,
        },
        "resources": (
            LINK_WORKER_RESOURCES
            if (svc, sr.role) == (Service.LINK, "worker")
            else RESOURCES[sr.role]
        ),
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": volume_mounts(svc) + (job_runner_mounts() if runs_jobs(sr) else []),
    }


def hardened_pod(
    service: Service,
    sa: str,
    containers: list[dict[str, Any]],
    *,
    kafka: bool = True,
    jobs: bool = False,
) -> dict[str, Any]:
    return {
        "serviceAccountName": sa,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": POD_SECURITY,
        "containers": containers,
        "volumes": volumes(service, kafka=kafka) + (job_runner_volumes() if jobs else []),
    }


def rolling_deployment_spec(
    selector: dict[str, str], labels: dict[str, str], metrics_port: int, pod: dict[str, Any]
) -> dict[str, Any]:
    """A Deployment's spec without replicas: rolled one pod at a time with none unavailable,
    its pods scraped by Prometheus on ``metrics_port``."""
    return {
        "selector": {"matchLabels": selector},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
        "template": {
            "metadata": {
                "labels": labels,
                "annotations": {
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(metrics_port),
                    "prometheus.io/path": "/metrics",
                },
            },
            "spec": pod,
        },
    }


def service_role_resources(sr: ServiceRole) -> list[dict[str, Any]]:
    """ServiceAccount, ConfigMap, Deployment, Service (api), PDB and NetworkPolicy of a role."""
    svc, role = sr.service, sr.role
    labels = role_labels(sr, svc, role)
    selector = role_selector(svc, role)
    port_name = "http" if role == "api" else "probe"
    port = API_PORT if role == "api" else PROBE_PORT
    deployment_spec = rolling_deployment_spec(
        selector,
        labels,
        port,
        {
            **hardened_pod(svc, sr.name, [role_container(sr)], jobs=runs_jobs(sr)),
            # A worker finishes its batch and commits before it leaves the group.
            "terminationGracePeriodSeconds": 30 if role == "api" else 60,
        },
    )
    if role == "api":
        deployment_spec = {"replicas": 2, **deployment_spec}
    # Workers have no replicas field: KEDA owns it, and an apply must not reset it.
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(sr.name, labels),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(sr.name, labels),
            # Compose (config_data alone) keeps the local runner: it has no cluster.
            "data": dict(
                sorted(
                    {**config_data(sr), **(job_runner_config() if runs_jobs(sr) else {})}.items()
                )
            ),
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(sr.name, labels),
            "spec": deployment_spec,
        },
    ]
    if role == "api":
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta(sr.name, labels),
                "spec": {
                    "type": "ClusterIP",
                    "selector": selector,
                    "ports": [
                        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
                    ],
                },
            }
        )
    docs.append(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta(sr.name, labels),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
        }
    )
    extra = [API_SERVER_EGRESS] if runs_jobs(sr) else []
    docs.append(network_policy(sr.name, svc, role, labels, port_name, port, extra_egress=extra))
    return docs


def migration_job(name: str, labels: dict[str, str], pod_spec: dict[str, Any]) -> dict[str, Any]:
    """A migration Job (a service's or the portal's) around ``pod_spec``."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(
            name,
            labels,
            annotations={
                # Argo CD runs it before each sync; with plain kubectl it is deleted after
                # a day and re-created by the next apply (a Job's template is immutable).
                "argocd.argoproj.io/hook": "PreSync",
                "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
            },
        ),
        "spec": {
            "backoffLimit": 3,
            "activeDeadlineSeconds": 900,
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def job_container(
    name: str,
    service: Service,
    args: list[str],
    mounts: list[dict[str, Any]],
    *,
    settings_of: str | None = None,
    env: list[dict[str, Any]] | None = None,
    resources: str | None = None,
) -> dict[str, Any]:
    """The one container of a service's Job or CronJob: ``fjo <args>`` in the hardened
    image, with the platform's settings, and with a role's ConfigMap when ``settings_of``
    names the role."""
    container: dict[str, Any] = {
        "name": name,
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
    }
    if settings_of is not None:
        container["envFrom"] = [{"configMapRef": {"name": settings_of}}]
    container |= {
        "env": platform_env(service) + (env or []),
        "resources": RESOURCES[resources or name],
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": mounts,
    }
    return container


def migration_resources(service: Service) -> list[dict[str, Any]]:
    """The Alembic migration Job of a service (``fjo db upgrade <service>``) and its policy."""
    name = f"fjo-{service.value}-migrate"
    labels = role_labels(None, service, "migrate")
    container = job_container("migrate", service, ["db", "upgrade", service.value], VOLUME_MOUNTS)
    pod_spec = {
        # Migrations never talk to Kafka: no Kafka credentials in the Job's pod.
        # Under the first role's ServiceAccount (pseudonymise has no API, so no API account).
        **hardened_pod(service, roles(service)[0].name, [container], kafka=False),
        "restartPolicy": "Never",
    }
    return [
        migration_job(name, labels, pod_spec),
        network_policy(name, service, "migrate", labels, None, None),
    ]


WORKSPACES_VOLUME = "workspaces"
"""The name of the workspaces claim's volume in access's pods (deploy/manifests/jobs.py)."""
RETENTION_SCHEDULE = "17 3 * * *"
"""Daily, at a quiet hour: a workspace is deleted within a day of its retention period's end."""


def retention_cronjob(
    name: str, labels: dict[str, str], pod_spec: dict[str, Any]
) -> dict[str, Any]:
    """A daily retention CronJob (access's workspaces, the other services' tables)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta(name, labels),
        "spec": {
            "schedule": RETENTION_SCHEDULE,
            "timeZone": "Etc/UTC",
            # Runs never overlap; the jobs are idempotent all the same (one certificate per
            # project, written with the project row locked; a row is deleted once).
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 3600,
                    "template": {"metadata": {"labels": labels}, "spec": pod_spec},
                },
            },
        },
    }


def retention_resources(service: Service) -> list[dict[str, Any]]:
    """A service's retention CronJob and its policy: access's ``fjo access retention run``
    (workspaces, with certificates), the others' ``fjo retention run --service <name>`` (their
    own tables, ``services.catalogue``'s ``retention``); nothing for a service without one.

    Each runs with the settings of the role that owns the tables (access's and ingest's API,
    pseudonymise's and link's worker): the same ConfigMap, secrets and mounts, the Kafka CA
    and password included, because the settings name those files and refuse to load without
    them. Its NetworkPolicy lets it reach only the database: retention never talks to Kafka."""
    name = f"fjo-{service.value}-retention"
    labels = role_labels(None, service, "retention")
    if service is Service.ACCESS:
        owner = f"fjo-{service.value}-api"
        args = ["access", "retention", "run"]
        # The API's workspaces claim, where the files to delete are (not its API token).
        mounts = volume_mounts(service) + [
            m for m in job_runner_mounts() if m["name"] == WORKSPACES_VOLUME
        ]
    elif catalogue.entry(service).retention is not None:
        owner = roles(service)[-1].name  # the worker where there is one, else the API
        args = ["retention", "run", "--service", service.value]
        mounts = volume_mounts(service)
    else:
        return []
    container = job_container("retention", service, args, mounts, settings_of=owner)
    pod = hardened_pod(service, owner, [container])
    if service is Service.ACCESS:
        pod["volumes"] += [v for v in job_runner_volumes() if v["name"] == WORKSPACES_VOLUME]
    return [
        retention_cronjob(name, labels, {**pod, "restartPolicy": "Never"}),
        network_policy(name, service, "retention", labels, None, None),
    ]


REENCODE_SHARDS = 4
"""Pods of a re-encode (an Indexed Job, one ``--shard`` each): each pages through its share of
the vault, so the vault's size over four is what one pod reads."""
REENCODE_CONFIG = "fjo-pseudonymise-reencode"
"""The ConfigMap the operator creates for a rotation: ``key-version``, the new key version."""


def reencode_resources() -> list[dict[str, Any]]:
    """``fjo pseudonymise reencode`` as a Kubernetes Job (docs/operators.md, "Rotating the
    linkage key"), with its NetworkPolicy: in a file of its own that no kustomization lists,
    so it is never applied by default. The operator creates the ConfigMap ``REENCODE_CONFIG``
    with the key version, then the Job; until then a pod cannot start (its ``KEY_VERSION``
    has no source).

    Its pods are the pseudonymise worker's: the worker's ConfigMap, ServiceAccount, secrets
    (the master key ring and the vault KEKs) and postcode directory, on Kafka as the worker's
    KafkaUser (it publishes on ``pseudonymise.linkage-keys.v1``). ``completionMode: Indexed``
    gives each pod its shard (``JOB_COMPLETION_INDEX``); a pod that fails is retried and
    resumes from its recorded progress."""
    service = Service.PSEUDONYMISE
    owner = ServiceRole(service, "worker").name
    name = f"fjo-{service.value}-reencode"
    labels = role_labels(None, service, "reencode")
    container = job_container(
        "reencode",
        service,
        # $(VAR) is expanded by Kubernetes from the container's environment.
        ["pseudonymise", "reencode", "--key-version", "$(KEY_VERSION)",
         "--shard", "$(JOB_COMPLETION_INDEX)", "--shards", str(REENCODE_SHARDS)],
        volume_mounts(service),
        settings_of=owner,
        env=[
            {
                "name": "KEY_VERSION",
                "valueFrom": {"configMapKeyRef": {"name": REENCODE_CONFIG, "key": "key-version"}},
            }
        ],
        resources="worker",
    )  # fmt: skip
    pod_spec = {**hardened_pod(service, owner, [container]), "restartPolicy": "Never"}
    return [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta(name, labels),
            "spec": {
                "completionMode": "Indexed",
                "completions": REENCODE_SHARDS,
                "parallelism": REENCODE_SHARDS,
                "backoffLimit": 6 * REENCODE_SHARDS,
                "activeDeadlineSeconds": 7 * 86400,
                "ttlSecondsAfterFinished": 7 * 86400,
                "template": {"metadata": {"labels": labels}, "spec": pod_spec},
            },
        },
        network_policy(name, service, "reencode", labels, None, None),
    ]
