#!/usr/bin/env bash
# The GOV.UK Design System's compiled assets for the portal, fetched by the project itself
# (a TRE has no internet at run time, so nothing comes from a CDN).
#
#   scripts/assets.sh install   # npm pack govuk-frontend@<pinned>, check its integrity, unpack
#   scripts/assets.sh path      # print the folder the portal serves (FJO_PORTAL_ASSETS_DIR)
#
# The tarball's SHA-512 must equal the registry's published integrity below; the unpacked
# dist/ (CSS, JS, fonts, images, with the package's LICENCE) is cached outside git under
# ~/.cache/fjo/govuk-frontend-<version> (FJO_ASSETS_CACHE overrides the root).
set -euo pipefail

VERSION="6.6.0"
INTEGRITY="sha512-xctkWrQvLnvQt7fyjQ3MGX9S0wz0x0RQuLxCeoXF+s8EjGICG81/DYQGKN5qgO+0KVT12UAaRwUsGY6fulRcRg=="
CACHE_ROOT="${FJO_ASSETS_CACHE:-$HOME/.cache/fjo}"
TARGET="$CACHE_ROOT/govuk-frontend-$VERSION"

log() { echo "assets.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

install() {
    if [[ -f "$TARGET/.complete" ]]; then
        return 0
    fi
    command -v npm >/dev/null || die "npm is needed to fetch govuk-frontend@$VERSION"
    local work
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' RETURN
    log "fetching govuk-frontend@$VERSION"
    (cd "$work" && npm pack --silent "govuk-frontend@$VERSION" >/dev/null)
    local tarball="$work/govuk-frontend-$VERSION.tgz"
    [[ -f "$tarball" ]] || die "npm pack did not produce $tarball"
    local actual
    actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
    [[ "$actual" == "$INTEGRITY" ]] || die "govuk-frontend-$VERSION.tgz integrity mismatch: $actual"
    tar -xzf "$tarball" -C "$work"
    rm -rf "$TARGET.partial"
    mkdir -p "$TARGET.partial"
    cp -r "$work/package/dist/govuk/." "$TARGET.partial/"
    # The package ships no licence file; its package.json names the licence (MIT).
    cp "$work/package/package.json" "$TARGET.partial/package.json"
    touch "$TARGET.partial/.complete"
    rm -rf "$TARGET"
    mv "$TARGET.partial" "$TARGET"
    log "govuk-frontend@$VERSION in $TARGET"
}

case "${1:-}" in
    install) install ;;
    path) install; echo "$TARGET" ;;
    *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
