#!/usr/bin/env bash
# Deploy tooling, installed on demand from the package registries only (no download sites):
#
#   scripts/tools.sh install            # kustomize + kubeconform + offline schemas (idempotent)
#   scripts/tools.sh path kustomize     # print the binary's path, installing it first if needed
#   scripts/tools.sh path kubeconform
#   scripts/tools.sh schemas            # print the schema root, preparing it first if needed
#
# * kustomize and kubeconform are built from their Go modules (`go install`, Go module proxy).
# * Kubernetes JSON schemas come from the PyPI package kubernetes-validate (a locked dev
#   dependency, so it is in .venv after `uv sync`); deploy/schemas.py rewrites their
#   `$id`/`$ref`s so that kubeconform resolves every reference from local files.
# * KEDA's CRDs ship in its Go module (github.com/kedacore/keda/v2, config/crd/bases);
#   `go mod download` fetches that module's zip and deploy/schemas.py turns the CRDs'
#   openAPIV3Schema into kubeconform schemas (the openapi2jsonschema rules: strict objects,
#   int-or-string).
#
# Everything is cached under ${FJO_CACHE_DIR:-~/.cache/fjo}/tools, keyed by version.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KUSTOMIZE_VERSION="${FJO_KUSTOMIZE_VERSION:-v5.8.1}"
KUBECONFORM_VERSION="${FJO_KUBECONFORM_VERSION:-v0.7.0}"
KEDA_VERSION="${FJO_KEDA_VERSION:-v2.17.2}"
CACHE_ROOT="${FJO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fjo}"
TOOLS="$CACHE_ROOT/tools"
PYTHON="${FJO_PYTHON:-$REPO_ROOT/.venv/bin/python}"

log() { echo "tools.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

go_install() { # go_install <name> <module path>@<version> <dest dir>
    local name="$1" spec="$2" dest="$3"
    [[ -x "$dest/$name" ]] && return 0
    command -v go >/dev/null || die "Go is needed to build $name (go install $spec)"
    log "building $name from $spec"
    mkdir -p "$dest.tmp"
    # A private build dir, so a half-built binary is never taken for a finished one.
    (cd "$dest.tmp" && GOBIN="$dest.tmp" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
        go install "$spec") || { rm -rf "$dest.tmp"; die "go install $spec failed"; }
    mv "$dest.tmp" "$dest"
}

kustomize_bin() {
    local dir="$TOOLS/kustomize-$KUSTOMIZE_VERSION"
    go_install kustomize "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" "$dir"
    echo "$dir/kustomize"
}

kubeconform_bin() {
    local dir="$TOOLS/kubeconform-$KUBECONFORM_VERSION"
    go_install kubeconform "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" "$dir"
    echo "$dir/kubeconform"
}

schemas_dir() {
    local kv_version dir
    [[ -x "$PYTHON" ]] || die "$PYTHON not found: run \`make venv\` (uv sync) first"
    kv_version="$("$PYTHON" -c 'import kubernetes_validate as k; print(k.__version__)')" \
        || die "kubernetes-validate is not installed in .venv (it is a dev dependency: uv sync)"
    dir="$TOOLS/schemas-kv$kv_version-keda$KEDA_VERSION"
    if [[ ! -f "$dir/.complete" ]]; then
        local keda_dir
        command -v go >/dev/null || die "Go is needed to fetch KEDA's CRDs (go mod download)"
        log "fetching KEDA $KEDA_VERSION CRDs (Go module github.com/kedacore/keda/v2)"
        keda_dir="$(cd "$TOOLS" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json \
            "github.com/kedacore/keda/v2@$KEDA_VERSION" | "$PYTHON" -c \
            'import json,sys; print(json.load(sys.stdin)["Dir"])')" \
            || die "go mod download github.com/kedacore/keda/v2@$KEDA_VERSION failed"
        rm -rf "$dir.tmp"
        (cd "$REPO_ROOT" && "$PYTHON" -m deploy.schemas --out "$dir.tmp" \
            --crd-dir "$keda_dir/config/crd/bases") || { rm -rf "$dir.tmp"; die "schemas failed"; }
        touch "$dir.tmp/.complete"
        rm -rf "$dir"
        mv "$dir.tmp" "$dir"
    fi
    echo "$dir"
}

mkdir -p "$TOOLS"
case "${1:-}" in
install)
    kustomize_bin >/dev/null
    kubeconform_bin >/dev/null
    schemas_dir >/dev/null
    log "kustomize $KUSTOMIZE_VERSION, kubeconform $KUBECONFORM_VERSION, schemas ready in $TOOLS"
    ;;
path)
    case "${2:-}" in
    kustomize) kustomize_bin ;;
    kubeconform) kubeconform_bin ;;
    *) die "usage: $0 path kustomize|kubeconform" ;;
    esac
    ;;
schemas) schemas_dir ;;
*)
    echo "usage: $0 install | path kustomize|kubeconform | schemas" >&2
    exit 2
    ;;
esac
