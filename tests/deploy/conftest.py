"""Fixtures for the deploy checks: the tools (kustomize, kubeconform, schemas) and renders.

The tools come from `scripts/tools.sh` (Go module proxy and PyPI only). `make test` installs
them before pytest; when a test finds one missing it installs it on demand, and if that fails
the test fails under CI=true and is skipped elsewhere (as the Kafka/PostgreSQL fixtures do).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.services import Service
from services import catalogue
from tests._services import unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod")


def settings_env_names(service: Service | str) -> set[str]:
    """Every environment variable ``service``'s settings class reads (one nesting level);
    ``service`` may be the portal (``services.catalogue.PORTAL``), which is no bus service."""
    prefix = f"FJO_{(service.value if isinstance(service, Service) else service).upper()}_"

    def name(*path: str) -> str:
        if path == ("environment",):
            return "FJO_ENVIRONMENT"
        return prefix + "__".join(p.upper() for p in path)

    names = set()
    for field_name, field in catalogue.entry(service).settings.model_fields.items():
        names.add(name(field_name))
        for nested in getattr(field.annotation, "model_fields", {}):
            names.add(name(field_name, nested))
    return names


def _tools(*args: str) -> str:
    try:
        done = subprocess.run(
            [str(REPO_ROOT / "scripts" / "tools.sh"), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        stderr = getattr(exc, "stderr", "") or ""
        unavailable(f"scripts/tools.sh {' '.join(args)} failed: {exc}\n{stderr}")
        raise AssertionError("unreachable") from exc  # pragma: no cover
    return done.stdout.strip()


@pytest.fixture(scope="session")
def kustomize() -> str:
    return _tools("path", "kustomize")


@pytest.fixture(scope="session")
def kubeconform() -> str:
    return _tools("path", "kubeconform")


@pytest.fixture(scope="session")
def schema_root() -> Path:
    return Path(_tools("schemas"))


def kustomize_build(kustomize: str, path: Path) -> str:
    done = subprocess.run(
        [kustomize, "build", str(path)], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"kustomize build {path} failed:\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def rendered(kustomize: str) -> dict[str, str]:
    """Each overlay rendered by `kustomize build`: overlay name -> YAML stream."""
    return {
        overlay: kustomize_build(kustomize, REPO_ROOT / "deploy" / "k8s" / "overlays" / overlay)
        for overlay in OVERLAYS
    }


@pytest.fixture(scope="session")
def rendered_docs(rendered: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    return {name: [d for d in yaml.safe_load_all(text) if d] for name, text in rendered.items()}


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture
def docs_of_kind() -> Callable[[list[dict[str, Any]], str], list[dict[str, Any]]]:
    return lambda docs, kind: [d for d in docs if d.get("kind") == kind]
