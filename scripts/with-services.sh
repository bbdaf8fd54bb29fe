#!/usr/bin/env bash
# Run a command against a private, throw-away Kafka broker and PostgreSQL cluster:
#
#   scripts/with-services.sh .venv/bin/pytest -x
#
# Starts both (state under var/run.XXXXXX, so concurrent runs in one working tree don't share
# or stop each other's services), exports FJO_TEST_KAFKA_BOOTSTRAP and FJO_TEST_POSTGRES_URL,
# runs the command, then ALWAYS stops what it started (also on failure or Ctrl-C) and exits
# with the command's status. Logs of a failed run are kept in its var/run.XXXXXX dir.
set -uo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -gt 0 ]] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

mkdir -p "$REPO_ROOT/var"
RUN_DIR="$(mktemp -d "$REPO_ROOT/var/run.XXXXXX")" || exit 1
chmod 755 "$RUN_DIR" # the postgres OS user must reach its cluster dir below
export FJO_KAFKA_STATE_DIR="$RUN_DIR/kafka"
export FJO_POSTGRES_STATE_DIR="$RUN_DIR/postgres"

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    "$REPO_ROOT/scripts/kafka.sh" stop || status=1
    "$REPO_ROOT/scripts/postgres.sh" stop || status=1
    if [[ $status -eq 0 ]]; then
        rm -rf "$RUN_DIR"
    else
        echo "with-services.sh: exit status $status; service logs kept in $RUN_DIR" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$REPO_ROOT/scripts/kafka.sh" start >/dev/null || exit 1
"$REPO_ROOT/scripts/postgres.sh" start >/dev/null || exit 1
FJO_TEST_KAFKA_BOOTSTRAP="$(cat "$FJO_KAFKA_STATE_DIR/bootstrap")"
FJO_TEST_POSTGRES_URL="$(cat "$FJO_POSTGRES_STATE_DIR/url")"
export FJO_TEST_KAFKA_BOOTSTRAP FJO_TEST_POSTGRES_URL
echo "with-services.sh: FJO_TEST_KAFKA_BOOTSTRAP=$FJO_TEST_KAFKA_BOOTSTRAP" >&2
echo "with-services.sh: FJO_TEST_POSTGRES_URL=$FJO_TEST_POSTGRES_URL" >&2

"$@"
