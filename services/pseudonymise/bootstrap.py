"""The composition root of pseudonymise: settings in, a ready worker out."""

from __future__ import annotations

import logging
from collections.abc import Callable
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
from services.pseudonymise.domain.vault import KeyEncryptionKey
from services.pseudonymise.handlers import make_handlers
from services.pseudonymise.reencode import ReencodeResult, reencode
from services.pseudonymise.vault import Vault
from services.runtime.bus.api import Bus
from services.runtime.bus.factory import bus_from_settings
from services.runtime.db import make_engine, make_session_factory
from services.runtime.delivery import Worker
from services.runtime.migrations import upgrade
from services.runtime.settings import Environment
from services.runtime.worker_process import worker_config

__all__ = [
    "MIGRATIONS",
    "VERSION_TABLE",
    "SyntheticPostcodesError",
    "build_pseudonymiser",
    "build_vault",
    "build_worker",
    "load_keyring",
    "load_postcodes",
    "rewrap_vault",
    "run_reencode",
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
    ring = KeyRing.from_files(
        paths,
        current,
        retired=settings.retired_key_versions,
        record_token_version=settings.record_token_key_version,
    )
    log.info("key ring loaded", extra={"key_versions": sorted(paths), "current": current})
    return ring


def _dev_key(path: Path, what: str) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_bytes(MasterKey.generate().material)
        log.warning("generated a dev %s; never use it outside dev", what)
    return path


def _dev_master_key(directory: Path) -> Path:
    return _dev_key(directory / "master-v1.key", "master key")


def build_vault(settings: PseudonymiseSettings) -> Vault:
    """The identifier vault's KEKs from their secret files; in dev, one generated on first use."""
    paths = dict(settings.vault_kek_files)
    if not paths:
        if settings.environment is not Environment.DEV:
            raise ValueError("no vault KEK configured")
        paths = {"dev1": _dev_key(settings.dev_key_dir / "vault-kek-dev1.key", "vault KEK")}
    keks = {kek_id: KeyEncryptionKey.from_file(kek_id, path) for kek_id, path in paths.items()}
    current = settings.current_kek_id or max(keks)
    log.info("vault KEKs loaded", extra={"kek_ids": sorted(keks), "current": current})
    return Vault(keks, current)


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
        batch_handlers=make_handlers(pseudonymiser, producer, build_vault(settings)),
        producer=producer,
    )


def run_reencode(
    settings: PseudonymiseSettings,
    *,
    key_version: int,
    shard: int = 0,
    shards: int = 1,
    on_progress: Callable[[str, int], None] | None = None,
) -> ReencodeResult:
    """``fjo pseudonymise reencode``: every vaulted person's keys under ``key_version``."""
    ring = load_keyring(settings)
    pseudonymiser = Pseudonymiser(ring, load_postcodes(settings), version=key_version)
    engine = make_engine(settings.database_url)
    bus = bus_from_settings(settings.bus)
    producer = bus.producer()
    try:
        upgrade(engine, MIGRATIONS, version_table=VERSION_TABLE)
        return reencode(
            make_session_factory(engine),
            build_vault(settings),
            pseudonymiser,
            producer,
            shard=shard,
            shards=shards,
            on_progress=on_progress,
        )
    finally:
        producer.close()
        bus.close()
        engine.dispose()


def rewrap_vault(settings: PseudonymiseSettings) -> int:
    """``fjo pseudonymise rewrap``: every data key under the current KEK; rows changed."""
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine, MIGRATIONS, version_table=VERSION_TABLE)
        with make_session_factory(engine)() as session:
            return build_vault(settings).rewrap_all(session)
    finally:
        engine.dispose()
