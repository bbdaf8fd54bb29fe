"""Thin entrypoint of the access service's HTTP API (its worker is built by
``services.access.bootstrap.build_worker``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.access.api.airlock import airlock_router
from services.access.api.deps import RequestSource, auth_dependency
from services.access.api.extracts import extracts_router, recover_interrupted
from services.access.api.job_leases import LeaseKeeper
from services.access.api.jobs import jobs_router, recover_interrupted_jobs
from services.access.api.objections import objections_router
from services.access.api.projects import projects_router
from services.access.api.register import register_router
from services.access.api.researchers import researchers_router
from services.access.api.workspace import workspace_router
from services.access.bootstrap import AccessContext, build_context
from services.access.config import AccessSettings
from services.runtime.app import create_app as create_base_app
from services.runtime.auth import TokenVerifier

__all__ = ["create_app"]

_DESCRIPTION = """\
The gate of the trusted research environment: safe projects (lifecycle and approvals), safe
people (researchers and accreditation), safe data (project-specific extracts with
pseudonyms and k-anonymity), safe outputs (automated checks, two-person release) and a
tamper-evident audit trail. Every endpoint but the public register (`/v1/register/...`)
needs a bearer token and checks authorisation on the object it touches; objects a caller may
not see answer 404. Errors are
`application/problem+json`.
"""


def create_app(
    settings: AccessSettings | None = None,
    *,
    verifier: TokenVerifier | None = None,
    context: AccessContext | None = None,
) -> FastAPI:
    """The access HTTP API."""
    ctx = context or build_context(settings or AccessSettings(), verifier=verifier)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ctx.audit.open(ctx.sessions)
        ctx.refusals.flush()  # windows a stopped replica left counted
        recover_interrupted(ctx)
        recover_interrupted_jobs(ctx)
        leases = LeaseKeeper(ctx)
        leases.start()
        yield
        leases.stop()
        ctx.refusals.flush(everything=True)
        ctx.dispose()

    def database_ready() -> None:
        with ctx.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    app = create_base_app(
        title="fjo access",
        version="0.1.0",
        description=_DESCRIPTION,
        readiness={"database": database_ready},
        lifespan=lifespan,
        docs_assets=ctx.settings.docs_assets_dir,
    )
    app.state.access = ctx
    app.add_middleware(RequestSource)
    auth = auth_dependency(ctx)
    for router in (
        researchers_router(ctx, auth),
        projects_router(ctx, auth),
        extracts_router(ctx, auth),
        workspace_router(ctx, auth),
        jobs_router(ctx, auth),
        airlock_router(ctx, auth),
        objections_router(ctx, auth),
    ):
        app.include_router(router)
    app.include_router(register_router(ctx))  # public: no token (docs/access.md, "Register")
    return app
