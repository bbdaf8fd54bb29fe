"""Breaking changes between the released contracts and today's; ``make compat`` runs it.

python -m contracts.compat                   # compare with the newest released baseline
python -m contracts.compat --release 0.2.0   # write today's documents as that release's

A release's documents are committed under ``contracts/released/<version>/`` (``schemas/``: the
JSON Schemas and AsyncAPI of ``contracts/schemas``; ``openapi/``: each API's document), written
by ``make release-baseline VERSION=...`` when the release is tagged ``v<version>``. The check
always reads that committed baseline, because a CI clone may have no tags; where the tag is in
the clone, a test holds the committed baseline equal to the tagged commit's documents
(``git show v<version>:...``), so the baseline cannot drift from what was released.

Breaking, within a version (``docs/operators.md``, "Upgrading contracts"):

* an event or record schema removed, a field removed or retyped (``type``, ``$ref``, ``format``,
  ``const``, ``enum``, ``items``, ``anyOf``/``oneOf``/``allOf``), a new required field;
* an API's route (path and method) or documented response removed, a parameter removed or
  retyped, a new required parameter, and in the schemas the route reads or answers: a field
  removed or retyped, and in what it reads (request bodies) a new required field.

Not breaking: new optional fields, new schemas, routes, responses, optional parameters, new
versions (``...v2`` files, routes under ``/v2``); changes to descriptions, titles, examples,
defaults and validation bounds. A new major version of the contracts (the AsyncAPI document's
``info.version``) or of an API (its OpenAPI ``info.version``) may break anything of its own.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "OPENAPI_DIR",
    "RELEASED_DIR",
    "SCHEMA_DIR",
    "breaking_changes",
    "latest_release",
    "load_documents",
    "main",
    "openapi_breaks",
    "schema_breaks",
    "tag_differences",
    "write_release",
]

_HERE = Path(__file__).parent
SCHEMA_DIR = _HERE / "schemas"
OPENAPI_DIR = _HERE / "openapi"
RELEASED_DIR = _HERE / "released"
ASYNCAPI_FILE = "asyncapi.json"

# Keywords that say what a value is: a change to any of them retypes the field.
_TYPING = ("type", "$ref", "format", "const", "enum")
_COMBINERS = ("anyOf", "oneOf", "allOf")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

Documents = dict[str, Any]
"""Parsed JSON documents by path relative to their folder (``events/x.v1.json``)."""


def load_documents(directory: Path) -> Documents:
    """Every ``*.json`` under ``directory``, parsed, by relative path."""
    return {
        path.relative_to(directory).as_posix(): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.rglob("*.json"))
    }


def _major(version: object) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


def schema_breaks(old: Documents, new: Documents) -> list[str]:
    """Breaking changes from ``old`` to ``new`` JSON Schemas (``contracts/schemas`` layout)."""
    if _major(_info_version(new.get(ASYNCAPI_FILE))) > _major(
        _info_version(old.get(ASYNCAPI_FILE))
    ):
        return []  # a new major version of the contracts
    problems: list[str] = []
    for name, schema in old.items():
        if name == ASYNCAPI_FILE:
            continue  # generated from the same models as the schema files checked here
        if name not in new:
            problems.append(f"schemas/{name}: removed")
            continue
        problems += _compare(schema, new[name], f"schemas/{name}", reads=True)
    return problems


def openapi_breaks(old: Documents, new: Documents) -> list[str]:
    """Breaking changes from ``old`` to ``new`` OpenAPI documents (one per API)."""
    problems: list[str] = []
    for name, before in old.items():
        where = f"openapi/{name}"
        after = new.get(name)
        if after is None:
            problems.append(f"{where}: the API's document is gone")
            continue
        if _major(_info_version(after)) > _major(_info_version(before)):
            continue  # a new major version of this API
        problems += _api_breaks(before, after, where)
    return problems


def breaking_changes(
    baseline: Path, schemas: Path = SCHEMA_DIR, openapi: Path = OPENAPI_DIR
) -> list[str]:
    """Every breaking change from the release in ``baseline`` to today's documents."""
    return schema_breaks(
        load_documents(baseline / "schemas"), load_documents(schemas)
    ) + openapi_breaks(load_documents(baseline / "openapi"), load_documents(openapi))


