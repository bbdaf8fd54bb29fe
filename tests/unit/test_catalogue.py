"""`services.catalogue`: the one list of the services' parts that the tools read."""

from __future__ import annotations

import pytest

from contracts.services import SERVICES
from contracts.topics import topics_consumed_by
from services import catalogue


def test_every_service_has_an_entry_with_its_own_settings_class() -> None:
    for service in SERVICES:
        entry = catalogue.entry(service)
        assert entry.service is service
        prefix = entry.settings.model_config.get("env_prefix")
        assert prefix == f"FJO_{service.value.upper()}_"


def test_a_service_runs_a_worker_exactly_when_it_consumes_a_registry_topic() -> None:
    for service in SERVICES:
        has_worker = catalogue.WORKER in catalogue.entry(service).roles
        assert has_worker == bool(topics_consumed_by(service)), service


def test_the_platform_roles_are_the_apis_and_workers_the_services_offer() -> None:
    assert catalogue.roles() == [
        ("ingest", "api"),
        ("pseudonymise", "worker"),
        ("link", "api"),
        ("link", "worker"),
        ("access", "api"),
        ("access", "worker"),
    ]


def test_an_entry_is_found_by_name_and_an_unknown_name_is_refused_with_the_known_ones() -> None:
    assert catalogue.entry("link") is catalogue.entry(SERVICES[2])
    with pytest.raises(LookupError, match="ingest, pseudonymise, link, access, portal"):
        catalogue.entry("billing")


def test_the_portal_is_served_and_migrated_but_is_not_a_pipeline_role() -> None:
    portal = catalogue.entry(catalogue.PORTAL)
    assert portal.roles == ("api",)
    assert all(service != catalogue.PORTAL for service, _ in catalogue.roles())
