"""What the tests that run pseudonymise and link as workers in one process share: their
settings on a platform, random key files, and running the workers until a condition holds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from services.link.config import LinkSettings
from services.pseudonymise.config import PseudonymiseSettings
from services.runtime.delivery import Worker
from tests.integration.conftest import Platform
from tests.postcodes import nspl_from_synthetic

__all__ = ["pipeline_settings", "random_key", "run_until"]


def random_key(path: Path) -> Path:
    """A file of 32 random bytes (a master key, a KEK, the ALF key)."""
    path.write_bytes(uuid.uuid4().bytes + uuid.uuid4().bytes)
    return path


def pipeline_settings(
    platform: Platform, tmp_path: Path, group: str
) -> tuple[PseudonymiseSettings, LinkSettings]:
    """Pseudonymise's and link's settings on ``platform``: their own databases and consumer
    groups (suffixed ``group``), fresh keys, the synthetic lookup in NSPL's layout."""
    pseudonymise = PseudonymiseSettings(
        database_url=platform.db_url("pseudonymise"),
        environment="test",
        worker_group=f"pseudonymise-{group}",
        master_key_files={1: random_key(tmp_path / "master-v1.key")},
        vault_kek_files={"k1": random_key(tmp_path / "vault-kek-k1.key")},
        postcode_lookup_file=nspl_from_synthetic(tmp_path / "onspd"),
    )
    link = LinkSettings(
        database_url=platform.db_url("link"),
        worker_group=f"link-{group}",
        environment="test",
        alf_key_file=random_key(tmp_path / "alf.key"),
    )
    return pseudonymise, link


def run_until(
    workers: list[Worker], until: Callable[[], bool], what: str, timeout_s: float = 180.0
) -> None:
    """Run the workers round by round until ``until`` holds for a few idle rounds."""
    # A deadline, not a number of rounds: on a broker whose group coordinator is not ready
    # yet (a fresh one), a round returns at once without polling anything.
    quiet, deadline = 0, time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for worker in workers:
            worker.run_once(timeout_s=0.1)
        quiet = quiet + 1 if until() else 0
        if quiet >= 5:  # done, and a few more idle rounds (re-checks) changed nothing
            return
    raise AssertionError(f"not done in {timeout_s:.0f} s: {what}")
