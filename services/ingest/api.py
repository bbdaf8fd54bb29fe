"""Ingest's HTTP routes: the partners' door (push deliveries, read receipts), and the
operators' summary of what was quarantined.

Every delivery route needs a partner token; the partner's agency comes from the token's
``fjo_source`` claim and is the only source it may write as or read receipts of. The
quarantine summary needs an operator's (or administrator's) token and holds counts only.

The routes are declared once, here; ``install`` adds them to an app with what they need
(``Ingest`` on ``app.state.ingest``) and the one table that turns the delivery service's
exceptions into problem documents (``PROBLEMS``).
"""

import base64
import binascii
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from contracts.objections import ObjectionRequest
from contracts.records import RECORD_MODELS, RecordType, SourceAgency
from services.ingest.config import IngestSettings, LimitSettings
from services.ingest.deliveries import (
    DeliveryFailed,
    DeliveryInProgress,
    DeliveryService,
    IdempotencyKeyReused,
    Outcome,
)
from services.ingest.domain.framing import BodyTooLarge, FramingGuard, LineTooLong
from services.ingest.domain.parsing import (
    DeliveryFormat,
    FormatError,
    parse_csv,
    parse_json_items,
    parse_ndjson,
)
from services.ingest.domain.ratelimit import RateLimiter
from services.ingest.domain.validation import csv_list_fields, source_may_send
from services.ingest.objections import (
    ObjectionFailed,
    ObjectionInProgress,
    ObjectionOutcome,
    ObjectionService,
    RequestIdReused,
)
from services.ingest.producers import PoolExhausted
from services.ingest.schemas import (
    DeliveryPage,
    ObjectionReceipt,
    ObjectionsReceived,
    QuarantineSummary,
    Receipt,
)
from services.ingest.spool import iter_lines, spool_body
from services.runtime.app import problem_response
from services.runtime.auth import AuthenticatedRoute, Principal, app_principal
from services.runtime.pagination import INVALID_CURSOR, PageCursor, PageLimit
from services.runtime.problems import problem_type

__all__ = ["PROBLEMS", "Ingest", "Partner", "install", "router"]

log = logging.getLogger("fjo.ingest")

NDJSON_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/ndjson"})
CSV_TYPES = frozenset({"text/csv"})


@dataclass(frozen=True, slots=True)
class Partner:
    """An authenticated partner: its token subject and the agency it speaks for."""

    subject: str
    source: SourceAgency


def _problem(
    status: int, slug: str, title: str, detail: str | None = None, **extra: Any
) -> JSONResponse:
    headers = extra.pop("headers", None)
    return problem_response(
        status,
        title,
        detail=detail,
        type_=problem_type(slug),
        extra=extra or None,
        headers=headers,
    )


def _problem_doc(description: str, example_title: str, status: int) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {
                "example": {
                    "type": problem_type("example"),
                    "title": example_title,
                    "status": status,
                }
            }
        },
    }


_COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem_doc("No valid bearer token.", "Authentication required", 401),
    403: _problem_doc(
        "The token is not a partner's, or names another source.", "Source not allowed", 403
    ),
    429: _problem_doc(
        "The partner's rate limit is spent; see Retry-After.", "Too many deliveries", 429
    ),
}


def _example_lines() -> tuple[str, str]:
    child = dict(RECORD_MODELS[RecordType.CHILD].model_json_schema()["examples"][0])
    bad = {**child, "record_id": "CH-2019-000124", "date_of_birth": "2999-01-01"}
    ndjson = "\n".join(json.dumps(r, separators=(",", ":")) for r in (child, bad)) + "\n"
    csv = (
        "record_id,record_version,extracted_at,case_id,forename,surname,date_of_birth,sex,"
        "address.postcode,ethnicity\n"
        "CH-2019-000123,1,2024-05-01T09:30:00Z,CASE-2019-004567,Cerys,Jones,2018-11-20,2,"
        "CF10 1AA,white-british\n"
        "CH-2019-000124,1,2024-05-01T09:30:00Z,CASE-2019-004567,Dylan,Jones,2999-01-01,1,"
        "CF10 1AA,white-british\n"
    )
    return ndjson, csv


@dataclass(frozen=True, slots=True)
class Ingest:
    """What ingest's routes need from the app serving them (``app.state.ingest``)."""

    settings: IngestSettings
    service: Callable[[], DeliveryService]
    """The delivery service (there once the app's lifespan has started)."""
    principal: Callable[..., Principal]
    """The app's ``bearer_principal`` dependency (its token verifier)."""
    limiter: RateLimiter
    objections: Callable[[], ObjectionService]
    """The objection service (there once the app's lifespan has started)."""


