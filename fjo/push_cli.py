"""``fjo push``: a partner sends a delivery file to ingest, in resumable parts, and gets a receipt.

How it resumes: the file is cut, at record boundaries, into parts of about ``--part-bytes``
(a CSV part repeats the header row). Each part is one delivery with an ``Idempotency-Key``
derived from the file's SHA-256, the record type, the part size and the part's index, plus
an RFC 9530 ``Content-Digest``. A state file next to the file (``FILE.fjo-push.json``)
records every acknowledged part and its receipt. Run the same command again after an
interruption: acknowledged parts are skipped, and a part that was in flight is re-sent
under its key, so the server either returns its receipt or finishes it: nothing is
delivered twice. Line numbers in the printed receipt are the file's own.

Exit status: 0 delivered (the receipt is printed); 75 (``EXIT_RESUMABLE``, sysexits'
EX_TEMPFAIL) stopped by something that passes, a network failure or a busy server after every
retry: run the same command again to resume; 1 refused (the server's reason is printed: a
wrong agency, a token it will not take, a file that changed); 2 a usage error (click's).

Retries back off exponentially with jitter (so many partners cut off at once do not come
back at once), or as the server's ``Retry-After`` says. A 401 reads the token again: with
``--token-file`` (a file an agent keeps fresh) the part is re-sent with the renewed token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

__all__ = [
    "EXIT_RESUMABLE",
    "Part",
    "PushError",
    "PushInterrupted",
    "backoff",
    "plan_parts",
    "problem_text",
    "push",
    "push_file",
    "register",
]

_STATE_VERSION = 1
_READ_CHUNK = 1024 * 1024
_RETRIABLE = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


EXIT_RESUMABLE = 75
"""``fjo push`` stopped with parts left that the same command resumes (EX_TEMPFAIL)."""


class PushError(Exception):
    """The push stopped; what was acknowledged is in the state file, so it can resume."""


class PushInterrupted(PushError):
    """Stopped by something that passes (the network, a busy server) after every retry:
    running the same command again resumes."""


def backoff(attempt: int, rng: random.Random) -> float:
    """Seconds before retry ``attempt`` (0-based): exponential up to 30 s, with "equal
    jitter" (between half and all of it) so that clients cut off together spread out."""
    ceiling = min(30.0, 2.0**attempt)
    return rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class Part:
    """A slice of the file sent as one delivery."""

    index: int
    offset: int
    length: int
    first_line: int
    """File line number of the part's first record line."""
    sha256: str
    """SHA-256 (hex) of the part's body as sent (a CSV part includes the header row)."""


@dataclass
class Plan:
    """How a file is cut: its hash, its CSV header (if any), and its parts."""

    file_sha256: str
    size: int
    header: bytes
    parts: list[Part] = field(default_factory=list)


def plan_parts(path: Path, *, csv: bool, part_bytes: int) -> Plan:
    """Cut ``path`` at record boundaries into parts of about ``part_bytes`` (one pass)."""
    whole = hashlib.sha256()
    header = b""
    parts: list[Part] = []
    offset = 0
    line_number = 0
    part_start = part_first_line = 0
    part_hash: Any = None
    quotes = 0  # CSV: a record ends at a newline only outside quotes (even count so far)
    in_header = csv
    with path.open("rb") as handle:
        for line in handle:
            whole.update(line)
            line_number += 1
            if in_header:
                header += line
                offset += len(line)
                quotes += line.count(b'"')
                if quotes % 2 == 0:
                    in_header, quotes = False, 0
                continue
            if part_hash is None:
                part_hash = hashlib.sha256(header)
                part_start, part_first_line = offset, line_number
            part_hash.update(line)
            offset += len(line)
            if csv:
                quotes += line.count(b'"')
                at_boundary = quotes % 2 == 0
                if at_boundary:
                    quotes = 0
            else:
                at_boundary = True
            if at_boundary and offset - part_start >= part_bytes:
                parts.append(
                    Part(
                        len(parts),
                        part_start,
                        offset - part_start,
                        part_first_line,
                        part_hash.hexdigest(),
                    )
                )
                part_hash = None
    if part_hash is not None:
        parts.append(
            Part(
                len(parts), part_start, offset - part_start, part_first_line, part_hash.hexdigest()
            )
        )
    return Plan(whole.hexdigest(), offset, header, parts)


