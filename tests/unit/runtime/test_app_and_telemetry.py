"""The shared app factory and telemetry: one error shape, health routes, traced JSON logs."""

from __future__ import annotations

import json
import logging

from fastapi import HTTPException
from fastapi.security import HTTPBearer
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel

from services.runtime.app import PROBLEM_JSON, create_app
from services.runtime.problems import problem_type
from services.runtime.telemetry import JsonLogFormatter


class Body(BaseModel):
    nhs_number: int


def _app():
    def broken() -> None:
        raise ConnectionError("db down")

    app = create_app(title="t", version="1", readiness={"db": lambda: None, "bus": broken})

    @app.post("/things")
    def things(body: Body) -> dict[str, int]:
        return {"ok": body.nhs_number}

    @app.get("/missing")
    def missing() -> None:
        raise HTTPException(404, "No such thing")

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail 943 476 5919")

    return app


def test_errors_are_problem_json_and_validation_errors_do_not_echo_the_input() -> None:
    client = TestClient(_app(), raise_server_exceptions=False)
    response = client.post("/things", json={"nhs_number": "943 476 5919"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["errors"][0]["loc"] == ["body", "nhs_number"]
    assert "943" not in response.text


def test_http_errors_and_crashes_share_the_problem_shape_without_internal_detail() -> None:
    client = TestClient(_app(), raise_server_exceptions=False)
    missing = client.get("/missing")
    assert (missing.status_code, missing.json()["title"]) == (404, "No such thing")
    boom = client.get("/boom")
    assert boom.status_code == 500
    assert boom.json() == {
        "type": problem_type("internal-error"),
        "title": "Internal error",
        "status": 500,
    }
    # A problem no route names is typed by its status, in the one scheme, never about:blank.
    assert missing.json()["type"] == problem_type("not-found")
    assert client.get("/nowhere").json()["type"] == problem_type("not-found")
    invalid = client.post("/things", json={"nhs_number": "x"})
    assert invalid.json()["type"] == problem_type("invalid-request")


def test_readiness_reports_each_dependency_and_fails_when_one_is_down() -> None:
    client = TestClient(_app())
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"db": "ok", "bus": "unavailable: ConnectionError"}
    assert "python_gc_objects_collected_total" in client.get("/metrics").text


def test_json_log_lines_carry_the_active_trace_id_and_extra_fields() -> None:
    tracer = TracerProvider().get_tracer("t")
    record = logging.makeLogRecord({"msg": "record processed", "levelname": "INFO"})
    record.__dict__["record_token"] = "tok_abc"
    with tracer.start_as_current_span("work") as span:
        line = json.loads(JsonLogFormatter().format(record))
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["msg"] == "record processed"
    assert line["record_token"] == "tok_abc"


def test_a_request_is_traced_as_a_child_of_the_callers_traceparent() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(title="t", version="1", tracer_provider=provider)

    @app.get("/work")
    def work() -> dict[str, bool]:
        return {"ok": True}

    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    client = TestClient(app)
    client.get("/work", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    client.get("/healthz")  # operational routes are not traced
    server = [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert len(server) == 1
    assert format(server[0].context.trace_id, "032x") == trace_id
    assert server[0].parent is not None and server[0].parent.span_id == 0x00F067AA0BA902B7


def test_the_openapi_document_says_every_error_is_a_problem_document() -> None:
    # Found by the fuzzer: FastAPI documented 422 as `application/json` {"detail": [...]},
    # secured routes did not list 401, and /metrics claimed to answer JSON.
    from fastapi import Depends

    app = _app()
    secured = HTTPBearer()

    @app.get("/secret")
    def secret(_token: object = Depends(secured)) -> dict[str, bool]:
        return {"ok": True}

    spec = TestClient(app).get("/openapi.json").json()
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert spec["paths"]["/things"]["post"]["responses"]["422"]["content"] == problem
    assert spec["paths"]["/secret"]["get"]["responses"]["401"]["content"] == problem
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status"]
    assert set(spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    body = TestClient(app).post("/things", json={}).json()
    assert set(spec["components"]["schemas"]["Problem"]["properties"]) >= set(body)