def _ingest(request: Request) -> Ingest:
    return request.app.state.ingest  # type: ignore[no-any-return]


Context = Annotated[Ingest, Depends(_ingest)]

router = APIRouter(prefix="/v1", tags=["deliveries"], route_class=AuthenticatedRoute)


def install(app: FastAPI, ingest: Ingest) -> None:
    """Serve the ``/v1/deliveries`` routes on ``app`` with ``ingest``'s service and verifier."""
    app.state.ingest = ingest
    app.include_router(router)
    for kind, problem in PROBLEMS.items():
        app.add_exception_handler(kind, lambda _request, exc, problem=problem: problem(exc))


def partner(
    caller: Annotated[Principal, Depends(app_principal(lambda r: _ingest(r).principal))],
    ctx: Context,
) -> Partner:
    """The calling partner: a token with the partner role that names a known agency."""
    role = ctx.settings.auth.partner_role
    if not caller.has_role(role):
        raise HTTPException(
            403,
            {"title": "Not a partner token", "detail": f"the token lacks the {role!r} role"},
        )
    try:
        source = SourceAgency(caller.source or "")
    except ValueError:
        raise HTTPException(
            403,
            {
                "title": "Source not allowed",
                "detail": "the token names no known partner agency (fjo_source)",
            },
        ) from None
    return Partner(caller.subject, source)


def operator(
    caller: Annotated[Principal, Depends(app_principal(lambda r: _ingest(r).principal))],
    ctx: Context,
) -> Principal:
    """The caller, if its token has one of the operator roles."""
    roles = ctx.settings.auth.operator_roles
    if not any(caller.has_role(role) for role in roles):
        raise HTTPException(
            403,
            {"title": "Not an operator", "detail": f"the token has none of the roles {roles}"},
        )
    return caller


def rate_limited(who: Annotated[Partner, Depends(partner)], ctx: Context) -> Partner:
    """The calling partner, within its rate limit (else 429 with Retry-After)."""
    limits = ctx.settings.limits
    admitted, retry_after = ctx.limiter.acquire(who.source.value)
    if not admitted:
        raise HTTPException(
            429,
            {
                "title": "Too many deliveries",
                "detail": f"the rate limit of {limits.rate_per_s:g} deliveries per second "
                f"(burst {limits.rate_burst}) is spent",
            },
            headers={"Retry-After": str(retry_after)},
        )
    return who


def _check_target(
    who: Partner, record_type: RecordType | None, source: SourceAgency | None
) -> RecordType | JSONResponse:
    if source is not None and source != who.source:
        return _problem(
            403,
            "source-mismatch",
            "Source not allowed",
            "a partner may push only as its own agency (the token's fjo_source)",
        )
    if record_type is None:
        return _problem(
            422,
            "record-type-missing",
            "Record type missing",
            "give the record type as ?record_type= or the Fjo-Record-Type header",
        )
    if not source_may_send(who.source, record_type):
        return _problem(
            403,
            "record-type-not-allowed",
            "Record type not allowed",
            f"{who.source.value} does not send {record_type.value} records",
        )
    return record_type


_NDJSON_EXAMPLE, _CSV_EXAMPLE = _example_lines()
_DEFAULT_LIMITS = LimitSettings()


