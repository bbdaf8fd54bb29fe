"""Settings of the access service (environment prefix ``FJO_ACCESS_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.runtime.settings import Environment, ServiceSettings

__all__ = [
    "AccessSettings",
    "AuditSettings",
    "AuthSettings",
    "DisclosureSettings",
    "ExtractSettings",
    "JobRunnerSettings",
    "JobSettings",
    "QuerySettings",
    "RetentionSettings",
    "WorkspaceSettings",
]


class AuthSettings(BaseModel):
    """Who may call access: the token issuer, our audience, and where the keys come from."""

    issuer: str = Field("https://dev.fjo.invalid", description="Expected `iss` of tokens.")
    audience: str = Field("fjo-access", description="Expected `aud` of tokens.")
    jwks_url: str | None = Field(
        None, description="JWKS of the organisation's OIDC issuer; required outside dev."
    )
    dev_key_file: Path = Field(
        Path("var/fjo/dev-issuer.pem"),
        description="Signing key of the local dev issuer (`fjo token`); dev only.",
    )


class DisclosureSettings(BaseModel):
    """Extract-level disclosure control defaults (a project may be stricter, never laxer)."""

    k: int = Field(10, ge=2, description="Minimum rows sharing each quasi-identifier class.")
    mode: Literal["suppress", "refuse"] = Field(
        "suppress", description="Suppress rare quasi-identifier values, or refuse the extract."
    )
    max_suppressed_fraction: float | None = Field(
        None, gt=0, le=1, description="Refuse when suppression would touch more rows than this."
    )
    join_k: int = Field(
        3,
        ge=2,
        description="Join guard: every row's whole content (all but record and person "
        "pseudonyms) is shared by at least this many rows, so no row of one project's extract "
        "matches a single row of another's.",
    )


class ExtractSettings(BaseModel):
    """Where extracts are built and how often they may be requested."""

    directory: Path = Field(
        Path("var/fjo/extracts"),
        description="Root folder of the project workspaces: `<project>/extracts/<extract>/` "
        "holds each built extract, beside the workspace's query results, jobs and outputs.",
    )
    rate_limit: int = Field(
        5, ge=1, description="Extract requests one researcher may make per project per window."
    )
    rate_window_s: int = Field(3600, ge=1, description="Length of the rate-limit window.")
    batch_rows: int = Field(50_000, ge=1000, description="Rows read per database round trip.")


class QuerySettings(BaseModel):
    """Limits of one SQL query over a workspace (DuckDB, in the API process)."""

    memory_mb: int = Field(256, ge=16, description="DuckDB memory_limit; no spilling to disk.")
    threads: int = Field(1, ge=1, le=16, description="DuckDB threads per query.")
    timeout_s: float = Field(10.0, gt=0, description="Wall-clock limit; the query is interrupted.")
    max_rows: int = Field(
        10_000, ge=1, description="A result with more rows is refused (aggregate or filter)."
    )


class JobSettings(BaseModel):
    """Limits and runtime of analysis jobs (a bubblewrap sandbox per job, docs/workspace.md)."""

    bwrap: str = Field("bwrap", description="The bubblewrap executable.")
    sandbox_uid: int = Field(
        65534,
        ge=1,
        description="Unprivileged uid (and gid) a job runs as when access runs as root; "
        "otherwise the job keeps access's own uid inside a user namespace.",
    )
    cpu_s: int = Field(120, ge=1, description="CPU seconds (RLIMIT_CPU).")
    memory_mb: int = Field(3072, ge=64, description="Address space (RLIMIT_AS).")
    wall_s: float = Field(600.0, gt=0, description="Wall-clock deadline; then the job is killed.")
    max_processes: int = Field(64, ge=1, description="Processes of the job's uid (RLIMIT_NPROC).")
    max_open_files: int = Field(256, ge=16, description="Open files (RLIMIT_NOFILE).")
    max_file_mb: int = Field(512, ge=1, description="Largest file a job may write (RLIMIT_FSIZE).")
    log_bytes: int = Field(1_000_000, ge=1000, description="Log kept per job (its tail).")
    max_script_bytes: int = Field(200_000, ge=100, description="Largest script accepted.")
    packages: tuple[str, ...] = Field(
        ("acro", "duckdb", "matplotlib", "numpy", "pandas", "pyarrow", "scipy", "statsmodels"),
        description="The allow-list: packages preinstalled in the job runtime that a job may "
        "name as requirements (nothing is installed at run time).",
    )


class JobRunnerSettings(BaseModel):
    """Where analysis jobs (and their leases) run: bubblewrap in access's own process tree,
    or a Kubernetes Job per job under a deny-all NetworkPolicy (docs/workspace.md)."""

    kind: Literal["local", "kubernetes"] = Field(
        "local", description="`local` (bubblewrap) or `kubernetes` (a batch/v1 Job per job)."
    )
    lease_s: float = Field(
        60.0,
        gt=0,
        description="A replica's lease on the jobs it owns, renewed every third of it; a job "
        "whose owner's lease has expired is failed by any live replica.",
    )
    namespace: str = Field("fjo", description="Namespace the Jobs run in (access's own).")
    api_url: str = Field(
        "https://kubernetes.default.svc", description="The Kubernetes API server, in cluster."
    )
    token_file: Path = Field(
        Path("/var/run/secrets/kubernetes.io/serviceaccount/token"),
        description="Access's projected ServiceAccount token (rotated; read at every call).",
    )
    ca_file: Path = Field(
        Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"),
        description="The cluster CA that signs the API server's certificate.",
    )
    image: str = Field(
        "ghcr.io/fjo/fjo:0.1.0",
        description="Image of the job pods: fjo's own (its Python and the allow-listed "
        "packages); the manifests copy access's image into it.",
    )
    python: str = Field("/opt/venv/bin/python", description="The job's Python in that image.")
    workspaces_claim: str = Field(
        "fjo-workspaces",
        description="PersistentVolumeClaim of the workspaces (ReadWriteMany), mounted by "
        "access at extracts.directory; a job's pod mounts only its project's subpaths.",
    )
    service_account: str = Field(
        "fjo-access-job", description="The job pods' ServiceAccount (no token, no Role)."
    )
    run_as_user: int = Field(10001, ge=1, description="Uid and gid of the job's container.")
    cpu: str = Field("1", description="CPU limit (and request) of a job's container.")
    ttl_s: int = Field(
        3600, ge=0, description="ttlSecondsAfterFinished: a Job access failed to delete goes."
    )
    poll_s: float = Field(2.0, gt=0, description="How often a running Job is read.")


class WorkspaceSettings(BaseModel):
    """Analysis inside the TRE: queries, jobs, dummy data and the airlock."""

    query: QuerySettings = Field(default_factory=QuerySettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    dummy_rows: int = Field(200, ge=1, le=100_000, description="Rows per dummy table.")
    check_wall_s: float = Field(
        300.0, gt=0, description="Deadline of one airlock check (ACRO in the sandbox)."
    )


class AuditSettings(BaseModel):
    """How refused requests are audited: per source and window, a few in full, then counted."""

    refusal_window_s: int = Field(60, ge=1, description="Length of a refusal-counting window.")
    refusal_burst: int = Field(
        5, ge=1, description="Refusals per source and window audited in full; then counted."
    )
    refusal_sources: int = Field(
        1000,
        ge=1,
        description="Sources counted apart per window; further ones share the source `*`.",
    )


class RetentionSettings(BaseModel):
    """How long access keeps what a project derived from the research store once the project
    has ended (closed, or expired when its approved access ran out); `fjo access retention
    run` deletes it then, with a deletion certificate in the audit trail (docs/access.md)."""

    workspace_days: int = Field(
        90,
        ge=0,
        description="Days after a project ends until its workspace is deleted: extracts, "
        "query results, job outputs, unreleased outputs and their records (released outputs "
        "are kept: they left the TRE). An approval's `retention_days` overrides it when the "
        "data-sharing agreement sets another period.",
    )


class AccessSettings(ServiceSettings):
    """Configuration of access; nothing else in the service reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="FJO_ACCESS_", env_nested_delimiter="__", hide_input_in_errors=True
    )

    service_name: str = "access"
    database_url: str = "sqlite:///var/fjo/access.db"
    checkpoint_database_url: str | None = Field(
        None,
        description="Database of the signed audit checkpoints; keep it apart from the audit "
        "log (None: a table in the access database, which does not protect against someone "
        "who can delete from both).",
    )
    pseudonym_master_key: SecretStr = Field(
        SecretStr("dev-insecure-access-pseudonym-master-key"),
        description="Master secret the per-project pseudonym keys are derived from (HKDF).",
    )
    audit_signing_key_file: Path | None = Field(
        None,
        description="Secret file holding the Ed25519 private key (PEM, `fjo audit keygen`) "
        "that signs every audit entry and checkpoint; required outside dev (in dev: the "
        "publicly known development key, refused everywhere else).",
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)
    disclosure: DisclosureSettings = Field(default_factory=DisclosureSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    extracts: ExtractSettings = Field(default_factory=ExtractSettings)
    workspace: WorkspaceSettings = Field(default_factory=WorkspaceSettings)
    job_runner: JobRunnerSettings = Field(default_factory=JobRunnerSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    migrate_on_start: bool = Field(True, description="Run the Alembic migrations at start-up.")
    worker_group: str = Field("access", description="Consumer group of the research store.")

    @model_validator(mode="after")
    def _production_needs_real_keys(self) -> Self:
        if self.environment is not Environment.DEV and not self.auth.jwks_url:
            raise ValueError("auth.jwks_url is required outside dev (the dev issuer is dev only)")
        return self
