"""The composition root: builds the access service's collaborators from its settings."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.access.config import AccessSettings
from services.access.domain.audit import (
    AuditSigner,
    dev_signing_key,
    is_dev_key,
    load_private_key,
)
from services.access.storage.audit_store import AuditTrail
from services.access.storage.migrate import migrate, migrate_checkpoints
from services.access.storage.refusals import RefusalLedger
from services.access.workspace.kube_api import KubeApi
from services.access.workspace.kubernetes import KubernetesJobRunner
from services.access.workspace.runner import JobRunner, LocalJobRunner
from services.runtime.auth import TokenVerifier, configured_verifier
from services.runtime.bus.api import Bus
from services.runtime.db import make_engine, make_session_factory
from services.runtime.delivery import Worker
from services.runtime.settings import Environment, read_secret_file

__all__ = ["AccessContext", "audit_signer", "build_context", "build_worker", "job_runner"]


@dataclass
class AccessContext:
    """Everything a request, a job or a handler needs; built once per process."""

    settings: AccessSettings
    engine: Engine
    checkpoint_engine: Engine
    sessions: sessionmaker[Session]
    audit: AuditTrail
    refusals: RefusalLedger
    verifier: Callable[[], TokenVerifier]
    pseudonym_master: bytes
    extract_slots: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(1)
    )
    job_slots: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(1)
    )
    """Analysis jobs (and airlock checks) run one at a time per process."""
    runner: JobRunner = field(default_factory=LocalJobRunner)
    """Where jobs run (``job_runner.kind``): bubblewrap here, or a Kubernetes Job."""
    replica: str = field(default_factory=lambda: f"{socket.gethostname()[:60]}/{uuid.uuid4().hex}")
    """This process, as the owner of the jobs it runs (``api/job_leases.py``)."""

    def dispose(self) -> None:
        self.engine.dispose()
        if self.checkpoint_engine is not self.engine:
            self.checkpoint_engine.dispose()


def audit_signer(settings: AccessSettings) -> AuditSigner:
    """The key that signs the audit trail: the mounted key file, or in dev (only) the
    publicly known development key. A development key is refused outside dev, whether
    implied or copied into a file."""
    dev = settings.environment is Environment.DEV
    path = settings.audit_signing_key_file
    if path is None:
        if not dev:
            raise ValueError(
                "audit_signing_key_file must name the audit signing key outside dev "
                "(`fjo audit keygen` makes one)"
            )
        return AuditSigner(dev_signing_key())
    key = load_private_key(read_secret_file(path))
    if is_dev_key(key.public_key()) and not dev:
        raise ValueError("the audit signing key is the development key: refused outside dev")
    return AuditSigner(key)


def job_runner(settings: AccessSettings) -> JobRunner:
    """The adapter ``job_runner.kind`` names."""
    r, jobs = settings.job_runner, settings.workspace.jobs
    if r.kind == "kubernetes":
        api = KubeApi(r.api_url, r.namespace, r.token_file, r.ca_file)
        return KubernetesJobRunner(api, r, settings.extracts.directory, log_bytes=jobs.log_bytes)
    return LocalJobRunner(bwrap=jobs.bwrap, uid=jobs.sandbox_uid)


def build_context(
    settings: AccessSettings,
    *,
    verifier: TokenVerifier | None = None,
    public_key: Ed25519PublicKey | None = None,
) -> AccessContext:
    """Open the databases (migrating them when configured) and wire the collaborators.

    With ``public_key`` the context holds no signing key: it verifies the audit trail (a
    third party's ``fjo audit verify --public-key``) and cannot append to it.
    """
    engine = make_engine(settings.database_url)
    checkpoint_engine = (
        make_engine(settings.checkpoint_database_url)
        if settings.checkpoint_database_url
        else engine
    )
    if settings.migrate_on_start:
        migrate(engine)
        if checkpoint_engine is not engine:
            migrate_checkpoints(checkpoint_engine)
    sessions = make_session_factory(engine)
    audit = AuditTrail(
        signer=None if public_key is not None else audit_signer(settings),
        checkpoint_engine=checkpoint_engine,
        public_key=public_key,
        allow_dev_key=settings.environment is Environment.DEV,
    )
    audit.install(sessions)
    cached: list[TokenVerifier] = [verifier] if verifier is not None else []

    def verifier_provider() -> TokenVerifier:
        if not cached:
            cached.append(configured_verifier(settings))
        return cached[0]

    return AccessContext(
        settings=settings,
        engine=engine,
        checkpoint_engine=checkpoint_engine,
        sessions=sessions,
        audit=audit,
        refusals=RefusalLedger(audit, sessions, settings.audit),
        verifier=verifier_provider,
        pseudonym_master=settings.pseudonym_master_key.get_secret_value().encode(),
        runner=job_runner(settings),
    )


def build_worker(settings: AccessSettings, bus: Bus, ctx: AccessContext) -> Worker:
    """The research-store worker on pseudonymised records and link results.

    The caller owns ``bus`` and ``ctx`` and closes them after the worker.
    """
    from contracts.services import Service
    from services.access.handlers import batch_handlers, dispatch_key
    from services.access.storage.models import processed_messages
    from services.runtime.worker_process import worker_config

    return Worker(
        bus,
        worker_config(Service.ACCESS, group_id=settings.worker_group, bus=settings.bus),
        ctx.sessions,
        batch_handlers=batch_handlers(ctx.audit),
        dispatch_key=dispatch_key,
        processed_table=processed_messages,
    )
