"""What access needs to run analysis jobs as Kubernetes Jobs (docs/workspace.md, "Jobs in
Kubernetes"): the job pods' ServiceAccount (no token, no Role) and deny-all NetworkPolicy,
the namespaced Role that lets access's API create, watch and delete Jobs and read their
pods' logs (and nothing else), the workspaces volume and the API server's token that
access's API pods mount, and the runner's settings.

The Job each job runs as is built at run time by ``services/access/workspace/kubernetes.py``
(``job_manifest``); tests/deploy validates it with the same offline schemas.
"""

from __future__ import annotations

from typing import Any

from contracts.services import Service
from deploy.manifests.roles import DATA_DIR, env_name, meta
from services.access.config import JobRunnerSettings
from services.access.workspace.kubernetes import JOB_LABELS, JOB_NAME_LABEL

__all__ = [
    "API_SERVER_EGRESS",
    "RUNNER_ROLE",
    "SERVICE_ACCOUNT_DIR",
    "WORKSPACES_DIR",
    "job_runner_config",
    "job_runner_env",
    "job_runner_mounts",
    "job_runner_resources",
    "job_runner_volumes",
]

RUNNER = JobRunnerSettings()
RUNNER_ROLE = "fjo-access-jobs"
WORKSPACES_DIR = f"{DATA_DIR}/extracts"
"""Where access's API mounts the workspaces claim: its ``extracts.directory``."""
SERVICE_ACCOUNT_DIR = str(RUNNER.token_file.parent)
API_SERVER_EGRESS: dict[str, Any] = {
    # The API server's endpoints are the control plane's addresses, which differ per
    # cluster: an overlay narrows this to them (docs/operators.md).
    "to": [
        {"ipBlock": {"cidr": cidr}} for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
    ],
    "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}],
}


def job_runner_config() -> dict[str, str]:
    """Access API's runner settings (the image is copied from its own by kustomize)."""
    return {
        env_name(Service.ACCESS, "job_runner", "kind"): "kubernetes",
        env_name(Service.ACCESS, "job_runner", "image"): RUNNER.image,
        env_name(Service.ACCESS, "job_runner", "workspaces_claim"): RUNNER.workspaces_claim,
        env_name(Service.ACCESS, "job_runner", "service_account"): RUNNER.service_account,
    }


def job_runner_env() -> list[dict[str, Any]]:
    """The Jobs go to access's own namespace, whatever an overlay names it."""
    return [
        {
            "name": env_name(Service.ACCESS, "job_runner", "namespace"),
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        }
    ]


def job_runner_volumes() -> list[dict[str, Any]]:
    """The workspaces claim, and the API server's token (short-lived, projected: the
    ServiceAccount itself mounts none) with the cluster CA."""
    return [
        {"name": "workspaces", "persistentVolumeClaim": {"claimName": RUNNER.workspaces_claim}},
        {
            "name": "kube-api",
            "projected": {
                "defaultMode": 0o440,
                "sources": [
                    {
                        "serviceAccountToken": {
                            "path": RUNNER.token_file.name,
                            "expirationSeconds": 3600,
                        }
                    },
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": RUNNER.ca_file.name}],
                        }
                    },
                ],
            },
        },
    ]


def job_runner_mounts() -> list[dict[str, Any]]:
    return [
        {"name": "workspaces", "mountPath": WORKSPACES_DIR},
        {"name": "kube-api", "mountPath": SERVICE_ACCOUNT_DIR, "readOnly": True},
    ]


def job_runner_resources() -> list[dict[str, Any]]:
    """The job pods' ServiceAccount and NetworkPolicy; access API's Role and RoleBinding."""
    labels = {k: v for k, v in JOB_LABELS.items()}
    api_sa = "fjo-access-api"
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(RUNNER.service_account, labels),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta(JOB_NAME_LABEL, labels),
            "spec": {
                # Nothing in, nothing out: not the API server, not DNS, not the databases.
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": JOB_NAME_LABEL}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [],
                "egress": [],
            },
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(RUNNER_ROLE, labels),
            "rules": [
                {
                    "apiGroups": ["batch"],
                    "resources": ["jobs"],
                    "verbs": ["create", "get", "list", "watch", "delete"],
                },
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(RUNNER_ROLE, labels),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": RUNNER_ROLE,
            },
            "subjects": [{"kind": "ServiceAccount", "name": api_sa}],
        },
    ]