def _state_matches(state: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(state.get(k) == v for k, v in expected.items())


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _file_line(part: Part, line: int, csv: bool) -> int:
    # Part line 1 is the header row in CSV parts: data starts at part line 2.
    return part.first_line + line - (2 if csv else 1)


def _body(path: Path, header: bytes, part: Part, sent: Callable[[int], None]) -> Iterator[bytes]:
    if header:
        yield header
    with path.open("rb") as handle:
        handle.seek(part.offset)
        left = part.length
        while left > 0:
            chunk = handle.read(min(_READ_CHUNK, left))
            if not chunk:
                raise PushError("the file changed while it was being pushed")
            left -= len(chunk)
            sent(len(chunk))
            yield chunk


def problem_text(response: httpx.Response) -> str:
    """A problem document as one line: status, title and detail."""
    try:
        problem = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    title = problem.get("title", f"HTTP {response.status_code}")
    detail = problem.get("detail")
    return f"{response.status_code} {title}" + (f": {detail}" if detail else "")


def push_file(
    path: Path,
    *,
    source: str,
    record_type: str,
    url: str,
    token: str | Callable[[], str],
    part_bytes: int = 8 * 1024 * 1024,
    state_file: Path | None = None,
    retries: int = 5,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int, int], None] | None = None,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """Push ``path`` in parts, resuming from ``state_file``; the file's combined receipt.

    ``token`` may be a function: it is called again on a 401, and a different token is
    tried at once (a renewed one); the same token again stops the push."""
    csv = path.suffix.lower() == ".csv"
    media = "text/csv" if csv else "application/x-ndjson"
    plan = plan_parts(path, csv=csv, part_bytes=part_bytes)
    state_path = state_file or path.with_name(path.name + ".fjo-push.json")
    identity = {
        "version": _STATE_VERSION,
        "file_sha256": plan.file_sha256,
        "source": source,
        "record_type": record_type,
        "part_bytes": part_bytes,
        "parts_total": len(plan.parts),
    }
    state: dict[str, Any] = {}
    if state_path.exists():
        try:
            state = json.loads(state_path.read_text())
        except ValueError:
            state = {}
    if not _state_matches(state, identity):
        state = {**identity, "done": {}}
    done: dict[str, Any] = state["done"]
    tokens = token if callable(token) else (lambda: token)
    bearer = tokens()
    jitter = rng or random.Random()  # spreads retries out; nothing secret
    own_client = client is None
    http = client or httpx.Client(base_url=url, timeout=httpx.Timeout(60.0, read=600.0))
    total = sum(p.length for p in plan.parts)
    completed = sum(p.length for p in plan.parts if str(p.index) in done)
    if progress:
        progress(completed, total)
    try:
        for part in plan.parts:
            if str(part.index) in done:
                continue
            key = (
                f"fjo-push:{plan.file_sha256[:40]}:{record_type}:{part_bytes}:"
                f"{part.index + 1}of{len(plan.parts)}"
            )
            digest = base64.b64encode(bytes.fromhex(part.sha256)).decode()
            headers = {
                "Content-Type": media,
                "Idempotency-Key": key,
                "Content-Digest": f"sha-256=:{digest}:",
            }
            for attempt in range(retries + 1):
                sent = [0]

                def on_sent(n: int, sent: list[int] = sent, base: int = completed) -> None:
                    sent[0] += n
                    if progress:
                        progress(base + sent[0], total)

                try:
                    response = http.post(
                        "/v1/deliveries",
                        params={"record_type": record_type, "source": source},
                        content=_body(path, plan.header, part, on_sent),
                        headers={**headers, "Authorization": f"Bearer {bearer}"},
                    )
                except httpx.TransportError as exc:
                    if attempt == retries:
                        raise PushInterrupted(
                            f"part {part.index + 1}/{len(plan.parts)}: {type(exc).__name__}; "
                            "run the same command again to resume"
                        ) from exc
                    sleep(backoff(attempt, jitter))
                    continue
                if response.status_code in (200, 201):
                    receipt = response.json()
                    if receipt.get("status") != "complete":
                        raise PushError(f"part {part.index + 1}: receipt not complete")
                    done[str(part.index)] = {
                        **{
                            k: receipt[k]
                            for k in (
                                "delivery_id",
                                "received",
                                "accepted",
                                "rejected",
                                "duplicates",
                                "errors_omitted",
                            )
                        },
                        "errors": [
                            {**e, "line": _file_line(part, e["line"], csv)}
                            for e in receipt.get("errors", [])
                        ],
                    }
                    _save(state_path, state)
                    completed += part.length
                    if progress:
                        progress(completed, total)
                    break
                if response.status_code == 401 and attempt < retries:
                    renewed = tokens()
                    if renewed != bearer:  # expired mid-push and renewed: send it again
                        bearer = renewed
                        continue
                if response.status_code in _RETRIABLE:
                    if attempt < retries:
                        wait = response.headers.get("Retry-After", "")
                        sleep(float(wait) if wait.isdigit() else backoff(attempt, jitter))
                        continue
                    raise PushInterrupted(
                        f"part {part.index + 1}/{len(plan.parts)}: {problem_text(response)} "
                        f"after {retries + 1} attempts; run the same command again to resume"
                    )
                raise PushError(
                    f"part {part.index + 1}/{len(plan.parts)} refused: {problem_text(response)}"
                )
    finally:
        if own_client:
            http.close()
    return _combined(state, plan)


