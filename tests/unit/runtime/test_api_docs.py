"""Every API's /docs and /redoc load everything from the API itself (an air-gapped TRE has no
CDN): each asset URL on the pages is local and answers, and nothing on them names a host."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fjo.openapi import api_services, build_api
from services.runtime.api_docs import API_DOCS_FILES, ASSETS_PATH
from services.runtime.app import create_app
from services.runtime.assets import fetched_assets

# src="...", href="...", url: '...' (Swagger UI's document), spec-url="..." (ReDoc's)
_URL = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|\burl:\s*["']([^"']+)["']""")


def page_urls(html: str) -> list[str]:
    return [a or b for a, b in _URL.findall(html)]


@pytest.fixture(scope="module", params=api_services())
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    return TestClient(build_api(request.param, tmp_path_factory.mktemp(request.param)))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_every_asset_of_an_apis_docs_page_is_served_by_the_api(api: TestClient, page: str) -> None:
    response = api.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = page_urls(response.text)
    assert "/openapi.json" in urls
    assets = [u for u in urls if u.startswith(ASSETS_PATH + "/")]
    assert len(assets) >= 2, urls  # a script and the icon (and Swagger UI's stylesheet)
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"{page} loads {url}"
        fetched = api.get(url)
        assert fetched.status_code == 200, url
        assert len(fetched.content) > 0, url
    # No host anywhere on the page: no CDN, no Google fonts, no validator badge.
    assert "http://" not in response.text and "https://" not in response.text


def test_swagger_ui_never_sends_the_document_to_the_outside_validator(api: TestClient) -> None:
    assert '"validatorUrl": null' in api.get("/docs").text


def test_the_assets_are_the_fetched_packages_with_their_types(api: TestClient) -> None:
    js = api.get(f"{ASSETS_PATH}/swagger-ui-bundle.js")
    assert js.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert b"SwaggerUIBundle" in js.content
    assert b"Redoc" in api.get(f"{ASSETS_PATH}/redoc.standalone.js").content
    assert api.get(f"{ASSETS_PATH}/swagger-ui.css").headers["content-type"].startswith("text/css")


def test_the_pages_follow_the_apps_path_prefix(tmp_path: Path) -> None:
    client = TestClient(build_api("ingest", tmp_path), root_path="/ingest")
    urls = page_urls(client.get("/docs").text)
    assert "/ingest/openapi.json" in urls
    assert f"/ingest{ASSETS_PATH}/swagger-ui-bundle.js" in urls


def test_an_app_without_api_docs_has_no_document_nor_pages() -> None:
    client = TestClient(create_app(title="pages", version="1", api_docs=False))
    for path in ("/openapi.json", "/docs", "/redoc", f"{ASSETS_PATH}/swagger-ui.css"):
        assert client.get(path).status_code == 404, path


def test_a_folder_without_the_assets_is_refused_when_the_app_is_built(tmp_path: Path) -> None:
    (tmp_path / "swagger-ui.css").write_text("")
    with pytest.raises(RuntimeError, match=r"swagger-ui-bundle\.js"):
        create_app(title="t", version="1", docs_assets=tmp_path)


def test_the_build_steps_folder_holds_every_file_the_pages_load() -> None:
    folder = fetched_assets("api-docs")
    assert all((folder / name).stat().st_size > 0 for name in API_DOCS_FILES)
    assert (folder / "LICENSE.swagger-ui").is_file() and (folder / "LICENSE.redoc").is_file()


def test_a_configured_folder_is_used_as_it_is(tmp_path: Path) -> None:
    assets = fetched_assets("api-docs")
    for name in API_DOCS_FILES:
        (tmp_path / name).write_bytes((assets / name).read_bytes())
    (tmp_path / "swagger-ui.css").write_text("/* the configured copy */")
    app = create_app(title="t", version="1", docs_assets=tmp_path)
    assert TestClient(app).get(f"{ASSETS_PATH}/swagger-ui.css").text == "/* the configured copy */"


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_the_pages_may_load_nothing_from_another_origin(api: TestClient, page: str) -> None:
    response = api.get(page)
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["connect-src"] == "'self'" and policy["img-src"] == "'self' data:"
    # Inline scripts only by hash of the page's own: each one on the page is allowed, no other.
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    assert policy["script-src"].count("'sha256-") == len(inline)
    assert "unsafe-inline" not in policy["script-src"]
