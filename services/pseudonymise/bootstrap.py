"""The composition root of pseudonymise: settings in, a ready worker out."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine

from contracts.services import Service
from services.pseudonymise.config import PseudonymiseSettings
from services.pseudonymise.domain import (
    KeyRing,
    MasterKey,
    OnsPostcodeLookup,
    Pseudonymiser,
    load_ons_postcode_lookup,
)
from services.pseudonymise.handlers import make_handlers
from services.runtime.bus.api import Bus
from services.runtime.db import make_session_factory
from services.runtime.delivery import Worker
from services.runtime.migrations import upgrade
from services.runtime.settings import Environment
from services.runtime.worker_process import worker_config

__all__ = [
    "MIGRATIONS",
    "VERSION_TABLE",
    "SyntheticPostcodesError",
    "build_pseudonymiser",
    "build_worker",
    "load_keyring",
    "load_postcodes",
]

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_pseudonymise"

log = logging.getLogger("fjo.pseudonymise")


def load_keyring(settings: PseudonymiseSettings) -> KeyRing:
    """The master keys from their secret files; in dev, one generated on first use."""
    paths = dict(settings.master_key_files)
    if not paths:
        if settings.environment is not Environment.DEV:
            raise ValueError("no master key configured")
        paths = {1: _dev_master_key(settings.dev_key_dir)}
    current = settings.current_key_version or max(paths)
    ring = KeyRing.from_files(paths, current, retired=settings.retired_key_versions)
    log.info("key ring loaded", extra={"key_versions": sorted(paths), "current": current})
    return ring


def _dev_master_key(directory: Path) -> Path:
    path = directory / "master-v1.key"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_bytes(MasterKey.generate().material)
        log.warning("generated a dev master key; never use it outside dev")
    return path


class SyntheticPostcodesError(RuntimeError):
    """A made-up postcode lookup outside dev."""


def load_postcodes(settings: PseudonymiseSettings) -> OnsPostcodeLookup:
    """The operator's postcode directory; a synthetic one (marked so in its comment lines,
    whatever its name) only in dev."""
    lookup = load_ons_postcode_lookup(settings.postcode_lookup_file)
    if lookup.synthetic and settings.environment is not Environment.DEV:
        raise SyntheticPostcodesError(
            f"{settings.postcode_lookup_file} is a synthetic postcode lookup, refused outside "
            "dev: mount the ONS Postcode Directory or NSPL (docs/operators.md, 'Postcode data')"
        )
    log.info(
        "postcode lookup loaded",
        extra={"postcodes": len(lookup), "bytes": lookup.nbytes, "synthetic": lookup.synthetic},
    )
    return lookup


def build_pseudonymiser(settings: PseudonymiseSettings) -> Pseudonymiser:
    """The split under the current key version, with the operator's postcode lookup."""
    return Pseudonymiser(load_keyring(settings), load_postcodes(settings))


def build_worker(settings: PseudonymiseSettings, bus: Bus, engine: Engine) -> Worker:
    """The worker on the registry's topics for pseudonymise (``ingest.records.v1``), its
    schema migrated; dead letters to its DLQ.

    The caller owns ``bus`` and ``engine`` and closes them after the worker.
    """
    upgrade(engine, MIGRATIONS, version_table=VERSION_TABLE)
    producer = bus.producer()
    pseudonymiser = build_pseudonymiser(settings)
    return Worker(
        bus,
        worker_config(Service.PSEUDONYMISE, group_id=settings.worker_group, bus=settings.bus),
        make_session_factory(engine),
        batch_handlers=make_handlers(pseudonymiser, producer),
        producer=producer,
    )