@router.post(
    "/deliveries",
    status_code=201,
    summary="Push a delivery as a stream of NDJSON lines or CSV rows.",
    description=(
        "Streams the body to a private spool file (never into memory) while checking the "
        "body and line size limits and computing its SHA-256, then validates every record "
        "against its contract. Valid records go to `ingest.records.v1`, invalid ones to "
        "`ingest.quarantine.v1` with their reasons; the receipt is returned once the bus "
        "has acknowledged every one (`status: complete`).\n\n"
        "Idempotent: a repeated `Idempotency-Key`, or a body identical to an earlier "
        "complete delivery of the same record type, returns the original receipt (200, "
        "`Idempotent-Replayed: true`) and publishes nothing. A record whose "
        "(source, type, record_id, record_version) was already accepted counts as a "
        "duplicate.\n\n"
        "Records carry the caller's own source: a record without `source` gets the token's; "
        "one naming another agency is rejected (`source_mismatch`)."
    ),
    response_model=Receipt,
    responses={
        200: {"model": Receipt, "description": "A replay: the original delivery's receipt."},
        **_COMMON_ERRORS,
        400: _problem_doc(
            "The Content-Digest header is malformed, or does not match the body.",
            "Content-Digest does not match the body",
            400,
        ),
        409: _problem_doc(
            "A delivery with this Idempotency-Key is still processing.",
            "Delivery in progress",
            409,
        ),
        413: _problem_doc("The body exceeds the maximum size.", "Body too large", 413),
        415: _problem_doc("Not NDJSON or CSV.", "Unsupported media type", 415),
        422: _problem_doc(
            "A line is too long, the CSV header is unusable, or the "
            "Idempotency-Key was used for other content.",
            "Line too long",
            422,
        ),
        503: _problem_doc(
            "The bus or database is unavailable; re-send with the same Idempotency-Key.",
            "Delivery failed",
            503,
        ),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": _NDJSON_EXAMPLE,
                },
                "text/csv": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": _CSV_EXAMPLE,
                },
            },
        }
    },
)
async def push_delivery(
    request: Request,
    who: Annotated[Partner, Depends(rate_limited)],
    ctx: Context,
    record_type: Annotated[
        RecordType | None, Query(description="Record kind of every record in the body.")
    ] = None,
    record_type_header: Annotated[
        RecordType | None,
        Header(alias="Fjo-Record-Type", description="Alternative to ?record_type=."),
    ] = None,
    source: Annotated[
        SourceAgency | None,
        Query(description="Optional: must equal the token's source (else 403)."),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Client-chosen key; a repeat returns the original receipt.",
        ),
    ] = None,
    content_digest: Annotated[
        str | None,
        Header(
            alias="Content-Digest",
            description="RFC 9530 `sha-256=:<base64>:` of the body; lets a repeat be "
            "recognised before the body is processed.",
        ),
    ] = None,
) -> Response:
    limits = ctx.settings.limits
    target = _check_target(who, record_type or record_type_header, source)
    if isinstance(target, JSONResponse):
        return target
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media in NDJSON_TYPES:
        fmt = DeliveryFormat.NDJSON
    elif media in CSV_TYPES:
        fmt = DeliveryFormat.CSV
    else:
        return _problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "send application/x-ndjson or text/csv (JSON arrays go to /v1/deliveries/batch)",
        )
    too_large = _declared_too_large(request, limits.max_body_bytes)
    if too_large is not None:
        return too_large
    declared = _parse_digest(content_digest)
    if isinstance(declared, JSONResponse):
        return declared
    svc = ctx.service()
    early = await _early_replay(svc, who, target, idempotency_key, declared)
    if early is not None:
        await _drain(request.stream(), limits.max_body_bytes)
        return _receipt_response(early)
    guard = FramingGuard(max_body_bytes=limits.max_body_bytes, max_line_bytes=limits.max_line_bytes)
    try:
        spooled = await spool_body(request.stream(), directory=ctx.settings.spool_dir, guard=guard)
    except BodyTooLarge as exc:
        return _problem(
            413,
            "body-too-large",
            "Body too large",
            f"a delivery may be at most {exc.limit} bytes; split it (fjo push does)",
            max_bytes=exc.limit,
        )
    try:
        if declared is not None and declared != spooled.sha256:
            return _problem(
                400,
                "digest-mismatch",
                "Content-Digest does not match the body",
                "the body's SHA-256 differs from the Content-Digest header; nothing was processed",
            )
        list_fields = csv_list_fields(target)

        def process() -> Outcome:
            lines = iter_lines(spooled.path)
            candidates = (
                parse_ndjson(lines)
                if fmt is DeliveryFormat.NDJSON
                else parse_csv(lines, list_fields=list_fields, max_field=limits.max_line_bytes)
            )
            return svc.run(
                source=who.source,
                record_type=target,
                fmt=fmt,
                idempotency_key=idempotency_key,
                content_sha256=spooled.sha256,
                body_bytes=spooled.size,
                candidates=candidates,
            )

        return _receipt_response(await run_in_threadpool(process))
    finally:
        spooled.remove()


