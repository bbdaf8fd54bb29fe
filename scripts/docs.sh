#!/usr/bin/env bash
# The docs build (`make docs`): each API's OpenAPI document (contracts/openapi/*.json) and the
# bus's AsyncAPI document (contracts/schemas/asyncapi.json) rendered to standalone HTML pages,
# with Redoc's scripts inlined so that they open from disk with no network (a TRE has none):
#
#   scripts/docs.sh [OUT]   # default build/docs/ (build output, not in git): index.html,
#                           # asyncapi.html and <service>.html per API
#
# Redocly CLI comes from npm, pinned with its integrity in scripts/docs/package-lock.json and
# installed by `npm ci` into ~/.cache/fjo/tools/redocly-cli-<version> (FJO_CACHE_DIR). Its
# telemetry and update check are off.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${FJO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fjo}"
OUT="${1:-$REPO_ROOT/build/docs}"
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true

log() { echo "docs.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v npm >/dev/null || die "npm is needed for Redocly CLI"
version="$(node -p 'require(process.argv[1]).dependencies["@redocly/cli"]' \
    "$REPO_ROOT/scripts/docs/package.json")"
tool="$CACHE_ROOT/tools/redocly-cli-$version"
if [[ ! -x "$tool/node_modules/.bin/redocly" ]]; then
    log "installing @redocly/cli@$version"
    rm -rf "$tool.partial"
    mkdir -p "$tool.partial"
    cp "$REPO_ROOT/scripts/docs/package.json" "$REPO_ROOT/scripts/docs/package-lock.json" \
        "$tool.partial/"
    npm ci --prefix "$tool.partial" --silent --no-audit --no-fund --ignore-scripts
    rm -rf "$tool"
    mv "$tool.partial" "$tool"
fi

# Redoc still names its vendor's logo and icon sets on a CDN: the page's policy keeps it to
# what it carries (the browser then never asks; the page shows no logo).
POLICY="default-src 'self' 'unsafe-inline' data: blob:; connect-src 'self' data: blob:"

render() { # render DOCUMENT PAGE
    "$tool/node_modules/.bin/redocly" build-docs "$1" --inlineBundle -o "$2" >/dev/null 2>&1 \
        || die "redocly build-docs $1 failed"
    local meta="<meta http-equiv=\"Content-Security-Policy\" content=\"$POLICY\">"
    sed -i "0,/<head>/s||<head>$meta|" "$2"
    grep -q 'http-equiv="Content-Security-Policy"' "$2" || die "$2: no <head> for the policy"
    log "$2"
}

mkdir -p "$OUT"
pages=()
render "$REPO_ROOT/contracts/schemas/asyncapi.json" "$OUT/asyncapi.html"
pages+=("asyncapi.html|The event bus (AsyncAPI): topics, events, producers and consumers")
for document in "$REPO_ROOT"/contracts/openapi/*.json; do
    name="$(basename "$document" .json)"
    render "$document" "$OUT/$name.html"
    pages+=("$name.html|The $name API (OpenAPI)")
done
{
    echo '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    echo '<title>fjo: contracts and APIs</title></head><body><h1>fjo: contracts and APIs</h1><ul>'
    for page in "${pages[@]}"; do
        echo "<li><a href=\"${page%%|*}\">${page#*|}</a></li>"
    done
    echo '</ul></body></html>'
} >"$OUT/index.html"
echo "$OUT/index.html"
