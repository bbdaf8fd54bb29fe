"""The platform's services: the only names for producers, consumers and envelope sources."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["SERVICES", "Service"]


class Service(StrEnum):
    """A fjo service (one process kind per service: api and/or worker)."""

    INGEST = "ingest"
    PSEUDONYMISE = "pseudonymise"
    LINK = "link"
    ACCESS = "access"


SERVICES: tuple[Service, ...] = tuple(Service)
