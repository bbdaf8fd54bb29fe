"""What the access API accepts as input, and what its OpenAPI document says it answers."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from services.access.api.schemas import (
    AccreditationIn,
    ApprovalIn,
    ProjectIn,
    ResearcherIn,
)
from services.access.api.workspace_schemas import HistogramSpec, QueryIn
from services.access.config import AccessSettings, AuthSettings
from services.access.entrypoints import create_app
from services.runtime.auth import DevIssuer
from tests.audit_keys import signing_key_file


@pytest.mark.parametrize("when", [0, "0", "86400", 1_704_067_200, "2027-3-31"])
def test_a_day_is_written_yyyy_mm_dd_never_as_a_timestamp(when: object) -> None:
    # Found by the fuzzer: {"accredited_until": 0} registered a researcher accredited until
    # 1970-01-01 (pydantic reads numbers, and strings of digits, as Unix time).
    with pytest.raises(ValidationError):
        ResearcherIn(subject="alice", display_name="Alice", accredited_until=when)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ProjectIn(title="Newborns", window_end=when)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ApprovalIn.model_validate(
            {
                "datasets": ["child"],
                "variables": ["WOB"],
                "window_start": "2015-01-01",
                "window_end": "2019-12-31",
                "members": ["alice"],
                "access_until": when,
            }
        )


def test_a_day_in_iso_form_is_read_as_that_day() -> None:
    researcher = ResearcherIn.model_validate(
        {"subject": "alice", "display_name": "Alice", "accredited_until": "2027-03-31"}
    )
    assert researcher.accredited_until == date(2027, 3, 31)
    assert ResearcherIn(subject="bob", display_name="Bob").accredited_until is None


def test_the_openapi_document_lists_the_refusals_each_route_answers(tmp_path: Path) -> None:
    # Found by the fuzzer: routes documented only 2xx and 422 but answer 400, 401, 403, 404,
    # 409 and 429 (each a problem document).
    settings = AccessSettings(
        database_url="sqlite://",
        environment="test",
        migrate_on_start=False,
        pseudonym_master_key=SecretStr("k1-0123456789abcdef"),
        audit_signing_key_file=signing_key_file(tmp_path),
        auth=AuthSettings(jwks_url="https://issuer.invalid/jwks"),  # a verifier is injected
    )
    issuer = DevIssuer.generate(issuer=settings.auth.issuer)
    app = create_app(settings, verifier=issuer.verifier(audience=settings.auth.audience))
    paths = app.openapi()["paths"]

    def documented(method: str, path: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert documented("get", "/v1/projects/{project_id}") == {"200", "401", "404", "422"}
    assert documented("post", "/v1/projects/{project_id}/approve") >= {
        "400", "401", "403", "404", "409", "422"
    }  # fmt: skip
    extract = paths["/v1/projects/{project_id}/extracts"]["post"]["responses"]
    assert "Retry-After" in extract["429"]["headers"]
    for path, operations in paths.items():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if status >= "400":
                    assert set(response["content"]) == {"application/problem+json"}, path


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (AccreditationIn, {"accredited_until": None, "revoked": 0}),
        (AccreditationIn, {"accredited_until": None, "revoked": "no"}),
        (ProjectIn, {"title": "Newborns", "k": "12"}),
        (QueryIn, {"sql": "SELECT 1", "preview": True}),
        (QueryIn, {"sql": "SELECT 1", "preview": 12.0}),
        (HistogramSpec, {"column": "AGE", "bins": False}),
        (HistogramSpec, {"column": "AGE", "bins": "10"}),
    ],
)
def test_numbers_and_flags_are_json_numbers_and_booleans(
    model: type[BaseModel], data: dict[str, object]
) -> None:
    # Found by the fuzzer: {"revoked": 0} was read as false, a cell's {"top": [false]} as [0.0].
    with pytest.raises(ValidationError):
        model.model_validate(data)


def test_numbers_and_flags_of_the_right_json_type_are_read() -> None:
    assert QueryIn.model_validate({"sql": "SELECT 1", "preview": 12}).preview == 12
    assert HistogramSpec.model_validate({"column": "AGE", "bins": 12}).bins == 12
    assert AccreditationIn.model_validate({"accredited_until": None, "revoked": True}).revoked
