"""``fjo demo``: the whole platform on one machine, from partners' pushes to a researcher's extract.

Steps: build the synthetic world; start every service role as its own process on SQLite and
the embedded bus (``fjo.stack.embedded``); push the spine, then the two Cafcass agencies' feeds,
over HTTP with each partner's own dev token (``fjo push``'s resumable upload); watch the
pipeline drain (bus offsets and consumer-group lag, research-store rows, link decisions);
run the researcher story on the access API (register, create, approve by a different
person, activate, request, wait, download); evaluate linkage against the ground truth;
scan everything downstream of pseudonymise for the world's identifiers; write
``demo-output/`` with the extract, its dictionary and manifest, ``report.html`` and
``report.json``. Every process it started is stopped on the way out, also on Ctrl-C.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from fjo.stack.embedded import EmbeddedStack
from fjo.stack.processes import stop_spawned
from synth.world import FEEDS, World, WorldConfig, build_world, write_world

__all__ = ["DemoFailed", "DemoOptions", "DemoResult", "Interrupts", "researcher_story", "run_demo"]

ISSUER = "https://dev.fjo.invalid"
STAGES = (
    ("ingest", "ingest.records.v1", None),
    ("pseudonymise", "pseudonymise.records.v1", None),
    ("link", "link.results.v1", None),
    ("access", None, "research store rows"),
)


@dataclass(frozen=True)
class DemoOptions:
    """What ``fjo demo`` does; the defaults are ``make demo``'s."""

    out: Path = Path("demo-output")
    state_dir: Path = Path("var/demo")
    world: WorldConfig = field(default_factory=WorldConfig)
    drain_timeout_s: float = 900.0
    ready_timeout_s: float = 120.0
    part_bytes: int = 2 * 1024 * 1024
    quiet: bool = False
    serve: bool = False
    """After the story, keep the stack up with the portal and the dev sign-in until Ctrl-C."""


@dataclass
class DemoResult:
    """What the demo measured; ``report.json`` holds the same."""

    out: Path
    report: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.report.get("ok"))


class DemoFailed(RuntimeError):
    """A step of the demo could not complete; the message says which and why."""


# ------------------------------------------------------------------------------- counters


def _connect(path: Path) -> sqlite3.Connection | None:
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def _scalar(path: Path, sql: str) -> int | None:
    conn = _connect(path)
    if conn is None:
        return None
    try:
        return int(conn.execute(sql).fetchone()[0] or 0)
    except sqlite3.Error:
        return None
    finally:
        conn.close()


@dataclass
class Counts:
    """One look at the pipeline: topic sizes, group lag, store rows."""

    at: float
    produced: dict[str, int]
    research_rows: int
    link_decisions: int
    link_results: int

    def stage(self, name: str) -> int:
        if name == "access":
            return self.research_rows
        topic = {
            "ingest": "ingest.records.v1",
            "pseudonymise": "pseudonymise.records.v1",
            "link": "link.results.v1",
        }[name]
        return self.produced.get(topic, 0)


def read_counts(stack: EmbeddedStack) -> Counts:
    """Topic high-water marks from the embedded bus, rows from the stores."""
    produced: dict[str, int] = {}
    for path in (stack.bus_path, stack.identifiable_bus_path):
        conn = _connect(path)
        if conn is None:
            continue
        try:
            for topic, total in conn.execute(
                "SELECT topic, SUM(next_offset) FROM bus_partitions GROUP BY topic"
            ):
                produced[topic] = int(total or 0)
        except sqlite3.Error:
            pass
        finally:
            conn.close()
    access_db = stack.database("access")
    return Counts(
        at=time.monotonic(),
        produced=produced,
        research_rows=_scalar(access_db, "SELECT COUNT(*) FROM access_research_records") or 0,
        link_decisions=_scalar(access_db, "SELECT COUNT(*) FROM access_link_decisions") or 0,
        link_results=_scalar(stack.database("link"), "SELECT COUNT(*) FROM link_results") or 0,
    )