def _combined(state: dict[str, Any], plan: Plan) -> dict[str, Any]:
    done = state["done"]
    parts = [done[str(p.index)] for p in plan.parts]
    counts = {
        k: sum(p[k] for p in parts)
        for k in ("received", "accepted", "rejected", "duplicates", "errors_omitted")
    }
    return {
        "file_sha256": plan.file_sha256,
        "source": state["source"],
        "record_type": state["record_type"],
        "parts": len(parts),
        "delivery_ids": [p["delivery_id"] for p in parts],
        **counts,
        "errors": [e for p in parts for e in p["errors"]],
    }


def push(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="NDJSON (.ndjson/.jsonl) or CSV (.csv) file.",
        ),
    ],
    source: Annotated[
        str, typer.Option(help="Your agency, e.g. cafcass-cymru (must match your token).")
    ],
    record_type: Annotated[
        str,
        typer.Option(
            "--type",
            help="Record type: case, child, "
            "adult-party, party-child-relationship, hearing, "
            "spine-person.",
        ),
    ],
    url: Annotated[str, typer.Option(envvar="FJO_INGEST_URL", help="Ingest's base URL.")] = (
        "http://127.0.0.1:8000"
    ),
    token: Annotated[
        str | None,
        typer.Option(envvar="FJO_TOKEN", help="Bearer token (partner role, your agency)."),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            envvar="FJO_TOKEN_FILE",
            exists=True,
            dir_okay=False,
            readable=True,
            help="File holding the bearer token, read again on a 401 (an agent renews it).",
        ),
    ] = None,
    part_bytes: Annotated[int, typer.Option(min=1024, help="Approximate size of each part.")] = (
        8 * 1024 * 1024
    ),
    state_file: Annotated[
        Path | None, typer.Option(help="Resume state (default: FILE.fjo-push.json).")
    ] = None,
    retries: Annotated[int, typer.Option(min=0, help="Retries per part.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the receipt as JSON.")] = False,
) -> None:
    """Push a delivery file to ingest (resumable: re-run the same command after a failure).

    Exit status: 0 delivered; 75 stopped by the network or a busy server, run the same
    command again to resume; 1 refused (the reason is printed); 2 a usage error."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.table import Table

    console = Console(stderr=True)
    if not token and token_file is None:
        raise typer.BadParameter(
            "give --token, FJO_TOKEN or --token-file (dev: fjo token --subject me --role "
            f"partner --audience fjo-ingest --source {source})",
            param_hint="--token",
        )
    bearer: str | Callable[[], str] = token or ""
    if token_file is not None:
        path = token_file

        def bearer() -> str:
            return path.read_text(encoding="utf-8").strip()

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(f"push {file.name}", total=None)

        def show(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            receipt = push_file(
                file,
                source=source,
                record_type=record_type,
                url=url,
                token=bearer,
                part_bytes=part_bytes,
                state_file=state_file,
                retries=retries,
                progress=show,
            )
        except PushInterrupted as exc:
            console.print(f"[red]push stopped:[/red] {exc}")
            raise typer.Exit(EXIT_RESUMABLE) from None
        except PushError as exc:
            console.print(f"[red]push refused:[/red] {exc}")
            raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(receipt, indent=1))
        return
    out = Console()
    summary = Table(title=f"Receipt: {file.name} ({receipt['parts']} part(s))")
    for column in ("received", "accepted", "rejected", "duplicates"):
        summary.add_column(column, justify="right")
    summary.add_row(*(str(receipt[c]) for c in ("received", "accepted", "rejected", "duplicates")))
    out.print(summary)
    if receipt["errors"]:
        errors = Table(title="Rejected records (file line, field, reason)")
        for column in ("line", "field", "reason", "type"):
            errors.add_column(column)
        for error in receipt["errors"][:50]:
            errors.add_row(
                str(error["line"]), error["path"] or "(line)", error["message"], error["type"]
            )
        out.print(errors)
        more = len(receipt["errors"]) - 50 + receipt["errors_omitted"]
        if more > 0:
            out.print(f"... and {more} more errors (all rejected lines are in quarantine)")


def register(app: typer.Typer) -> None:
    """Add ``fjo push`` to the main command."""
    app.command("push")(push)