def latest_release(released: Path = RELEASED_DIR) -> Path:
    """The newest release's baseline folder (by version number)."""
    versions = [p for p in released.iterdir() if p.is_dir()] if released.is_dir() else []
    if not versions:
        raise FileNotFoundError(f"no released baseline under {released}")
    return max(versions, key=lambda p: tuple(int(x) for x in p.name.split(".")))


def write_release(
    version: str,
    released: Path = RELEASED_DIR,
    schemas: Path = SCHEMA_DIR,
    openapi: Path = OPENAPI_DIR,
) -> Path:
    """Copy today's documents into ``released/<version>/`` (the release's baseline)."""
    if not all(part.isdigit() for part in version.split(".")) or version.count(".") != 2:
        raise ValueError(f"a release version is MAJOR.MINOR.PATCH, not {version!r}")
    target = released / version
    if target.exists():
        shutil.rmtree(target)
    for source, name in ((schemas, "schemas"), (openapi, "openapi")):
        for path in sorted(source.rglob("*.json")):
            copy = target / name / path.relative_to(source)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
    return target


def tag_differences(baseline: Path, repo: Path) -> list[str] | None:
    """How ``baseline`` differs from the documents at its release tag (``v<version>``) in the
    git repository ``repo``; ``None`` if the clone has no such tag (CI clones may have none)."""
    tag = f"v{baseline.name}"

    def git(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)

    if git("rev-parse", "-q", "--verify", f"refs/tags/{tag}").returncode != 0:
        return None
    folders = {"schemas": "contracts/schemas", "openapi": "contracts/openapi"}
    tagged = git("ls-tree", "-r", "--name-only", tag, "--", *folders.values()).stdout.decode()
    expected = {
        f"{name}/{path.removeprefix(folder + '/')}": path
        for line in tagged.splitlines()
        for name, folder in folders.items()
        if (path := line.strip()).startswith(folder + "/") and path.endswith(".json")
    }
    committed = {p.relative_to(baseline).as_posix(): p for p in sorted(baseline.rglob("*.json"))}
    problems = [f"{rel}: not in {tag}" for rel in sorted(set(committed) - set(expected))]
    problems += [f"{rel}: missing (in {tag})" for rel in sorted(set(expected) - set(committed))]
    for rel in sorted(set(committed) & set(expected)):
        if git("show", f"{tag}:{expected[rel]}").stdout != committed[rel].read_bytes():
            problems.append(f"{rel}: differs from {tag}")
    return problems


def _info_version(document: object) -> object:
    return document.get("info", {}).get("version") if isinstance(document, dict) else None


