"""The image and the compose file, checked without Docker (no engine on these machines).

Nothing here builds or runs a container: the Dockerfile's stages and the compose file's
services, commands and environment are checked against the registry, the CLI and the
services' settings classes.
"""

from __future__ import annotations

import json
import shlex
import tomllib
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from contracts.services import SERVICES
from deploy.manifests import roles as manifest_roles
from fjo.cli import app
from tests.deploy.conftest import REPO_ROOT, settings_env_names

DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
COMPOSE = REPO_ROOT / "deploy" / "compose.yaml"


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    logical = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        logical += line.removesuffix("\\").strip() + " "
        if line.endswith("\\"):
            continue
        op, _, arg = logical.strip().partition(" ")
        logical = ""
        found.append((op.upper(), arg.strip()))
    return found


def _global_args() -> dict[str, str]:
    """The ARGs before the first FROM, with their defaults (what FROM lines may name)."""
    args: dict[str, str] = {}
    for op, arg in _instructions():
        if op == "FROM":
            break
        if op == "ARG":
            name, _, default = arg.partition("=")
            args[name] = default
    return args


def _stages() -> list[list[tuple[str, str]]]:
    """Instructions per stage (FROM lines with their ARGs filled in)."""
    stages: list[list[tuple[str, str]]] = []
    args = _global_args()
    for op, arg in _instructions():
        if op == "FROM":
            for name, value in args.items():
                arg = arg.replace("${" + name + "}", value)
            stages.append([])
        if stages:
            stages[-1].append((op, arg))
    return stages


def _stage(name: str) -> list[tuple[str, str]]:
    (found,) = [s for s in _stages() if s[0][1].lower().endswith(f" as {name}")]
    return found


def test_the_image_is_multi_stage_with_a_uv_built_venv_from_the_lock_file() -> None:
    build, runtime = _stage("build"), _stages()[-1]
    assert len(_stages()) >= 2
    runs = " ".join(arg for op, arg in build if op == "RUN")
    assert "uv sync --frozen --no-dev" in runs
    assert any(op == "COPY" and "uv.lock" in arg for op, arg in build)
    # The default image (last stage) is the worker's plus the pages' assets.
    assert runtime[0] == ("FROM", "worker AS runtime")
    assert _stage("worker")[0][1].startswith("python:3.11-slim-bookworm@sha256:")
    images = {_stage(name)[0][1].rsplit(" AS ", 1)[0] for name in ("build", "worker")}
    assert len(images) == 1  # one Python, to build the venv and to run it


def test_every_base_image_is_pinned_by_digest() -> None:
    stages = {s[0][1].rsplit(" AS ", 1)[-1] for s in _stages()}
    for stage in _stages():
        image = stage[0][1].rsplit(" AS ", 1)[0]
        if image in stages:
            continue  # built from an earlier stage of this file
        name, _, digest = image.partition("@sha256:")
        assert len(digest) == 64 and all(c in "0123456789abcdef" for c in digest), image
        assert ":" in name, f"{image}: the tag is kept beside the digest, for people"


def test_the_runtime_stages_are_non_root_without_build_tools_and_run_fjo() -> None:
    worker, runtime = _stage("worker"), _stage("runtime")
    text = " ".join(f"{op} {arg}" for op, arg in worker + runtime)
    for tool in ("uv ", "gcc", "build-essential", "apt-get install", "pip install", "npm"):
        assert tool not in text, f"{tool!r} in a runtime stage"
    assert [arg for op, arg in worker if op == "COPY"] == ["--from=build /opt/venv /opt/venv"]
    assert [arg for op, arg in runtime if op == "COPY"] == [
        "--from=assets /opt/fjo/assets /opt/fjo/assets"
    ]
    (user,) = [arg for op, arg in worker if op == "USER"]
    assert user.split(":")[0] not in {"0", "root"}
    assert not [arg for op, arg in runtime if op == "USER"]  # inherited from the worker's
    (entrypoint,) = [json.loads(arg) for op, arg in worker if op == "ENTRYPOINT"]
    assert entrypoint == ["fjo"]
    for stage in (worker, runtime):
        (cmd,) = [json.loads(arg) for op, arg in stage if op == "CMD"]
        result = CliRunner().invoke(app, [*cmd, "--help"])
        assert cmd[0] == "serve" and result.exit_code == 0, result.output


