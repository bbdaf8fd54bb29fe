"""How the Kafka backend authenticates and encrypts: TLS, SASL, and what kafka-python takes.

One value object, checked when it is built, so that a half-configured listener (SASL without
credentials, credentials on a plaintext connection, a client key without its certificate)
fails at start-up with a sentence, not on the first connection with a broker-side timeout.
It does not import kafka-python: settings build it, the Kafka adapter hands its
``client_config()`` to every producer, consumer and admin client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

__all__ = [
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "KafkaSecurity",
    "KafkaSecurityError",
]

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
"""Kafka's ``security.protocol`` values (kafka-python's ``security_protocol``)."""
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
"""SASL mechanisms that authenticate with a username and password."""

_SASL = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
_TLS = frozenset({"SSL", "SASL_SSL"})


class KafkaSecurityError(ValueError):
    """The Kafka security settings do not fit together."""


class _Redacted(str):
    """The password as kafka-python needs it (a ``str``), but masked wherever it is shown:
    kafka-python logs its whole configuration at DEBUG (``KafkaAdminClient``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'**********'"


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """Security protocol, SASL credentials and TLS files of the Kafka clients.

    Field names follow the settings (``bus.kafka_*``), so error messages name what to fix.
    """

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise KafkaSecurityError("; ".join(problems))

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in _SASL

    @property
    def uses_tls(self) -> bool:
        return self.protocol in _TLS

    def _problems(self) -> list[str]:
        if self.protocol not in SECURITY_PROTOCOLS:
            return [
                f"kafka_security_protocol {self.protocol!r} is not one of "
                + ", ".join(SECURITY_PROTOCOLS)
            ]
        problems: list[str] = []
        password = self.sasl_password.get_secret_value() if self.sasl_password else ""
        if self.uses_sasl:
            missing = [
                name
                for name, value in (
                    ("kafka_sasl_mechanism", self.sasl_mechanism),
                    ("kafka_sasl_username", self.sasl_username),
                    ("kafka_sasl_password", password),
                )
                if not value
            ]
            if missing:
                problems.append(
                    f"kafka_security_protocol {self.protocol} authenticates with SASL and needs "
                    + ", ".join(missing)
                )
            if self.sasl_mechanism and self.sasl_mechanism not in SASL_MECHANISMS:
                problems.append(
                    f"kafka_sasl_mechanism {self.sasl_mechanism!r} is not one of "
                    + ", ".join(SASL_MECHANISMS)
                )
        else:
            given = [
                name
                for name, value in (
                    ("kafka_sasl_mechanism", self.sasl_mechanism),
                    ("kafka_sasl_username", self.sasl_username),
                    ("kafka_sasl_password", self.sasl_password),
                )
                if value is not None
            ]
            if given:
                problems.append(
                    f"{', '.join(given)} set, but kafka_security_protocol {self.protocol} does "
                    "not authenticate with SASL (use SASL_SSL, or remove them)"
                )
        files = (
            ("kafka_ssl_cafile", self.ssl_cafile),
            ("kafka_ssl_certfile", self.ssl_certfile),
            ("kafka_ssl_keyfile", self.ssl_keyfile),
        )
        if not self.uses_tls:
            given = [name for name, value in files if value is not None]
            if given:
                problems.append(
                    f"{', '.join(given)} set, but kafka_security_protocol {self.protocol} does "
                    "not use TLS (use SSL or SASL_SSL, or remove them)"
                )
        elif self.ssl_keyfile is not None and self.ssl_certfile is None:
            problems.append("kafka_ssl_keyfile needs kafka_ssl_certfile (the client certificate)")
        return problems

    def client_config(self) -> Mapping[str, Any]:
        """The keyword arguments every kafka-python client takes for this security setup."""
        config: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_sasl:
            assert self.sasl_password is not None  # checked in __post_init__
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = _Redacted(self.sasl_password.get_secret_value())
        if self.uses_tls:
            config["ssl_check_hostname"] = self.ssl_check_hostname
            for key, path in (
                ("ssl_cafile", self.ssl_cafile),
                ("ssl_certfile", self.ssl_certfile),
                ("ssl_keyfile", self.ssl_keyfile),
            ):
                if path is not None:
                    config[key] = str(path)
        return config