@router.post(
    "/deliveries/batch",
    status_code=201,
    summary="Push a small delivery as one JSON array of records.",
    description=(
        f"A JSON array of records of one type, at most `max_batch_records` records and "
        f"`max_batch_bytes` bytes (defaults {_DEFAULT_LIMITS.max_batch_records} and "
        f"{_DEFAULT_LIMITS.max_batch_bytes}). Line numbers in the receipt are 1-based positions in "
        "the array. Same idempotency, validation and receipt as `POST /v1/deliveries`."
    ),
    response_model=Receipt,
    responses={
        200: {"model": Receipt, "description": "A replay: the original delivery's receipt."},
        **_COMMON_ERRORS,
        409: _problem_doc(
            "A delivery with this Idempotency-Key is still processing.",
            "Delivery in progress",
            409,
        ),
        413: _problem_doc("Too many bytes or records.", "Batch too large", 413),
        422: _problem_doc("Not a JSON array.", "Batch is not a JSON array", 422),
        503: _problem_doc("Bus or database unavailable.", "Delivery failed", 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    # Items are records (objects); any other item is refused in the
                    # receipt like any invalid record, not the whole batch.
                    "schema": {"type": "array", "items": {}},
                    "example": RECORD_MODELS[RecordType.CHILD].model_json_schema()["examples"],
                }
            },
        }
    },
)
async def push_batch(
    request: Request,
    who: Annotated[Partner, Depends(rate_limited)],
    ctx: Context,
    record_type: Annotated[
        RecordType | None, Query(description="Record kind of every record in the array.")
    ] = None,
    record_type_header: Annotated[RecordType | None, Header(alias="Fjo-Record-Type")] = None,
    source: Annotated[SourceAgency | None, Query()] = None,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> Response:
    limits = ctx.settings.limits
    target = _check_target(who, record_type or record_type_header, source)
    if isinstance(target, JSONResponse):
        return target
    too_large = _declared_too_large(request, limits.max_batch_bytes)
    if too_large is not None:
        return too_large
    guard = FramingGuard(
        max_body_bytes=limits.max_batch_bytes, max_line_bytes=limits.max_batch_bytes
    )
    body = bytearray()
    try:
        async for chunk in request.stream():
            guard.feed(chunk)
            body += chunk
    except BodyTooLarge as exc:
        return _problem(
            413,
            "body-too-large",
            "Batch too large",
            f"a batch may be at most {exc.limit} bytes; stream larger deliveries to /v1/deliveries",
            max_bytes=exc.limit,
        )
    try:
        items = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        # A batch is one JSON document: if any part of it cannot be read, none can.
        message = (
            exc.msg
            if isinstance(exc, json.JSONDecodeError)
            else "nested too deeply"
            if isinstance(exc, RecursionError)
            else "not UTF-8"
        )
        return _problem(422, "batch-not-json", "Batch is not valid JSON", message)
    if not isinstance(items, list):
        return _problem(
            422, "batch-not-array", "Batch is not a JSON array", "send a JSON array of records"
        )
    if len(items) > limits.max_batch_records:
        return _problem(
            413,
            "batch-too-many-records",
            "Batch too large",
            f"a batch may hold at most {limits.max_batch_records} records",
            max_records=limits.max_batch_records,
        )
    del body
    svc = ctx.service()

    def process() -> Outcome:
        return svc.run(
            source=who.source,
            record_type=target,
            fmt=DeliveryFormat.JSON,
            idempotency_key=idempotency_key,
            content_sha256=guard.hexdigest(),
            body_bytes=guard.size,
            candidates=parse_json_items(items),
        )

    return _receipt_response(await run_in_threadpool(process))


@router.get(
    "/deliveries/{delivery_id}",
    summary="The receipt of one of the caller's deliveries.",
    response_model=Receipt,
    responses={
        **_COMMON_ERRORS,
        404: _problem_doc("No such delivery of the caller's.", "Delivery not found", 404),
    },
)
def get_receipt(
    delivery_id: str, who: Annotated[Partner, Depends(partner)], ctx: Context
) -> Response:
    receipt = ctx.service().receipt(delivery_id, who.source)
    if receipt is None:
        # Another partner's delivery is indistinguishable from none at all.
        return _problem(404, "delivery-not-found", "Delivery not found")
    return JSONResponse(receipt.model_dump(mode="json"))


@router.get(
    "/deliveries",
    summary="The caller's deliveries, newest first, a page at a time.",
    response_model=DeliveryPage,
    responses={**_COMMON_ERRORS, 422: _problem_doc("Bad cursor or limit.", "Invalid cursor", 422)},
)
def list_deliveries(
    who: Annotated[Partner, Depends(partner)],
    ctx: Context,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Response:
    try:
        page = ctx.service().page(who.source, limit=limit, cursor=cursor)
    except ValueError:  # InvalidCursor, or a position that is not a timestamp
        return _problem(
            422,
            INVALID_CURSOR,
            "Invalid cursor",
            "pass next_cursor from the previous page unchanged",
        )
    return JSONResponse(page.model_dump(mode="json"))


@router.get(
    "/quarantine",
    summary="What has been quarantined, by partner and record type, and why (operators).",
    tags=["operations"],
    response_model=QuarantineSummary,
    responses={
        401: _COMMON_ERRORS[401],
        403: _problem_doc("The token has no operator role.", "Not an operator", 403),
    },
)
def quarantine_summary(_who: Annotated[Principal, Depends(operator)], ctx: Context) -> Response:
    summary = ctx.service().quarantine()
    return JSONResponse(summary.model_dump(mode="json"))


@router.post(
    "/objections",
    status_code=201,
    tags=["objections"],
    summary="Send an objection, an erasure request or an opt-out, and get its receipt.",
    description=(
        "About one of the caller's own records (`subject: record`), or, for the spine's owner "
        "only, about a spine person (`subject: person`). `objection` and `erasure` take the "
        "record (or every record of the person) out of the research store, linkage and future "
        "extracts, and flag existing extracts for rebuild; `erasure` also shreds what "
        "pseudonymise keeps. `opt-out` (a person) keeps the person linked but out of extracts "
        "of projects whose legal basis requires opt-outs to apply.\n\n"
        "Idempotent on `request_id`: the same request again returns the first receipt (200, "
        "`Idempotent-Replayed: true`); the same id for another request is a 422. The receipt "
        "is returned once the bus has the request. The reason is a code: no free text, which "
        "could carry an identifier."
    ),
    response_model=ObjectionReceipt,
    responses={
        200: {"model": ObjectionReceipt, "description": "A repeat: the first receipt."},
        **_COMMON_ERRORS,
        400: _problem_doc("The body is not JSON.", "There was an error parsing the body", 400),
        409: _problem_doc(
            "A request with this id is being stored right now.", "Request in progress", 409
        ),
        422: _problem_doc(
            "The body is not a valid request, or the request id was used for another request.",
            "Request id reused",
            422,
        ),
        503: _problem_doc("Bus or database unavailable.", "Request not received", 503),
    },
)
def send_objection(
    request: ObjectionRequest, who: Annotated[Partner, Depends(rate_limited)], ctx: Context
) -> Response:
    if request.source != who.source:
        return _problem(
            403,
            "source-mismatch",
            "Source not allowed",
            "a partner may object only for its own agency's records (the token's fjo_source)",
        )
    if not source_may_send(who.source, request.record_type):
        return _problem(
            403,
            "record-type-not-allowed",
            "Record type not allowed",
            f"{who.source.value} does not send {request.record_type.value} records",
        )
    return _objection_response(ctx.objections().submit(request))


@router.get(
    "/objections/summary",
    tags=["operations"],
    summary="How many objections, erasure requests and opt-outs came, by kind (operators).",
    response_model=ObjectionsReceived,
    responses={
        401: _COMMON_ERRORS[401],
        403: _problem_doc("The token has no operator role.", "Not an operator", 403),
    },
)
def objections_received(_who: Annotated[Principal, Depends(operator)], ctx: Context) -> Response:
    return JSONResponse(ctx.objections().received().model_dump(mode="json"))


@router.get(
    "/objections/{receipt_id}",
    tags=["objections"],
    summary="The receipt of one of the caller's objections.",
    response_model=ObjectionReceipt,
    responses={
        **_COMMON_ERRORS,
        404: _problem_doc("No such request of the caller's.", "Objection not found", 404),
    },
)
def get_objection(
    receipt_id: uuid.UUID, who: Annotated[Partner, Depends(partner)], ctx: Context
) -> Response:
    receipt = ctx.objections().receipt(receipt_id, who.source)
    if receipt is None:
        # Another partner's request is indistinguishable from none at all.
        return _problem(404, "objection-not-found", "Objection not found")
    return JSONResponse(receipt.model_dump(mode="json"))


def _objection_response(outcome: ObjectionOutcome) -> JSONResponse:
    body = outcome.receipt.model_dump(mode="json")
    location = f"/v1/objections/{outcome.receipt.receipt_id}"
    if outcome.replayed:
        return JSONResponse(
            body,
            status_code=200,
            headers={"Idempotent-Replayed": "true", "Content-Location": location},
        )
    return JSONResponse(body, status_code=201, headers={"Location": location})


def _receipt_response(outcome: Outcome) -> JSONResponse:
    receipt = outcome.receipt
    location = f"/v1/deliveries/{receipt.delivery_id}"
    if outcome.replayed:
        return JSONResponse(
            receipt.model_dump(mode="json"),
            status_code=200,
            headers={"Idempotent-Replayed": "true", "Content-Location": location},
        )
    return JSONResponse(
        receipt.model_dump(mode="json"), status_code=201, headers={"Location": location}
    )


async def _early_replay(
    svc: DeliveryService,
    who: Partner,
    record_type: RecordType,
    idempotency_key: str | None,
    declared_sha256: str | None,
) -> Outcome | None:
    # Only a declared digest allows answering before the body is read: with a key alone, the
    # body must be hashed first to tell a true repeat from a key reused for other content.
    if declared_sha256 is None:
        return None
    return await run_in_threadpool(
        lambda: svc.replay_for(
            source=who.source,
            record_type=record_type,
            idempotency_key=idempotency_key,
            content_sha256=declared_sha256,
        )
    )


PROBLEMS: Mapping[type[Exception], Callable[[Any], JSONResponse]] = {
    LineTooLong: lambda exc: _problem(
        422,
        "line-too-long",
        "Line too long",
        f"line {exc.line} exceeds {exc.limit} bytes; nothing was processed",
        line=exc.line,
        max_bytes=exc.limit,
    ),
    FormatError: lambda exc: _problem(
        422, "unreadable-delivery", "Delivery cannot be read", str(exc)
    ),
    IdempotencyKeyReused: lambda _exc: _problem(
        422,
        "idempotency-key-reused",
        "Idempotency-Key reused",
        "this Idempotency-Key was first used for different content or record type",
    ),
    DeliveryInProgress: lambda _exc: _problem(
        409,
        "delivery-in-progress",
        "Delivery in progress",
        "a delivery with this Idempotency-Key is being processed; retry later",
        headers={"Retry-After": "5"},
    ),
    PoolExhausted: lambda _exc: _problem(
        503,
        "busy",
        "Too many deliveries in flight",
        "the service is at its concurrent-delivery limit; retry later",
        headers={"Retry-After": "5"},
    ),
    RequestIdReused: lambda _exc: _problem(
        422,
        "request-id-reused",
        "Request id reused",
        "this request_id was first used for a different request",
    ),
    ObjectionInProgress: lambda _exc: _problem(
        409,
        "objection-in-progress",
        "Request in progress",
        "a request with this request_id is being stored; retry later",
        headers={"Retry-After": "1"},
    ),
    ObjectionFailed: lambda exc: _problem(
        503,
        "objection-failed",
        "Request not received",
        f"{exc.reason}; send it again with the same request_id",
        headers={"Retry-After": "10"},
    ),
    DeliveryFailed: lambda exc: _problem(
        503,
        "delivery-failed",
        "Delivery failed",
        f"{exc.reason}; re-send with the same Idempotency-Key to resume",
        delivery_id=exc.delivery_id,
        headers={"Retry-After": "10"},
    ),
}
"""What the client hears when the delivery service (or the body's framing) raises: one
problem document per exception, installed as the app's exception handlers."""


def _declared_too_large(request: Request, limit: int) -> JSONResponse | None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _problem(
            413,
            "body-too-large",
            "Body too large",
            f"the body may be at most {limit} bytes",
            max_bytes=limit,
        )
    return None


def _parse_digest(header: str | None) -> str | JSONResponse | None:
    """The hex SHA-256 from an RFC 9530 ``Content-Digest`` (other algorithms are ignored)."""
    if not header:
        return None
    for member in header.split(","):
        name, _, value = member.strip().partition("=")
        if name.strip().lower() == "sha-256":
            value = value.strip()
            try:
                raw = base64.b64decode(value.strip(":"), validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                return _problem(
                    400,
                    "digest-invalid",
                    "Content-Digest is not valid",
                    "expected sha-256=:<base64 of 32 bytes>:",
                )
            return raw.hex()
    return None


async def _drain(chunks: AsyncIterator[bytes], limit: int) -> None:
    # A replay is answered without processing, but the body is read (and dropped) so that
    # the client can finish sending and read the answer on the same connection.
    seen = 0
    async for chunk in chunks:
        seen += len(chunk)
        if seen > limit:
            break
