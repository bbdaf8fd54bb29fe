"""Where the platform runs fails closed: one FJO_ENVIRONMENT for every service, prod when unset,
and only an explicit dev trusts the dev issuer, generated keys and placeholder secrets."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError
from typer.testing import CliRunner

from fjo.cli import app as fjo_cli
from services.access.config import AccessSettings
from services.ingest.config import IngestSettings
from services.link.config import LinkSettings
from services.link.entrypoints import create_app as create_link_app
from services.pseudonymise.config import PseudonymiseSettings
from services.runtime.auth import DevIssuer, configured_verifier
from services.runtime.settings import ENVIRONMENT_VARIABLE, Environment, PlatformSettings
from tests.unit.link.review_support import results_bus

SERVICES: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "pseudonymise": PseudonymiseSettings,
    "link": LinkSettings,
    "access": AccessSettings,
}

# What each service refuses to start without outside dev (its dev stand-in is generated, or
# a placeholder): proof that it really ran as prod, not only that a field says so.
NEEDS_OUTSIDE_DEV = {
    "ingest": "auth.jwks_url is required outside dev",
    "pseudonymise": "master_key_files must name the master key file",
    "link": "alf_key_file must name the ALF key file outside dev",
    "access": "holds a placeholder secret",
}


@pytest.fixture(autouse=True)
def no_fjo_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test says which FJO_ variables it sets (a developer's shell may export some)."""
    for name in list(os.environ):
        if name.upper().startswith("FJO_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_with_no_setting_every_service_runs_as_prod_and_refuses_dev_stand_ins(
    service: str,
) -> None:
    assert PlatformSettings().environment is Environment.PROD
    with pytest.raises(ValidationError, match=NEEDS_OUTSIDE_DEV[service]):
        SERVICES[service]()


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_one_platform_variable_sets_every_services_environment(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "dev")
    assert SERVICES[service]().environment is Environment.DEV  # type: ignore[attr-defined]
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "test")
    with pytest.raises(ValidationError, match=NEEDS_OUTSIDE_DEV[service]):
        SERVICES[service]()


@pytest.mark.parametrize("service", sorted(SERVICES))
@pytest.mark.parametrize("variable", ["FJO_{SERVICE}_ENVIRONMENT", "FJO_ENV", "fjo_env"])
def test_a_variable_that_looks_as_if_it_sets_the_environment_is_refused_not_ignored(
    service: str, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = variable.format(SERVICE=service.upper())
    monkeypatch.setenv(name, "dev")
    with pytest.raises(SettingsError, match=f"{name} is not read.*set FJO_ENVIRONMENT"):
        SERVICES[service]()


def test_an_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "staging")
    with pytest.raises(ValidationError, match="environment"):
        IngestSettings()


def test_the_dev_issuer_is_trusted_in_dev_only(tmp_path: Path) -> None:
    key_file = tmp_path / "dev-issuer.pem"
    dev = DevIssuer.from_file(key_file, issuer="https://dev.fjo.invalid")
    token = dev.mint("alice", audience="fjo-test")

    def settings(environment: Environment) -> SimpleNamespace:
        auth = SimpleNamespace(
            issuer=dev.issuer, audience="fjo-test", jwks_url=None, dev_key_file=key_file
        )
        return SimpleNamespace(auth=auth, environment=environment)

    for environment in (Environment.TEST, Environment.PROD):
        with pytest.raises(RuntimeError, match="trusted only with FJO_ENVIRONMENT=dev"):
            configured_verifier(settings(environment))
    verifier = configured_verifier(settings(Environment.DEV))
    assert verifier.verify(token).subject == "alice"


def test_test_with_real_keys_still_needs_a_real_issuer(tmp_path: Path) -> None:
    """``test`` is not a softer dev: keys in place, no JWKS URL, and ingest refuses to start."""
    with pytest.raises(ValidationError, match=r"auth\.jwks_url is required outside dev"):
        IngestSettings(environment="test", database_url=f"sqlite:///{tmp_path / 'i.db'}")
    link = LinkSettings(
        environment="test",
        database_url=f"sqlite:///{tmp_path / 'l.db'}",
        alf_key_file=tmp_path / "alf.key",
    )
    assert link.environment is Environment.TEST  # link's worker needs no issuer; its API does
    bus = results_bus(tmp_path)
    try:
        with (
            pytest.raises(RuntimeError, match="trusted only with FJO_ENVIRONMENT=dev"),
            TestClient(create_link_app(link, bus=bus)),
        ):
            pass
    finally:
        bus.close()


def test_fjo_token_refuses_to_mint_where_the_environment_is_not_dev(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["token", "--subject", "a", "--key-file", str(tmp_path / "k.pem")]
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "prod")
    refused = CliRunner().invoke(fjo_cli, args)
    assert refused.exit_code == 2 and "FJO_ENVIRONMENT=prod" in refused.output
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "dev")
    assert CliRunner().invoke(fjo_cli, args).exit_code == 0
