# fjo: the one command surface.  `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# uv from PATH, else the pip-installed module (see `venv`).
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-x -k kafka"`.
PYTEST_ARGS ?=
# pytest-xdist workers (tests/conftest.py says which tests may run side by side); 0 = none.
PYTEST_WORKERS ?= 2
# Strictly typed packages (mypy); only those that exist are checked.
TYPED_DIRS := $(wildcard contracts services/runtime)

.PHONY: help venv lint test pytest services-up services-down services-status demo
.PHONY: tools up down deploy-check browser assets screenshots compat release-baseline openapi docs sandbox

help:
	@echo "make demo           run the demo on the embedded default (SQLite + embedded bus)"
	@echo "make test           venv + lint + compat + pytest (what CI runs)"
	@echo "make pytest         pytest only, against a private Kafka and PostgreSQL (PYTEST_ARGS=...)"
	@echo "make lint           ruff check, ruff format --check, lint-imports, private imports, mypy"
	@echo "make venv           create/refresh .venv from uv.lock (with dev dependencies)"
	@echo "make services-up    start Kafka and PostgreSQL for ad-hoc runs (var/kafka, var/postgres)"
	@echo "make services-down  stop them"
	@echo "make up / down      the whole platform as local processes (fjo up / fjo down, var/stack)"
	@echo "make deploy-check   regenerate-check, render and validate the Kubernetes manifests"
	@echo "make screenshots    the portal's browser journeys, saving docs/portal/*.png and axe.json"
	@echo "make compat         fail on a breaking contract/API change since the last release"
	@echo "make release-baseline VERSION=x.y.z   commit today's contracts as release x.y.z's baseline"
	@echo "make openapi        rewrite contracts/openapi/ (each API's OpenAPI document)"
	@echo "make docs           the AsyncAPI and OpenAPI documents as standalone HTML in build/docs/"

venv:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --quiet

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports
	.venv/bin/python scripts/private_imports.py
	.venv/bin/mypy $(TYPED_DIRS)

test: venv lint compat pytest

# Breaking changes (removed/retyped fields, new required fields, removed routes/responses)
# since the newest baseline under contracts/released/ (see contracts/compat.py).
compat: venv
	.venv/bin/python -m contracts.compat

# At a release: write today's documents as its baseline, commit, tag v$(VERSION).
release-baseline: venv
	@test -n "$(VERSION)" || { echo "usage: make release-baseline VERSION=x.y.z" >&2; exit 2; }
	.venv/bin/python -m contracts.generate --check
	.venv/bin/python -m fjo.openapi --check
	.venv/bin/python -m contracts.compat --release $(VERSION)

openapi: venv assets
	.venv/bin/python -m fjo.openapi

# Redocly CLI (npm, pinned in scripts/docs/package-lock.json) renders every committed document.
docs: venv
	.venv/bin/python -m contracts.generate --check
	.venv/bin/python -m fjo.openapi --check
	scripts/docs.sh

# Starts its own Kafka and PostgreSQL (under var/run.*), exports FJO_TEST_KAFKA_BOOTSTRAP and
# FJO_TEST_POSTGRES_URL, runs pytest, always stops both, exits with pytest's status.
pytest: venv tools browser assets sandbox
	scripts/with-services.sh .venv/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# Debian's chromium + chromium-driver for the portal's browser tests (apt, if missing).
browser:
	scripts/browser.sh install

# bubblewrap + util-linux (prlimit, setpriv): the sandbox of workspace jobs (apt, if missing).
sandbox:
	scripts/sandbox.sh install

# govuk-frontend's compiled assets (npm pack, integrity checked) for the portal.
assets:
	scripts/assets.sh install

screenshots: venv browser assets
	FJO_SCREENSHOTS=docs/portal .venv/bin/pytest -q tests/browser

services-up: venv
	scripts/kafka.sh start
	scripts/postgres.sh start
	@echo "export FJO_TEST_KAFKA_BOOTSTRAP=$$(cat var/kafka/bootstrap)"
	@echo "export FJO_TEST_POSTGRES_URL=$$(cat var/postgres/url)"

services-down:
	@rc=0; scripts/kafka.sh stop || rc=1; scripts/postgres.sh stop || rc=1; exit $$rc

services-status:
	-scripts/kafka.sh status
	-scripts/postgres.sh status

demo: venv sandbox
	$(UV) run --frozen fjo demo

# ---- deploy (issue 7): tools from the Go module proxy and PyPI, cached in ~/.cache/fjo/tools
tools: venv
	scripts/tools.sh install

up: venv
	.venv/bin/fjo up

down:
	.venv/bin/fjo down

deploy-check: venv tools
	.venv/bin/python -m deploy.generate --check
	.venv/bin/pytest -q tests/deploy --deselect tests/deploy/test_local_stack.py
