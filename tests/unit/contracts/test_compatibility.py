"""The contracts and APIs stay compatible with the last release within a version, and the
check finds each kind of breaking change fed to it."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contracts.compat import (
    OPENAPI_DIR,
    RELEASED_DIR,
    SCHEMA_DIR,
    breaking_changes,
    latest_release,
    load_documents,
    main,
    openapi_breaks,
    schema_breaks,
    tag_differences,
    write_release,
)

EVENT = "events/ingest.record-quarantined.v1.json"


def test_todays_contracts_and_apis_are_compatible_with_the_last_release() -> None:
    baseline = latest_release()
    problems = breaking_changes(baseline)
    assert not problems, f"breaking since {baseline.name}:\n" + "\n".join(problems)


def test_the_baseline_holds_every_document_of_the_release() -> None:
    baseline = latest_release()
    assert baseline.parent == RELEASED_DIR
    assert set(load_documents(baseline / "openapi")) == {"ingest.json", "link.json", "access.json"}
    assert EVENT in load_documents(baseline / "schemas")


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    return load_documents(SCHEMA_DIR)


@pytest.fixture(scope="module")
def apis() -> dict[str, Any]:
    return load_documents(OPENAPI_DIR)


def changed(docs: dict[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    new = copy.deepcopy(docs)
    return new, new[name]


def event_properties(event: dict[str, Any]) -> dict[str, Any]:
    return event["properties"]


def test_an_unchanged_set_has_no_breaking_change(
    schemas: dict[str, Any], apis: dict[str, Any]
) -> None:
    assert schema_breaks(schemas, copy.deepcopy(schemas)) == []
    assert openapi_breaks(apis, copy.deepcopy(apis)) == []


def test_a_removed_event_field_breaks(schemas: dict[str, Any]) -> None:
    new, event = changed(schemas, EVENT)
    del event_properties(event)["errors"]
    assert schema_breaks(schemas, new) == [f"schemas/{EVENT}.errors: field removed"]


def test_a_retyped_event_field_breaks(schemas: dict[str, Any]) -> None:
    new, event = changed(schemas, EVENT)
    field = event_properties(event)["original_line"]
    field.pop("anyOf", None)
    field["type"] = "integer"
    problems = schema_breaks(schemas, new)
    assert problems and all(
        p.startswith(f"schemas/{EVENT}.original_line: retyped") for p in problems
    )


def test_a_new_required_event_field_breaks_and_a_new_optional_one_does_not(
    schemas: dict[str, Any],
) -> None:
    new, event = changed(schemas, EVENT)
    event_properties(event)["severity"] = {"type": "string", "description": "new"}
    assert schema_breaks(schemas, new) == []
    event["required"] = [*event.get("required", []), "severity"]
    assert schema_breaks(schemas, new) == [f"schemas/{EVENT}.severity: new required field"]


def test_a_removed_schema_breaks_and_a_new_version_beside_it_does_not(
    schemas: dict[str, Any],
) -> None:
    new = copy.deepcopy(schemas)
    new[EVENT.replace(".v1.", ".v2.")] = new[EVENT]
    assert schema_breaks(schemas, new) == []
    del new[EVENT]
    assert schema_breaks(schemas, new) == [f"schemas/{EVENT}: removed"]


def test_a_new_major_contracts_version_may_break(schemas: dict[str, Any]) -> None:
    new, event = changed(schemas, EVENT)
    del event_properties(event)["errors"]
    new["asyncapi.json"]["info"]["version"] = "2.0.0"
    assert schema_breaks(schemas, new) == []


def test_descriptions_examples_and_bounds_may_change(schemas: dict[str, Any]) -> None:
    new, event = changed(schemas, EVENT)
    for field in event_properties(event).values():
        field["description"] = "reworded"
        field["examples"] = ["another"]
        field["maxLength"] = 10
    assert schema_breaks(schemas, new) == []


def test_a_removed_route_breaks_and_a_new_one_does_not(apis: dict[str, Any]) -> None:
    new, link = changed(apis, "link.json")
    link["paths"]["/v2/review"] = link["paths"]["/v1/review"]
    assert openapi_breaks(apis, new) == []
    del link["paths"]["/v1/review"]
    problems = openapi_breaks(apis, new)
    assert "openapi/link.json GET /v1/review: route removed" in problems


def test_a_removed_response_breaks(apis: dict[str, Any]) -> None:
    new, ingest = changed(apis, "ingest.json")
    del ingest["paths"]["/v1/deliveries/{delivery_id}"]["get"]["responses"]["404"]
    assert openapi_breaks(apis, new) == [
        "openapi/ingest.json GET /v1/deliveries/{delivery_id}: response 404 removed"
    ]


def test_a_new_required_parameter_breaks_and_an_optional_one_does_not(apis: dict[str, Any]) -> None:
    new, link = changed(apis, "link.json")
    operation = link["paths"]["/v1/review"]["get"]
    operation["parameters"].append({"in": "query", "name": "since", "schema": {"type": "string"}})
    assert openapi_breaks(apis, new) == []
    operation["parameters"][-1]["required"] = True
    assert openapi_breaks(apis, new) == [
        "openapi/link.json GET /v1/review: new required parameter since (query)"
    ]


def test_a_field_removed_from_an_answer_or_made_required_in_a_request_breaks(
    apis: dict[str, Any],
) -> None:
    doc = apis["access.json"]
    body_ref = doc["paths"]["/v1/projects"]["post"]["requestBody"]["content"]["application/json"]
    request = body_ref["schema"]["$ref"].rsplit("/", 1)[-1]
    answer = doc["paths"]["/v1/projects"]["post"]["responses"]["201"]["content"]
    response = answer["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    new, access = changed(apis, "access.json")
    components = access["components"]["schemas"]
    optional = sorted(
        set(components[request]["properties"]) - set(components[request].get("required", []))
    )
    components[request]["required"] = [*components[request].get("required", []), optional[0]]
    removed = sorted(components[response]["properties"])[0]
    del components[response]["properties"][removed]
    problems = openapi_breaks(apis, new)
    assert f"openapi/access.json #{request}.{optional[0]}: new required field" in problems
    assert f"openapi/access.json #{response}.{removed}: field removed" in problems


def test_a_new_major_api_version_may_break(apis: dict[str, Any]) -> None:
    new, link = changed(apis, "link.json")
    del link["paths"]["/v1/review"]
    link["info"]["version"] = str(int(link["info"]["version"].split(".")[0]) + 1) + ".0.0"
    assert openapi_breaks(apis, new) == []


def _copy_today(root: Path) -> tuple[Path, Path]:
    schemas, openapi = root / "schemas", root / "openapi"
    shutil.copytree(SCHEMA_DIR, schemas)
    shutil.copytree(OPENAPI_DIR, openapi)
    return schemas, openapi


def test_a_baseline_written_for_a_release_then_a_breaking_change_is_found(tmp_path: Path) -> None:
    schemas, openapi = _copy_today(tmp_path / "today")
    baseline = write_release("0.1.0", tmp_path / "released", schemas, openapi)
    assert breaking_changes(baseline, schemas, openapi) == []
    path = schemas / EVENT
    event = json.loads(path.read_text())
    del event["properties"]["errors"]
    path.write_text(json.dumps(event))
    assert breaking_changes(baseline, schemas, openapi) == [
        f"schemas/{EVENT}.errors: field removed"
    ]
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR\.PATCH"):
        write_release("1.0", tmp_path / "released", schemas, openapi)


def test_the_newest_release_is_found_by_version_number(tmp_path: Path) -> None:
    for version in ("0.9.0", "0.10.0", "0.2.3"):
        (tmp_path / version).mkdir()
    assert latest_release(tmp_path).name == "0.10.0"


def test_the_command_exits_non_zero_on_a_breaking_change(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    baseline = tmp_path / "9.9.9"
    shutil.copytree(latest_release(), baseline)
    path = baseline / "openapi" / "link.json"
    link = json.loads(path.read_text())
    link["paths"]["/review/gone"] = {"get": {"responses": {"200": {"description": "OK"}}}}
    path.write_text(json.dumps(link))
    assert main(["--baseline", str(baseline)]) == 1
    assert "GET /review/gone: route removed" in capsys.readouterr().err


def test_the_module_runs_as_a_command_on_the_committed_baseline() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "contracts.compat"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"compatible with release {latest_release().name}" in done.stdout


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args],
        check=True,
        capture_output=True,
    )


def test_a_tagged_release_must_match_its_committed_baseline(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _copy_today(repo / "contracts")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "release")
    baseline = write_release(
        "0.1.0", repo / "released", repo / "contracts" / "schemas", repo / "contracts" / "openapi"
    )
    assert tag_differences(baseline, repo) is None  # no tag: the committed baseline is used
    _git(repo, "tag", "v0.1.0")
    assert tag_differences(baseline, repo) == []
    (baseline / "openapi" / "link.json").write_text("{}\n")
    (baseline / "schemas" / "extra.json").write_text("{}\n")
    assert tag_differences(baseline, repo) == [
        "schemas/extra.json: not in v0.1.0",
        "openapi/link.json: differs from v0.1.0",
    ]