def test_the_assets_come_from_the_projects_own_script_and_every_page_is_told_where() -> None:
    assets = _stage("assets")
    runs = " ".join(arg for op, arg in assets if op == "RUN")
    assert "scripts/assets.sh install" in runs
    assert "assets.sh govuk" in runs and "assets.sh api-docs" in runs
    env = dict(
        pair.split("=", 1)
        for op, arg in _stage("runtime")
        if op == "ENV"
        for pair in shlex.split(arg)
    )
    assert env.pop("FJO_PORTAL_ASSETS_DIR") == "/opt/fjo/assets/govuk-frontend"
    apis = {s for s in SERVICES if "api" in {r.role for r in manifest_roles.roles(s)}}
    assert {f"FJO_{s.value.upper()}_DOCS_ASSETS_DIR" for s in apis} == set(env)
    for s in apis:
        assert f"FJO_{s.value.upper()}_DOCS_ASSETS_DIR" in settings_env_names(s)
    assert set(env.values()) == {"/opt/fjo/assets/api-docs"}


def test_the_image_runs_as_prod_unless_told_otherwise() -> None:
    runtime = " ".join(arg for op, arg in _stage("worker") if op == "ENV")
    assert "FJO_ENVIRONMENT=prod" in shlex.split(runtime)


def test_the_image_holds_every_package_the_distribution_ships() -> None:
    # synth/ moved out of fjo/ once and the image lost it: `fjo demo` would not import.
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    shipped = set(pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    copied = {
        shlex.split(arg)[0].rstrip("/")
        for op, arg in _stage("build")
        if op == "COPY" and not arg.startswith("--from")
    }
    assert shipped <= copied


def test_the_build_context_leaves_out_local_state() -> None:
    ignore = [
        line
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ignore[0] == "*", "an allow-list: exclude everything first"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert allowed <= {
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "contracts",
        "services",
        "synth",
        "fjo",
        "bench",
        "scripts/assets.sh",
    }
    copied = {
        shlex.split(arg)[0].rstrip("/")
        for op, arg in _stage("build")
        if op == "COPY" and not arg.startswith("--from")
    } | {"pyproject.toml", "uv.lock", "README.md"}
    copied |= {
        shlex.split(arg)[0]
        for op, arg in _stage("assets")
        if op == "COPY" and not arg.startswith("--from")
    }
    assert copied <= allowed | {"pyproject.toml"}


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_runs_official_kafka_in_kraft_mode_and_postgres() -> None:
    services = _compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in key for key in env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert services["postgres"]["image"].startswith("postgres:")
    init = (REPO_ROOT / "deploy/compose/postgres-init.sql").read_text()
    for s in SERVICES:
        assert f"CREATE DATABASE fjo_{s.value} " in init


def test_compose_has_each_role_of_the_registry_as_its_own_service() -> None:
    services = _compose()["services"]
    expected = {"kafka", "postgres", "topics"}
    for s in SERVICES:
        expected.add(f"{s.value}-migrate")
        expected |= {f"{s.value}-{r.role}" for r in manifest_roles.roles(s)}
    assert set(services) == expected


@pytest.mark.parametrize("service", list(SERVICES), ids=str)
def test_compose_commands_and_environment_match_the_cli_and_settings(service: Any) -> None:
    services = _compose()["services"]
    known = settings_env_names(service)
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    runner = CliRunner()
    names = [n for n in services if n.startswith(f"{service.value}-")]
    assert names
    for name in names:
        entry = services[name]
        result = runner.invoke(app, [*entry["command"], "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert service.value in entry["command"]
        env = entry["environment"]
        unknown = set(env) - known
        assert not unknown, f"{name}: {unknown} are not settings of {service.value}"
        prefix = f"FJO_{service.value.upper()}_"
        assert env["FJO_ENVIRONMENT"] == "dev"  # explicitly: the image alone runs as prod
        assert env[prefix + "BUS__BACKEND"] == "kafka"
        assert advertised.endswith(env[prefix + "BUS__KAFKA_BOOTSTRAP"])
        assert env[prefix + "DATABASE_URL"].endswith(f"/fjo_{service.value}")
        assert entry["read_only"] is True and entry["cap_drop"] == ["ALL"]
        assert entry["user"].split(":")[0] not in {"0", "root"}
        assert "no-new-privileges:true" in entry["security_opt"]
