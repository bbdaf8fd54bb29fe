"""Offline JSON schemas for kubeconform: Kubernetes from kubernetes-validate, CRDs from their YAML.

``python -m deploy.schemas --out DIR --crd-dir DIR [--crd-dir DIR ...]`` writes

* ``DIR/kubernetes/v<version>-strict/<kind>-<group>-<version>.json`` for every Kubernetes
  version in ``KUBERNETES_VERSIONS``: the "local-strict" schemas that the PyPI package
  kubernetes-validate ships (generated from each release's OpenAPI; ``additionalProperties:
  false`` everywhere, so a misspelt field fails). They carry ``$id``s under kubernetes.io and
  absolute ``$ref``s to ``/api/_definitions.json``; both are rewritten to a sibling-file
  reference so that nothing is fetched.
* ``DIR/crds/<group>/<kind>_<version>.json`` for every CRD version found: its
  ``openAPIV3Schema`` with kubeconform's openapi2jsonschema rules applied (objects with
  properties reject unknown ones unless ``x-kubernetes-preserve-unknown-fields``;
  ``x-kubernetes-int-or-string`` becomes ``integer | string``).

``schema_locations(root)`` gives the matching ``-schema-location`` templates.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

__all__ = ["KUBERNETES_VERSIONS", "crd_schemas", "kubernetes_schemas", "schema_locations"]

KUBERNETES_VERSIONS: tuple[str, ...] = ("1.34.0", "1.37.0")
"""Oldest Kubernetes release we support and the newest kubernetes-validate ships."""

_ABSOLUTE_DEFINITIONS_REF = '"/api/_definitions.json#'


def _kubernetes_validate_root() -> Path:
    import kubernetes_validate

    return Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"


def kubernetes_schemas(version: str, out: Path) -> int:
    """Write one Kubernetes version's strict schemas with local references; return the count."""
    src = _kubernetes_validate_root() / f"v{version}-local-strict"
    if not src.is_dir():
        raise FileNotFoundError(f"kubernetes-validate has no schemas for Kubernetes {version}")
    dest = out / "kubernetes" / f"v{version}-strict"
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(src.glob("*.json")):
        text = path.read_text(encoding="utf-8").replace(
            _ABSOLUTE_DEFINITIONS_REF, '"_definitions.json#'
        )
        schema = json.loads(text)
        # Without an $id the base URI is the file itself, so sibling refs resolve on disk.
        schema.pop("$id", None)
        (dest / path.name).write_text(json.dumps(schema), encoding="utf-8")
        count += 1
    return count


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("x-kubernetes-int-or-string"):
            rest = {
                k: v for k, v in node.items() if k not in {"type", "x-kubernetes-int-or-string"}
            }
            return {"oneOf": [{"type": "string"}, {"type": "integer"}], **_strict(rest)}
        converted = {k: _strict(v) for k, v in node.items()}
        if (
            "properties" in converted
            and "additionalProperties" not in converted
            and not converted.get("x-kubernetes-preserve-unknown-fields")
        ):
            converted["additionalProperties"] = False
        return converted
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


def crd_schemas(crd_file: Path, out: Path) -> list[Path]:
    """Write a kubeconform schema for each served version of the CRDs in ``crd_file``."""
    written: list[Path] = []
    for doc in yaml.safe_load_all(crd_file.read_text(encoding="utf-8")):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        group, kind = spec["group"], spec["names"]["kind"].lower()
        for version in spec["versions"]:
            schema = version.get("schema", {}).get("openAPIV3Schema")
            if not schema or not version.get("served", True):
                continue
            schema = _strict(schema)
            # metadata is validated by the API server's own schema, not the CRD's.
            schema.setdefault("properties", {}).setdefault("metadata", {"type": "object"})
            dest = out / "crds" / group / f"{kind}_{version['name']}.json"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(json.dumps(schema, sort_keys=True), encoding="utf-8")
            written.append(dest)
    return written


def schema_locations(root: Path) -> list[str]:
    """kubeconform ``-schema-location`` templates for a root written by this module."""
    return [
        str(root / "kubernetes")
        + "/{{ .NormalizedKubernetesVersion }}-strict/{{ .ResourceKind }}{{ .KindSuffix }}.json",
        str(root / "crds") + "/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--crd-dir", type=Path, action="append", default=[])
    args = parser.parse_args(argv)
    for version in KUBERNETES_VERSIONS:
        print(f"kubernetes {version}: {kubernetes_schemas(version, args.out)} schemas")
    for crd_dir in args.crd_dir:
        for crd_file in sorted(crd_dir.glob("*.yaml")):
            for path in crd_schemas(crd_file, args.out):
                print(f"crd: {path.relative_to(args.out)}")


if __name__ == "__main__":
    main()
