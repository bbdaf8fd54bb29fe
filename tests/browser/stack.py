"""The portal's test stack: the dev OIDC provider, access, link, ingest and the portal, each
a real process on 127.0.0.1 (the way ``fjo demo --serve`` runs them), with seeded data, and
access's worker with its probe port, which the portal's status page reads."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from services.runtime.auth import DevIssuer

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PortalStack:
    root: Path
    ports: dict[str, int] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def issuer(self) -> DevIssuer:
        return DevIssuer.from_file(self.root / "dev-issuer.pem", issuer=self.url("idp"))

    def env(self) -> dict[str, str]:
        r, issuer = self.root, self.url("idp")
        bus = f"sqlite:///{r / 'bus.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FJO_")}
        env["FJO_ENVIRONMENT"] = "dev"  # one platform-wide setting; unset, everything is prod
        for service in ("ACCESS", "LINK", "INGEST"):
            env |= {
                f"FJO_{service}_DATABASE_URL": f"sqlite:///{r / (service.lower() + '.db')}",
                f"FJO_{service}_AUTH__ISSUER": issuer,
                f"FJO_{service}_AUTH__DEV_KEY_FILE": str(r / "dev-issuer.pem"),
                f"FJO_{service}_BUS__BACKEND": "embedded",
                f"FJO_{service}_BUS__EMBEDDED_URL": bus,
                f"FJO_{service}_TELEMETRY__LOG_JSON": "true",
            }
        env |= {
            "FJO_ACCESS_EXTRACTS__DIRECTORY": str(r / "extracts"),
            "FJO_LINK_DEV_KEY_DIR": str(r / "keys"),
            "FJO_INGEST_SPOOL_DIR": str(r / "spool"),
            # Ingest's topics are identifiable: they live in a bus file of their own.
            "FJO_INGEST_BUS__EMBEDDED_IDENTIFIABLE_URL": f"sqlite:///{r / 'identifiable-bus.db'}",
            "FJO_PORTAL_DATABASE_URL": f"sqlite:///{r / 'portal.db'}",
            "FJO_PORTAL_OIDC__ISSUER": issuer,
            "FJO_PORTAL_APIS__ACCESS": self.url("access"),
            "FJO_PORTAL_APIS__LINK": self.url("link"),
            "FJO_PORTAL_APIS__INGEST": self.url("ingest"),
            "FJO_PORTAL_STATUS_WORKERS": json.dumps({"access-worker": self.url("access-worker")}),
            # One item per queue page: the checkers' queue (two outputs) pages on with its
            # Next link; every other queue of the journeys holds one item.
            "FJO_PORTAL_PAGE_SIZE": "1",
        }
        return env

    def start(self, name: str, *args: str) -> None:
        log = (self.root / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "fjo"), *args],
            cwd=REPO,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)

    def wait(self, name: str, timeout_s: float = 240.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url(name)}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        log = (self.root / f"{name}.log").read_text()[-3000:]
        raise RuntimeError(f"{name} did not become ready:\n{log}")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _seed_access(stack: PortalStack) -> None:
    """Family-court records in access's research store (as the worker would write them)."""
    from services.access.bootstrap import build_context
    from services.access.config import AccessSettings
    from services.access.storage.research_store import apply_link_result, apply_record
    from services.runtime.db import transaction
    from tests.integration.access.conftest import family_court_data

    settings = AccessSettings(
        environment="dev",
        database_url=f"sqlite:///{stack.root / 'access.db'}",
        extracts={"directory": stack.root / "extracts"},
    )
    ctx = build_context(settings, verifier=stack.issuer.verifier(audience="fjo-access"))
    records, links = family_court_data()
    with transaction(ctx.sessions) as s:
        for record in records:
            apply_record(s, record)
        for link in links:
            apply_link_result(s, link)
    ctx.dispose()


REVIEW_TOKENS = ("R" * 22 + "cmVjb3JkLW9uZQ", "R" * 22 + "cmVjb3JkLXR3bw")


def _seed_link(stack: PortalStack) -> None:
    """Two open possible matches in link's review queue, with their evidence."""
    from sqlalchemy import insert

    from services.link import storage as t
    from services.link.bootstrap import MIGRATIONS, VERSION_TABLE
    from services.runtime.bus.factory import make_bus
    from services.runtime.db import make_engine
    from services.runtime.migrations import upgrade
    from services.runtime.topics import topic_specs

    bus = make_bus(
        "embedded",
        database_url=f"sqlite:///{stack.root / 'bus.db'}",
        identifiable_url=f"sqlite:///{stack.root / 'identifiable-bus.db'}",
    )
    bus.create_topics(topic_specs())
    bus.close()
    engine = make_engine(f"sqlite:///{stack.root / 'link.db'}")
    upgrade(engine, MIGRATIONS, version_table=VERSION_TABLE)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for n, token in enumerate(REVIEW_TOKENS):
            candidate = "C" * 22 + f"Y2FuZGlkYXRl{n}"
            conn.execute(
                insert(t.results).values(
                    record_token=token,
                    record_type="child",
                    spine_token=None,
                    candidate_token=candidate,
                    alf=None,
                    status=90,
                    detail_status=90,
                    match_probability=0.7 - n / 10,
                    model_version="fs-test",
                    sequence=1,
                    updated_at=now,
                )
            )
            values = {
                "record_token": token,
                "candidate_token": candidate,
                "match_probability": 0.7 - n / 10,
                "state": "open",
                "model_version": "fs-test",
                "created_at": now,
            }
            if "evidence" in t.review_queue.c:
                values["evidence"] = json.dumps(_EVIDENCE)
            conn.execute(insert(t.review_queue).values(**values))
    engine.dispose()


_EVIDENCE = {
    "prior": -9.5,
    "comparisons": [
        {"comparison": "forename", "level": "nickname / Welsh variant", "weight": 6.1},
        {"comparison": "surname", "level": "exact", "weight": 7.4},
        {"comparison": "date of birth", "level": "day/month swapped", "weight": 3.2},
        {"comparison": "sex", "level": "exact", "weight": 0.9},
        {"comparison": "household", "level": "sector", "weight": -6.8},
    ],
}


@contextmanager
def portal_stack(root: Path) -> Iterator[PortalStack]:
    stack = PortalStack(root)
    for name in ("idp", "access", "link", "ingest", "portal", "access-worker"):
        stack.ports[name] = free_port()
    try:
        callback = f"{stack.url('portal')}/auth/callback"
        stack.start(
            "idp",
            "idp",
            "--port",
            str(stack.ports["idp"]),
            "--key-file",
            str(root / "dev-issuer.pem"),
            "--redirect-uri",
            callback,
        )
        stack.wait("idp")
        _seed_access(stack)
        _seed_link(stack)
        for name in ("access", "link", "ingest", "portal"):
            stack.start(name, "serve", name, "api", "--port", str(stack.ports[name]))
        port = str(stack.ports["access-worker"])
        stack.start("access-worker", "serve", "access", "worker", "--probe-port", port)
        for name in ("access", "link", "ingest", "portal", "access-worker"):
            stack.wait(name)
        yield stack
    finally:
        stack.stop()
