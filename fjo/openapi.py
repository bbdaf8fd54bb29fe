"""Writes each API's OpenAPI document under ``contracts/openapi/``; ``--check`` finds drift.

python -m fjo.openapi           # rewrite contracts/openapi/<service>.json
python -m fjo.openapi --check   # exit 1, naming each file, if they are out of date

The documents are what every API serves at ``/openapi.json``, committed so that a change to
an API shows in review and the compatibility check (``contracts.compat``) can compare them
with the released ones. Each app is built from its catalogue entry on dev settings that open
nothing (an in-memory database, no migrations): the routes, not the configuration, make the
document.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contracts.generate import drift_of, dump_json, generator_main, write_files
from contracts.services import SERVICES

__all__ = ["OPENAPI_DIR", "api_services", "build_api", "drift", "main", "render", "write"]

OPENAPI_DIR = Path(__file__).resolve().parents[1] / "contracts" / "openapi"


def api_services() -> list[str]:
    """The services with an ``api`` role, in the registry's order (the portal serves pages)."""
    from services import catalogue

    return [s.value for s in SERVICES if catalogue.API in catalogue.entry(s).roles]


def build_api(service: str, work: Path) -> Any:
    """``service``'s FastAPI app on dev settings that open nothing (files under ``work``)."""
    from services import catalogue

    entry = catalogue.entry(service)
    assert entry.create_app is not None, f"{service} has no API"
    fields = entry.settings.model_fields
    overrides: dict[str, Any] = {"environment": "dev", "database_url": "sqlite://"}
    for name, value in (
        ("migrate_on_start", False),
        ("dev_key_dir", work / "keys"),
        ("spool_dir", work / "spool"),
    ):
        if name in fields:
            overrides[name] = value
    return entry.create_app(entry.settings(**overrides))


def render() -> dict[str, str]:
    """Every API's document, by file name (``<service>.json``), as committed text."""
    with tempfile.TemporaryDirectory(prefix="fjo-openapi-") as work:
        return {
            f"{service}.json": dump_json(build_api(service, Path(work)).openapi())
            for service in api_services()
        }


def write(directory: Path = OPENAPI_DIR) -> list[str]:
    """Write ``render()`` into ``directory`` and delete stale files; return what was fixed."""
    return write_files(render(), directory)


def drift(directory: Path = OPENAPI_DIR) -> list[str]:
    """One line per file in ``directory`` that differs from ``render()``."""
    return drift_of(render(), directory)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the documents, or with ``--check`` report drift and exit 1."""
    return generator_main(
        argv,
        module="fjo.openapi",
        description=__doc__,
        directory=OPENAPI_DIR,
        render=render,
        label="contracts/openapi",
    )


if __name__ == "__main__":
    raise SystemExit(main())
