#!/usr/bin/env bash
# Front-end packages the portal and its browser tests need, fetched by the project itself (a TRE
# has no internet at run time, so nothing comes from a CDN):
#
#   scripts/assets.sh install   # npm pack each pinned package, check its integrity, unpack
#   scripts/assets.sh path      # print the govuk-frontend folder the portal serves
#   scripts/assets.sh axe       # print the path of axe.min.js (the browser tests inject it)
#
# Each tarball's SHA-512 must equal the registry's published integrity below. The unpacked
# files are cached outside git under ~/.cache/fjo/<package>-<version> (FJO_ASSETS_CACHE).
set -euo pipefail

GOVUK_VERSION="6.6.0"
GOVUK_INTEGRITY="sha512-xctkWrQvLnvQt7fyjQ3MGX9S0wz0x0RQuLxCeoXF+s8EjGICG81/DYQGKN5qgO+0KVT12UAaRwUsGY6fulRcRg=="
AXE_VERSION="4.14.1"
AXE_INTEGRITY="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
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
    actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
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

install() {
    fetch govuk-frontend "$GOVUK_VERSION" "$GOVUK_INTEGRITY" dist/govuk
    fetch axe-core "$AXE_VERSION" "$AXE_INTEGRITY" .
}

case "${1:-}" in
    install) install ;;
    path) install; echo "$CACHE_ROOT/govuk-frontend-$GOVUK_VERSION" ;;
    axe) install; echo "$CACHE_ROOT/axe-core-$AXE_VERSION/axe.min.js" ;;
    *) echo "usage: $0 install|path|axe" >&2; exit 2 ;;
esac