def _compare(old: Any, new: Any, where: str, *, reads: bool) -> list[str]:
    """Breaking differences of one schema; ``reads``: the schema describes input (a new
    required field breaks its writers) rather than output only."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [] if old == new else [f"{where}: retyped"]
    problems: list[str] = []
    for key in _TYPING:
        if old.get(key) != new.get(key):
            problems.append(f"{where}: retyped ({key} {old.get(key)!r} -> {new.get(key)!r})")
    for key in _COMBINERS:
        before, after = old.get(key), new.get(key)
        if before is None and after is None:
            continue
        if not isinstance(before, list) or not isinstance(after, list) or len(before) != len(after):
            problems.append(f"{where}: retyped ({key} changed)")
            continue
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            problems += _compare(b, a, f"{where}.{key}[{i}]", reads=reads)
    if "items" in old or "items" in new:
        problems += _compare(old.get("items"), new.get("items"), f"{where}[]", reads=reads)
    before_props, after_props = old.get("properties", {}), new.get("properties", {})
    for name, schema in before_props.items():
        if name not in after_props:
            problems.append(f"{where}.{name}: field removed")
        else:
            problems += _compare(schema, after_props[name], f"{where}.{name}", reads=reads)
    if reads:
        for name in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
            problems.append(f"{where}.{name}: new required field")
    for key in ("$defs", "definitions"):
        for name, schema in old.get(key, {}).items():
            if name in new.get(key, {}):
                problems += _compare(schema, new[key][name], f"{where}#{name}", reads=reads)
    return problems


def _operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in _METHODS:
                yield path, method, operation


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref.rsplit("/", 1)[-1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _reachable(document: Mapping[str, Any], roots: Iterator[str]) -> set[str]:
    components = document.get("components", {}).get("schemas", {})
    found: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in found or name not in components:
            continue
        found.add(name)
        todo.extend(_refs(components[name]))
    return found


def _api_breaks(old: Mapping[str, Any], new: Mapping[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    new_ops = {(path, method): op for path, method, op in _operations(new)}
    for path, method, op in _operations(old):
        route = f"{where} {method.upper()} {path}"
        after = new_ops.get((path, method))
        if after is None:
            problems.append(f"{route}: route removed")
            continue
        for status in op.get("responses", {}):
            if status not in after.get("responses", {}):
                problems.append(f"{route}: response {status} removed")
        params = {(p.get("in"), p.get("name")): p for p in op.get("parameters", [])}
        new_params = {(p.get("in"), p.get("name")): p for p in after.get("parameters", [])}
        for key, param in params.items():
            if key not in new_params:
                problems.append(f"{route}: parameter {key[1]} ({key[0]}) removed")
            else:
                problems += _compare(
                    param.get("schema"),
                    new_params[key].get("schema"),
                    f"{route} parameter {key[1]}",
                    reads=True,
                )
        for key, param in new_params.items():
            if key not in params and param.get("required"):
                problems.append(f"{route}: new required parameter {key[1]} ({key[0]})")
        if after.get("requestBody", {}).get("required") and not op.get("requestBody", {}).get(
            "required"
        ):
            problems.append(f"{route}: the request body is now required")
    # Component schemas, once each: fields may not go or change; where a request reads one,
    # no field may become required.
    read = _reachable(
        new, (r for _, _, op in _operations(new) for r in _refs(op.get("requestBody")))
    )
    old_components = old.get("components", {}).get("schemas", {})
    new_components = new.get("components", {}).get("schemas", {})
    used = set(_refs(old.get("paths", {})))
    for name in sorted(_reachable(old, iter(used))):
        if name not in new_components:
            continue  # a schema the routes no longer name shows as a retyped $ref there
        problems += _compare(
            old_components[name], new_components[name], f"{where} #{name}", reads=name in read
        )
    for path, method, op in _operations(old):
        after = new_ops.get((path, method))
        if after is None:
            continue
        problems += _compare_bodies(op, after, f"{where} {method.upper()} {path}")
    return problems


def _compare_bodies(old: Mapping[str, Any], new: Mapping[str, Any], route: str) -> list[str]:
    """Inline (not component) body schemas: the request's and each kept response's."""
    pairs = [("request", old.get("requestBody", {}), new.get("requestBody", {}))]
    kept = new.get("responses", {})  # a removed response is reported as such
    for status, response in old.get("responses", {}).items():
        if status in kept:
            pairs.append((f"response {status}", response, kept[status]))
    problems: list[str] = []
    for label, before, after in pairs:
        for media, content in before.get("content", {}).items():
            other = after.get("content", {}).get(media)
            if other is None:
                problems.append(f"{route}: {label} no longer {media}")
                continue
            problems += _compare(
                content.get("schema"),
                other.get("schema"),
                f"{route} {label}",
                reads=label == "request",
            )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: report breaking changes (exit 1), or write a release's baseline."""
    parser = argparse.ArgumentParser(
        prog="python -m contracts.compat",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--release", metavar="VERSION", help="write today's documents as VERSION's baseline"
    )
    parser.add_argument(
        "--baseline", type=Path, help="compare with this folder (default: the newest release)"
    )
    args = parser.parse_args(argv)
    if args.release:
        target = write_release(args.release)
        print(f"wrote {target}")
        return 0
    baseline = args.baseline or latest_release()
    tagged = tag_differences(baseline, _HERE.parent)
    if tagged:
        for problem in tagged:
            print(f"baseline {baseline.name}: {problem}", file=sys.stderr)
        print("the committed baseline must be the tagged release's documents", file=sys.stderr)
        return 1
    problems = breaking_changes(baseline)
    for problem in problems:
        print(f"breaking: {problem}", file=sys.stderr)
    if problems:
        print(
            f"{len(problems)} breaking change(s) since {baseline.name}: add a new version (a "
            "...v2 event or route) instead, or make the field optional",
            file=sys.stderr,
        )
        return 1
    source = "checked against its tag" if tagged == [] else f"no tag v{baseline.name} here"
    print(f"compatible with release {baseline.name} (contracts/released; {source})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
