#!/usr/bin/env bash
# The job sandbox's host tools (docs/workspace.md): bubblewrap, and util-linux's prlimit and
# setpriv (rlimits; dropping root to an unprivileged uid).
#
#   scripts/sandbox.sh install   # apt-get install bubblewrap (and util-linux) if missing
#   scripts/sandbox.sh status    # exit 0 and print bwrap's version if everything is there
set -euo pipefail

log() { echo "sandbox.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

installed() { command -v bwrap >/dev/null && command -v prlimit >/dev/null && command -v setpriv >/dev/null; }

status() {
    installed || { log "bwrap, prlimit or setpriv missing"; return 1; }
    bwrap --version
}

install() {
    if installed; then
        return 0
    fi
    [[ "$(id -u)" == 0 ]] || die "bubblewrap/util-linux missing and not root to install them"
    log "installing Debian's bubblewrap and util-linux"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        bubblewrap util-linux >/dev/null
    installed || die "bubblewrap installed but bwrap, prlimit or setpriv is still missing"
}

case "${1:-}" in
    install) install ;;
    status) status ;;
    *) echo "usage: $0 install|status" >&2; exit 2 ;;
esac
