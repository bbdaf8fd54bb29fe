#!/usr/bin/env bash
# Front-end packages the portal and its browser tests need, fetched by the project itself (a TRE
# has no internet at run time, so nothing comes from a CDN):
#
#   scripts/assets.sh install   # npm pack each pinned package, check its integrity, unpack
#   scripts/assets.sh path      # print the govuk-frontend folder the portal serves (or: govuk)
#   scripts/assets.sh api-docs  # print the folder of Swagger UI + ReDoc every API's /docs and
#                               # /redoc serve (services/runtime/api_docs.py names its files)
#   scripts/assets.sh axe       # print the path of axe.min.js (the browser tests inject it)
#
# Each tarball's SHA-512 must equal the registry's published integrity below (npm and node
# are all it needs, so the image's asset stage runs it too). The unpacked files are cached
# outside git under ~/.cache/fjo/<package>-<version> (FJO_ASSETS_CACHE).
set -euo pipefail

GOVUK_VERSION="6.6.0"
GOVUK_INTEGRITY="sha512-xctkWrQvLnvQt7fyjQ3MGX9S0wz0x0RQuLxCeoXF+s8EjGICG81/DYQGKN5qgO+0KVT12UAaRwUsGY6fulRcRg=="
AXE_VERSION="4.14.1"
AXE_INTEGRITY="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
SWAGGER_UI_VERSION="5.35.0"
SWAGGER_UI_INTEGRITY="sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ=="
# ReDoc 2: a classic script (3.x is an ES module, which FastAPI's ReDoc page does not load).
REDOC_VERSION="2.5.4"
REDOC_INTEGRITY="sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ=="
CACHE_ROOT="${FJO_ASSETS_CACHE:-$HOME/.cache/fjo}"

log() { echo "assets.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# fetch NAME VERSION INTEGRITY SUBDIR: package/SUBDIR of NAME@VERSION into the cache.
fetch() {
    local name="$1" version="$2" integrity="$3" subdir="$4"
    local target="$CACHE_ROOT/$name-$version"
    [[ -f "$target/.complete" ]] && return 0
    command -v npm >/dev/null || die "npm is needed to fetch $name@$version"
    local work
    work="$(mktemp -d)"
    log "fetching $name@$version"
    (cd "$work" && npm pack --silent "$name@$version" >/dev/null)
    local tarball="$work/$name-$version.tgz"
    [[ -f "$tarball" ]] || die "npm pack did not produce $tarball"
    local actual
    actual="$(node -e 'const fs = require("fs"), crypto = require("crypto");
process.stdout.write("sha512-" + crypto.createHash("sha512")
    .update(fs.readFileSync(process.argv[1])).digest("base64"));' "$tarball")"
    [[ "$actual" == "$integrity" ]] || die "$name-$version.tgz integrity mismatch: $actual"
    tar -xzf "$tarball" -C "$work"
    rm -rf "$target.partial"
    mkdir -p "$target.partial"
    cp -r "$work/package/$subdir/." "$target.partial/"
    # The licence: govuk-frontend ships none but names it (MIT) in package.json.
    cp "$work/package/package.json" "$target.partial/package.json"
    cp "$work/package/LICENSE" "$target.partial/LICENSE" 2>/dev/null || true
    touch "$target.partial/.complete"
    rm -rf "$target"
    mv "$target.partial" "$target"
    rm -rf "$work"
    log "$name@$version in $target"
}

# The files the APIs' documentation pages load, in one folder (what an image copies).
API_DOCS_FILES=(
    "swagger-ui-dist-$SWAGGER_UI_VERSION/swagger-ui-bundle.js"
    "swagger-ui-dist-$SWAGGER_UI_VERSION/swagger-ui.css"
    "swagger-ui-dist-$SWAGGER_UI_VERSION/favicon-32x32.png"
    "redoc-$REDOC_VERSION/redoc.standalone.js"
)

api_docs() {
    local target="$CACHE_ROOT/api-docs-$SWAGGER_UI_VERSION-$REDOC_VERSION"
    [[ -f "$target/.complete" ]] && return 0
    rm -rf "$target.partial"
    mkdir -p "$target.partial"
    local file
    for file in "${API_DOCS_FILES[@]}"; do
        cp "$CACHE_ROOT/$file" "$target.partial/"
    done
    cp "$CACHE_ROOT/swagger-ui-dist-$SWAGGER_UI_VERSION/LICENSE" "$target.partial/LICENSE.swagger-ui"
    cp "$CACHE_ROOT/swagger-ui-dist-$SWAGGER_UI_VERSION/NOTICE" "$target.partial/NOTICE.swagger-ui"
    cp "$CACHE_ROOT/redoc-$REDOC_VERSION/LICENSE" "$target.partial/LICENSE.redoc"
    touch "$target.partial/.complete"
    rm -rf "$target"
    mv "$target.partial" "$target"
}

install() {
    fetch govuk-frontend "$GOVUK_VERSION" "$GOVUK_INTEGRITY" dist/govuk
    fetch axe-core "$AXE_VERSION" "$AXE_INTEGRITY" .
    fetch swagger-ui-dist "$SWAGGER_UI_VERSION" "$SWAGGER_UI_INTEGRITY" .
    fetch redoc "$REDOC_VERSION" "$REDOC_INTEGRITY" bundles
    api_docs
}

case "${1:-}" in
    install) install ;;
    path | govuk) install; echo "$CACHE_ROOT/govuk-frontend-$GOVUK_VERSION" ;;
    api-docs) install; echo "$CACHE_ROOT/api-docs-$SWAGGER_UI_VERSION-$REDOC_VERSION" ;;
    axe) install; echo "$CACHE_ROOT/axe-core-$AXE_VERSION/axe.min.js" ;;
    *) echo "usage: $0 install|path|govuk|api-docs|axe" >&2; exit 2 ;;
esac