def group_lag(stack: EmbeddedStack, consumers: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """Records each (group, topic) has not committed yet; a group that never committed lags by
    the whole topic."""
    out: dict[str, int] = {}
    for group, topics in consumers.items():
        for topic in topics:
            conn = _connect(stack.bus_file(topic))  # identifiable topics: their own file
            if conn is None:
                continue
            try:
                row = conn.execute(
                    "SELECT COALESCE(SUM(p.next_offset - COALESCE(o.committed_offset, 0)), 0)"
                    " FROM bus_partitions p LEFT JOIN bus_group_offsets o"
                    " ON o.group_id = ? AND o.topic = p.topic AND o.partition = p.partition"
                    " WHERE p.topic = ?",
                    (group, topic),
                ).fetchone()
                out[f"{group} ← {topic}"] = int(row[0] or 0)
            except sqlite3.Error:
                pass
            finally:
                conn.close()
    return out


class Sampler:
    """Samples the pipeline's counts every ``every_s`` in a thread, for the throughput plot."""

    def __init__(self, stack: EmbeddedStack, every_s: float = 0.5) -> None:
        self.stack = stack
        self.every_s = every_s
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def sample(self) -> None:
        try:
            c = read_counts(self.stack)
        except Exception:
            return
        stages = {name: c.stage(name) for name, _t, _x in STAGES}
        stages["link decisions (access)"] = c.link_decisions
        self.samples.append((c.at - self.t0, stages))

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()


# ------------------------------------------------------------------------------ the story


class _Console:
    def __init__(self, quiet: bool, interrupts: Interrupts | None = None) -> None:
        from rich.console import Console

        self.quiet = quiet
        self.console = Console(stderr=False, highlight=False)
        self.interrupts = interrupts or Interrupts()

    def step(self, text: str) -> None:
        """A phase begins (and a pending interrupt ends the demo before it does)."""
        self.interrupts.check()
        if not self.quiet:
            self.console.print(f"[bold cyan]▶[/] {text}")

    def info(self, text: str) -> None:
        self.interrupts.check()
        if not self.quiet:
            self.console.print(f"  {text}", soft_wrap=True)

    @contextmanager
    def progress(self) -> Iterator[Any]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            TextColumn("  {task.description:<44}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            disable=self.quiet,
            transient=False,
        ) as progress:
            yield progress


class Interrupts:
    """Ctrl-C (SIGINT) and SIGTERM stop the demo at every phase, and it never ends as a
    success after one.

    The handlers are installed explicitly: a process that starts with SIGINT ignored (a
    background job of a non-interactive shell inherits that) would otherwise never hear
    Ctrl-C and run to the end. A signal raises ``KeyboardInterrupt`` and is remembered too:
    an exception raised while Python runs a finaliser is printed and dropped, so each phase
    checks (``check``) and the end does. While the stack stops (``deferred``) a signal is
    only remembered, so that a second Ctrl-C cannot leave processes running.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._defer = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers (a demo run inside a test thread)
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum: int, _frame: object) -> None:
        self.signum = signum
        if not self._defer:
            raise KeyboardInterrupt

    def clear(self) -> None:
        """Forget the signals so far (one that ended a wait for Ctrl-C)."""
        self.signum = None

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if a signal came (even one whose raise was lost)."""
        if self.signum is not None:
            raise KeyboardInterrupt

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._defer = True
        try:
            yield
        finally:
            self._defer = False


def run_demo(options: DemoOptions | None = None) -> DemoResult:
    """Run the demo end to end; always stops what it started."""
    o = options or DemoOptions()
    interrupts = Interrupts()
    interrupts.install()
    try:
        return _run_demo(o, interrupts)
    finally:
        interrupts.restore()


def _run_demo(o: DemoOptions, interrupts: Interrupts) -> DemoResult:
    ui = _Console(o.quiet, interrupts)
    timings: dict[str, float] = {}
    started = time.monotonic()

    state_dir = o.state_dir.resolve()
    out = o.out.resolve()
    if state_dir.exists():
        # A previous demo killed hard may have left its services running: stop exactly those.
        EmbeddedStack(state_dir / "stack", echo=ui.info).down()
        shutil.rmtree(state_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    ui.step(f"Building the synthetic world (seed {o.world.seed})")
    t = time.monotonic()
    world = build_world(o.world)
    world_dir = state_dir / "world"
    files = write_world(world, world_dir)
    timings["world"] = time.monotonic() - t
    for key, counts in world.counts().items():
        ui.info(f"{key:<44} {counts['valid']:>6} records + {counts['invalid']} invalid lines")

    stack = EmbeddedStack(state_dir / "stack", echo=ui.info)
    sampler: Sampler | None = None
    try:
        ui.step("Starting the services (SQLite + embedded bus, one process per role)")
        t = time.monotonic()
        stack.up(ready_timeout_s=o.ready_timeout_s)
        timings["start"] = time.monotonic() - t
        link_running = any(
            service == "link" and role == "worker" for service, role in stack.roles()
        )
        if not link_running:
            ui.info("[yellow]link has no worker yet: records will not be linked[/]")
        sampler = Sampler(stack)
        sampler.start()

        from services.runtime.auth import DevIssuer

        issuer = DevIssuer.from_file(stack.issuer_key, issuer=ISSUER)
        ingest_url = f"http://127.0.0.1:{stack.port('ingest-api')}"
        access_url = f"http://127.0.0.1:{stack.port('access-api')}"

        consumers = {
            "pseudonymise": ("ingest.records.v1",),
            "access": ("pseudonymise.records.v1", "link.results.v1"),
        }
        if link_running:
            consumers["link"] = ("pseudonymise.linkage-keys.v1",)

        receipts: dict[str, dict[str, Any]] = {}
        ui.step("The spine's owner (wds) pushes the spine over HTTP")
        t = time.monotonic()
        _push(ui, issuer, ingest_url, files, [f for f in FEEDS if f[0] == "wds"], receipts, o)
        _drain(ui, stack, consumers, world, receipts, o, spine_only=True, link=link_running)
        timings["spine"] = time.monotonic() - t

        ui.step("Cafcass Cymru and Cafcass England push their feeds over HTTP")
        t = time.monotonic()
        _push(ui, issuer, ingest_url, files, [f for f in FEEDS if f[0] != "wds"], receipts, o)
        _drain(ui, stack, consumers, world, receipts, o, spine_only=False, link=link_running)
        timings["feeds"] = time.monotonic() - t
        sampler.stop()

        ui.step("A researcher's project: create, approve (another person), activate, extract")
        t = time.monotonic()
        extract = researcher_story(issuer, access_url, out / "extract", info=ui.info)
        timings["extract"] = time.monotonic() - t

        ui.step("In the workspace: a query, a job, and one output checked by ACRO and released")
        t = time.monotonic()
        from fjo.demo.workspace_story import WorkspaceStoryFailed, workspace_story

        try:
            workspace = workspace_story(issuer, access_url, extract["project_id"], info=ui.info)
        except WorkspaceStoryFailed as exc:
            raise DemoFailed(f"workspace: {exc}") from None
        timings["workspace"] = time.monotonic() - t
        if o.serve:
            from fjo.demo.serve import serve_portal

            ui.step("The portal (fjo demo --serve): Ctrl-C stops it and the stack")
            serve_portal(stack, ISSUER, echo=print, ready_timeout_s=o.ready_timeout_s)
            interrupts.clear()  # Ctrl-C ends --serve's wait: the demo goes on to its report

        problems = [f"processes exited early: {x}" for x in stack.exited()]
    finally:
        with interrupts.deferred():
            if sampler is not None:
                sampler.stop()
            stopped = stack.down() + stop_spawned()
            if stopped and not o.quiet:
                ui.console.print(f"  stopped {stopped} service processes")

    # After the stop: every SQLite file is checkpointed and closed, so each byte is read once.
    ui.step("Evaluating linkage against the ground truth and scanning for leaks")
    t = time.monotonic()
    from fjo.demo.evaluation import evaluate
    from fjo.demo.leaks import leak_check
    from fjo.demo.report import write_report

    evaluation = evaluate(world, stack, link_running=link_running)
    leaks = leak_check(world, stack, out / "extract")
    timings["evaluate"] = time.monotonic() - t
    timings["total"] = time.monotonic() - started
    interrupts.check()
    report = write_report(
        out,
        world=world,
        receipts=receipts,
        evaluation=evaluation,
        leaks=leaks,
        extract=extract,
        workspace=workspace,
        samples=sampler.samples,
        timings=timings,
        link_running=link_running,
        world_dir=world_dir,
        problems=problems,
    )
    interrupts.check()
    return DemoResult(out=out, report=report)


def _push(
    ui: _Console,
    issuer: Any,
    url: str,
    files: dict[str, Path],
    feeds: list[tuple[str, str]],
    receipts: dict[str, dict[str, Any]],
    o: DemoOptions,
) -> None:
    from fjo.push_cli import push_file

    with ui.progress() as progress:
        for source, kind in feeds:
            path = files[f"{source}/{kind}"]
            token = issuer.mint(
                f"{source}-uploader", audience="fjo-ingest", roles=["partner"], source=source
            )
            task = progress.add_task(f"push {source}/{kind}", total=path.stat().st_size)

            def show(done: int, total: int, task: Any = task) -> None:
                ui.interrupts.check()
                progress.update(task, completed=done, total=total)

            t = time.monotonic()
            receipt = push_file(
                path,
                source=source,
                record_type=kind,
                url=url,
                token=token,
                part_bytes=o.part_bytes,
                state_file=path.with_name(path.name + ".fjo-push.json"),
                progress=show,
            )
            receipt["seconds"] = round(time.monotonic() - t, 3)
            receipts[f"{source}/{kind}"] = receipt


def _expected_rows(world: World, receipts: dict[str, dict[str, Any]], spine_only: bool) -> int:
    return sum(
        r["accepted"] for key, r in receipts.items() if not spine_only or key.startswith("wds/")
    )


def _drain(
    ui: _Console,
    stack: EmbeddedStack,
    consumers: dict[str, tuple[str, ...]],
    world: World,
    receipts: dict[str, dict[str, Any]],
    o: DemoOptions,
    *,
    spine_only: bool,
    link: bool,
) -> None:
    """Wait until every group has consumed everything and the research store holds every
    accepted record; progress bars per stage."""
    accepted = _expected_rows(world, receipts, spine_only)
    # Link publishes a result per incoming person record (spine persons build its index).
    persons = sum(
        r["accepted"]
        for key, r in receipts.items()
        if key.split("/")[1] in ("child", "adult-party")
    )
    deadline = time.monotonic() + o.drain_timeout_s
    ui.info("draining: until every service has consumed everything")
    with ui.progress() as progress:
        tasks = {
            "pseudonymise": progress.add_task("pseudonymise: records split", total=accepted),
            "access": progress.add_task("access: research store rows", total=accepted),
        }
        if link:
            label = "link: spine persons indexed" if spine_only else "link: linkage keys consumed"
            tasks["keys"] = progress.add_task(label, total=None)
        if link and not spine_only:
            tasks["link"] = progress.add_task("link: person records resolved", total=persons)
            tasks["decisions"] = progress.add_task("access: link decisions stored", total=persons)
        while True:
            ui.interrupts.check()
            c = read_counts(stack)
            lag = group_lag(stack, consumers)
            progress.update(
                tasks["pseudonymise"], completed=c.produced.get("pseudonymise.records.v1", 0)
            )
            progress.update(tasks["access"], completed=c.research_rows)
            if "keys" in tasks:
                keys = c.produced.get("pseudonymise.linkage-keys.v1", 0)
                behind = lag.get("link ← pseudonymise.linkage-keys.v1", 0)
                progress.update(tasks["keys"], completed=keys - behind, total=keys)
            if "link" in tasks:
                progress.update(tasks["link"], completed=c.produced.get("link.results.v1", 0))
                progress.update(tasks["decisions"], completed=c.link_decisions)
            done = c.research_rows >= accepted and all(v == 0 for v in lag.values())
            if "link" in tasks:
                done = done and c.link_decisions >= persons
            if done:
                return
            if exited := stack.exited():
                raise DemoFailed(
                    f"service processes exited: {exited}; logs in {stack.state_dir / 'logs'}"
                )
            if time.monotonic() > deadline:
                raise DemoFailed(
                    f"the pipeline did not drain in {o.drain_timeout_s:.0f} s: "
                    f"research rows {c.research_rows}/{accepted}, lag {lag}"
                )
            time.sleep(0.5)


# ------------------------------------------------------------------------- researcher story


CONTROLLER_SIGNATORIES = {"cafcass": "cerys", "cafcass-cymru": "catrin", "wds": "gareth"}
"""Who signs a project off for each data controller in the demo."""


def project_controllers(http: httpx.Client, pid: str, headers: dict[str, str]) -> list[str]:
    """The data controllers who must sign ``pid`` before the panel can approve it."""
    r = http.get(f"/v1/projects/{pid}", headers=headers)
    if r.status_code != 200:
        raise DemoFailed(f"read project: HTTP {r.status_code}")
    return list(r.json()["controllers_required"])


def researcher_story(
    issuer: Any,
    url: str,
    folder: Path,
    *,
    info: Callable[[str], Any] = lambda _text: None,
    extract_timeout_s: float = 600.0,
) -> dict[str, Any]:
    """The researcher's story on the access API at ``url``, with tokens from ``issuer``:
    register alice and bob (an administrator), alice creates a project, adds bob and submits
    it, each data controller signs it off, carol (the review panel) approves it, alice
    activates it, bob requests an extract, waits for it and downloads every file of its
    manifest into ``folder``. What happened;
    ``DemoFailed`` when a step is refused."""
    from services.access.domain.catalogue import CATALOGUE

    def h(subject: str, *roles: str) -> dict[str, str]:
        token = issuer.mint(subject, audience="fjo-access", roles=list(roles))
        return {"Authorization": f"Bearer {token}"}

    def ok(r: httpx.Response, what: str, *codes: int) -> dict[str, Any]:
        if r.status_code not in (codes or (200, 201)):
            raise DemoFailed(f"{what}: HTTP {r.status_code} {r.text[:300]}")
        body = r.json()
        return body if isinstance(body, dict) else {"items": body}

    until = (date.today() + timedelta(days=365)).isoformat()
    datasets = ["case", "child", "adult-party", "party-child-relationship", "hearing"]
    variables = sorted({v.name for d in datasets for v in CATALOGUE[d].variables})
    with httpx.Client(base_url=url, timeout=60.0) as http:
        for subject in ("alice", "bob"):
            ok(
                http.post(
                    "/v1/researchers",
                    json={
                        "subject": subject,
                        "display_name": subject.title(),
                        "accredited_until": until,
                    },
                    headers=h("root", "admin"),
                ),
                f"register {subject}",
            )
        project = ok(
            http.post(
                "/v1/projects",
                json={
                    "title": "Children and parents in family-court proceedings (demo)",
                    "datasets": datasets,
                    "variables": variables,
                },
                headers=h("alice", "researcher"),
            ),
            "create project",
        )
        pid = project["id"]
        ok(
            http.post(
                f"/v1/projects/{pid}/members",
                json={"subject": "bob"},
                headers=h("alice", "researcher"),
            ),
            "add member",
        )
        ok(http.post(f"/v1/projects/{pid}/submit", headers=h("alice", "researcher")), "submit")
        for controller in project_controllers(http, pid, h("root", "admin")):
            signatory = CONTROLLER_SIGNATORIES[controller]
            token = issuer.mint(
                signatory, audience="fjo-access", roles=["data-controller"], source=controller
            )
            ok(
                http.post(
                    f"/v1/projects/{pid}/sign-offs",
                    headers={"Authorization": f"Bearer {token}"},
                ),
                f"sign-off ({signatory} for {controller})",
            )
        ok(
            http.post(
                f"/v1/projects/{pid}/approve",
                json={
                    "datasets": datasets,
                    "variables": variables,
                    "window_start": "2012-01-01",
                    "window_end": "2024-12-31",
                    "members": ["alice", "bob"],
                    "access_until": until,
                    "quasi_identifiers": project["quasi_identifiers"],  # carol pins what she sees
                    # The demo downloads the extract to show and leak-check it: row-level
                    # download is egress the panel permits explicitly (off by default).
                    "egress": ["row-level-download"],
                },
                headers=h("carol", "approver"),
            ),
            "approve (carol, the review panel)",
        )
        ok(http.post(f"/v1/projects/{pid}/activate", headers=h("alice", "researcher")), "activate")
        info(f"project {pid}: approved by carol, active; bob requests an extract")
        extract = ok(
            http.post(f"/v1/projects/{pid}/extracts", headers=h("bob", "researcher")),
            "request extract",
            202,
        )
        eid = extract["id"]
        deadline = time.monotonic() + extract_timeout_s
        while extract["state"] in ("queued", "running"):
            if time.monotonic() > deadline:
                raise DemoFailed(f"the extract was not built in {extract_timeout_s:.0f} s")
            time.sleep(0.5)
            extract = ok(
                http.get(f"/v1/projects/{pid}/extracts/{eid}", headers=h("bob", "researcher")),
                "extract status",
            )
        if extract["state"] != "succeeded":
            raise DemoFailed(f"extract {extract['state']}: {extract.get('error')}")
        folder.mkdir(parents=True, exist_ok=True)
        manifest = ok(
            http.get(
                f"/v1/projects/{pid}/extracts/{eid}/files/manifest.json",
                headers=h("bob", "researcher"),
            ),
            "manifest",
        )
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        mismatched: list[str] = []
        for f in manifest.get("files", []):
            r = http.get(
                f"/v1/projects/{pid}/extracts/{eid}/files/{f['name']}",
                headers=h("bob", "researcher"),
            )
            if r.status_code != 200:
                raise DemoFailed(f"download {f['name']}: HTTP {r.status_code}")
            (folder / f["name"]).write_bytes(r.content)
            if hashlib.sha256(r.content).hexdigest() != f.get("sha256"):
                mismatched.append(f["name"])
        hashes = "match the manifest" if not mismatched else "MISMATCH: " + ", ".join(mismatched)
        info(
            f"extract {eid}: {len(manifest.get('files', []))} files, {extract.get('rows')} rows; "
            f"hashes {hashes}"
        )
    return {
        "project_id": pid,
        "extract_id": eid,
        "rows": extract.get("rows"),
        "files": manifest.get("files", []),
        "disclosure": extract.get("disclosure", {}),
        "hash_mismatches": mismatched,
        "approver": "carol",
        "requested_by": "bob",
    }
