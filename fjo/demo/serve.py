"""``fjo demo --serve``: after the story, the dev sign-in and the portal next to the stack,
until Ctrl-C (the caller then stops the stack as usual)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from fjo.stack.embedded import EmbeddedStack, sqlite_url
from fjo.stack.processes import (
    StackProcess,
    base_env,
    fjo_command,
    free_port,
    spawn,
    wait_ready,
)
from services.runtime.settings import ENVIRONMENT_VARIABLE

__all__ = ["serve_portal"]


def serve_portal(
    stack: EmbeddedStack, issuer: str, *, echo: Callable[[str], Any], ready_timeout_s: float
) -> None:
    """Start ``fjo idp`` and ``fjo serve portal api`` on the stack, print where they are and
    who can sign in, and keep them up until Ctrl-C; always stops the two processes."""
    from fjo.dev_idp import persona_summary

    state = stack.state_dir
    idp_port, portal_port = free_port(), free_port()
    idp_url, portal_url = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{portal_port}"
    # Every worker replica's probe port: the status page reads each one's /status.
    workers = {
        sp.name: f"http://127.0.0.1:{sp.port}"
        for sp in stack.recorded().processes
        if sp.role == "worker"
    }
    env = base_env() | {
        ENVIRONMENT_VARIABLE: "dev",  # explicitly: unset, the portal runs as prod
        "FJO_PORTAL_DATABASE_URL": sqlite_url(state / "portal.db"),
        "FJO_PORTAL_OIDC__ISSUER": issuer,
        "FJO_PORTAL_OIDC__DISCOVERY_URL": f"{idp_url}/.well-known/openid-configuration",
        "FJO_PORTAL_APIS__ACCESS": stack.url("access-api"),
        "FJO_PORTAL_APIS__LINK": stack.url("link-api"),
        "FJO_PORTAL_APIS__INGEST": stack.url("ingest-api"),
        "FJO_PORTAL_STATUS_WORKERS": json.dumps(workers),
    }
    commands = {
        "idp": [
            *fjo_command(),
            "idp",
            "--port",
            str(idp_port),
            "--issuer",
            issuer,
            "--base-url",
            idp_url,
            "--key-file",
            str(stack.issuer_key),
            "--redirect-uri",
            f"{portal_url}/auth/callback",
        ],
        "portal-api": [*fjo_command(), "serve", "portal", "api", "--port", str(portal_port)],
    }
    procs = []
    try:
        for name, command in commands.items():
            log = state / "logs" / f"{name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            proc = spawn(command, env=env, log_path=log)
            port = idp_port if name == "idp" else portal_port
            procs.append((proc, StackProcess(name, name, "api", proc.pid, port, str(log), command)))
        deadline = time.monotonic() + ready_timeout_s
        for proc, sp in procs:
            problem = wait_ready(proc, sp, deadline)
            if problem:
                raise RuntimeError(problem)
        echo(f"portal: {portal_url}/")
        echo("dev personas (pick one on the sign-in page):")
        for line in persona_summary():
            echo(f"  {line}")
        echo("Ctrl-C stops the portal and the stack")
        while all(proc.poll() is None for proc, _ in procs):
            time.sleep(0.5)
        echo("a portal process exited; stopping")
    except KeyboardInterrupt:
        echo("stopping the portal and the stack")
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc, _ in procs:
            try:
                proc.wait(timeout=10)
            except Exception:
                proc.kill()
