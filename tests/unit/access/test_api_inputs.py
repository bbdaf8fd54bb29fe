"""What the access API accepts as input, and what its OpenAPI document says it answers."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from services.access.config import AccessSettings
from services.access.entrypoints import create_app
from services.runtime.auth import DevIssuer


def test_the_openapi_document_lists_the_refusals_each_route_answers(tmp_path: Path) -> None:
    # Found by the fuzzer: routes documented only 2xx and 422 but answer 400, 401, 403, 404,
    # 409 and 429 (each a problem document).
    settings = AccessSettings(
        database_url="sqlite://",
        environment="test",
        migrate_on_start=False,
        pseudonym_master_key=SecretStr("k1-0123456789abcdef"),
        audit_key=SecretStr("k2-0123456789abcdef"),
        checkpoint_key=SecretStr("k3-0123456789abcdef"),
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
