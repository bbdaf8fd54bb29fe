#!/usr/bin/env bash
# Debian's Chromium and its matching chromedriver for the portal's browser tests.
#
#   scripts/browser.sh install   # apt-get install chromium chromium-driver if either is missing
#   scripts/browser.sh status    # exit 0 and print both versions if installed
#
# No browser download: Selenium drives /usr/bin/chromium through /usr/bin/chromedriver, both
# from Debian's packages (one version, so the driver always fits the browser).
set -euo pipefail

CHROMIUM=/usr/bin/chromium
DRIVER=/usr/bin/chromedriver

log() { echo "browser.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

installed() { [[ -x "$CHROMIUM" && -x "$DRIVER" ]]; }

status() {
    installed || { log "chromium or chromedriver missing"; return 1; }
    "$CHROMIUM" --version 2>/dev/null | head -1
    "$DRIVER" --version 2>/dev/null | head -1
}

install() {
    if installed; then
        return 0
    fi
    [[ "$(id -u)" == 0 ]] || die "chromium/chromedriver missing and not root to install them"
    log "installing Debian's chromium and chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        chromium chromium-driver fonts-liberation >/dev/null
    installed || die "chromium-driver installed but $CHROMIUM or $DRIVER is still missing"
}

case "${1:-}" in
    install) install ;;
    status) status ;;
    *) echo "usage: $0 install|status" >&2; exit 2 ;;
esac
