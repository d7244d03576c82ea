# labledger developer / CI entry points.
#
#   make venv      create .venv (python3 -m venv) if missing
#   make demo      install runtime + [demo] extra, run `labledger demo`
#   make test      install everything (all extras + torch), run pytest (with PostgreSQL
#                  when it answers locally; the summary says what was skipped and why)
#   make check     ruff lint, ruff format --check, mypy
#   make bench     run every benchmarks/bench_*.py in turn
#   make ddl       regenerate store/_sqlite_ddl.py from store/_schema.py
#   make bench-peers  create .venv-peers (pinned mlflow, NOT a labledger dependency)
#                  so bench_server.py also runs its MLflow comparison half
#   make lock      regenerate constraints.txt in a throwaway venv
#   make browsers  make sure Debian's chromium is installed (for Playwright tests)
#   make clean     remove the venv and caches
#
# Every install goes through constraints.txt so it is fully pinned.  Install
# steps are guarded by stamp files inside .venv, so they only re-run when
# pyproject.toml or constraints.txt change (or the venv is removed).

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
PIP         := $(PY) -m pip
CONSTRAINTS := constraints.txt
ALL_EXTRAS  := postgres,s3,server,analysis,gpu,demo,dev,integrations,mlflow
# Always pin torch exactly: the CPU wheel in /opt/wheels satisfies ==2.13.0;
# an unpinned `torch` would make pip resolve the multi-GB CUDA build.
TORCH       := torch==2.13.0
PIP_FLAGS   ?= --disable-pip-version-check
PYTEST_ARGS ?=
LINT_PATHS  := src tests benchmarks

DEMO_STAMP  := $(VENV)/.installed-demo
ALL_STAMP   := $(VENV)/.installed-all

.PHONY: venv demo test check bench bench-peers lock browsers clean install install-demo ddl

# ---------------------------------------------------------------- venv
$(PY):
	$(PYTHON) -m venv $(VENV)

venv: $(PY)

# ------------------------------------------------------------- installs
$(DEMO_STAMP): pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP) install $(PIP_FLAGS) -e ".[demo]" -c $(CONSTRAINTS)
	@touch $@

$(ALL_STAMP): pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP) install $(PIP_FLAGS) -e ".[$(ALL_EXTRAS)]" "$(TORCH)" -c $(CONSTRAINTS)
	@touch $@

install-demo: $(DEMO_STAMP)
install: $(ALL_STAMP)

# --------------------------------------------------------------- demo
demo: $(DEMO_STAMP)
	$(VENV)/bin/labledger demo

# --------------------------------------------------------------- test
# pytest exit code 5 means "no tests collected": our suite must never be
# empty, so that is reported as a failure.  Any other non-zero code fails
# the target with pytest's own status.
# When LABLEDGER_TEST_POSTGRES_URL is unset and PostgreSQL answers on 127.0.0.1:5432, the
# PostgreSQL tests run against it (the database is created when missing, as .ci/run does);
# otherwise they are skipped, and pytest's summary says how many and how to run them.
PG_TEST_URL := postgresql+psycopg://postgres@127.0.0.1:5432/labledger_test

test: $(ALL_STAMP)
	@if [ -z "$$LABLEDGER_TEST_POSTGRES_URL" ] && command -v pg_isready >/dev/null 2>&1 \
		&& pg_isready -q -h 127.0.0.1 -p 5432 -U postgres >/dev/null 2>&1; then \
		if [ "$$(psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -qtAX -c "SELECT 1 FROM pg_database WHERE datname = 'labledger_test'" 2>/dev/null)" != "1" ]; then \
			psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -qtAX -c "CREATE DATABASE labledger_test" >/dev/null 2>&1 || true; \
		fi; \
		if [ "$$(psql -h 127.0.0.1 -p 5432 -U postgres -d labledger_test -qtAX -c "SELECT 1" 2>/dev/null)" = "1" ]; then \
			export LABLEDGER_TEST_POSTGRES_URL="$(PG_TEST_URL)"; \
			echo "PostgreSQL answers on 127.0.0.1:5432: LABLEDGER_TEST_POSTGRES_URL=$$LABLEDGER_TEST_POSTGRES_URL"; \
		fi; \
	fi; \
	rc=0; $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then \
		echo "ERROR: pytest collected no tests (exit code 5); the test suite must never be empty." >&2; \
		exit 5; \
	fi; \
	exit $$rc

# -------------------------------------------------------------- check
# Runs all three checks even if an earlier one fails; fails if any failed.
check: $(ALL_STAMP)
	@rc=0; \
	echo "+ ruff check $(LINT_PATHS)"; $(VENV)/bin/ruff check $(LINT_PATHS) || rc=1; \
	echo "+ ruff format --check $(LINT_PATHS)"; $(VENV)/bin/ruff format --check $(LINT_PATHS) || rc=1; \
	echo "+ mypy"; $(VENV)/bin/mypy || rc=1; \
	if [ $$rc -ne 0 ]; then echo "make check: FAILED" >&2; fi; \
	exit $$rc

# ---------------------------------------------------------------- ddl
# The SQLite schema snapshot a new embedded store is created from, compiled from the
# one declaration in store/_schema.py (tests/core/test_lite.py fails while it is stale).
ddl: $(ALL_STAMP)
	$(PY) -m labledger.store._gen_ddl
	$(VENV)/bin/ruff format src/labledger/store/_sqlite_ddl.py

# -------------------------------------------------------------- bench
bench: $(ALL_STAMP)
	@shopt -s nullglob; files=(benchmarks/bench_*.py); \
	if [ $${#files[@]} -eq 0 ]; then echo "No benchmarks/bench_*.py found."; exit 0; fi; \
	for f in "$${files[@]}"; do \
		echo "=== $$f"; \
		$(PY) "$$f" || exit $$?; \
	done

# -------------------------------------------------------- bench-peers
# A separate venv for the peer comparison in benchmarks/bench_server.py: mlflow
# (with psycopg2 for its PostgreSQL backend) pinned by benchmarks/peers-constraints.txt.
# It is never part of labledger's dependencies or constraints.txt, and `make bench`
# does not need it (bench_server.py skips the MLflow half when .venv-peers is absent).
PEERS_VENV        := .venv-peers
PEERS_PY          := $(PEERS_VENV)/bin/python
PEERS_CONSTRAINTS := benchmarks/peers-constraints.txt
PEERS_STAMP       := $(PEERS_VENV)/.installed-peers

$(PEERS_PY):
	$(PYTHON) -m venv $(PEERS_VENV)

$(PEERS_STAMP): $(PEERS_CONSTRAINTS) | $(PEERS_PY)
	$(PEERS_PY) -m pip install $(PIP_FLAGS) mlflow psycopg2-binary -c $(PEERS_CONSTRAINTS)
	@touch $@

bench-peers: $(PEERS_STAMP)
	@$(PEERS_VENV)/bin/mlflow --version
	@echo "Peer venv ready: .venv/bin/python benchmarks/bench_server.py [--quick] now runs the MLflow half too."

# --------------------------------------------------------------- lock
# Resolve everything from scratch in a throwaway venv and freeze it.
# setuptools is kept (torch requires a newer one than the venv ships with);
# pip itself and the editable labledger are dropped; torch's local "+cpu"
# label is stripped so `torch==2.13.0` matches the CPU wheel in /opt/wheels.
lock:
	@set -euo pipefail; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "Creating throwaway venv in $$tmp"; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install $(PIP_FLAGS) -e ".[$(ALL_EXTRAS)]" "$(TORCH)"; \
	{ \
		echo "# Exact pins for: pip install -e \".[$(ALL_EXTRAS)]\" $(TORCH)"; \
		echo "# Generated with Python $$("$$tmp/venv/bin/python" -c 'import platform; print(platform.python_version())') on $$(uname -sm)."; \
		echo "# Do not edit by hand; regenerate with: make lock"; \
		echo "# (fresh throwaway venv, pip freeze --all --exclude-editable, minus pip/labledger,"; \
		echo "#  torch's +cpu local label stripped so the CPU wheel in /opt/wheels matches)."; \
		"$$tmp/venv/bin/python" -m pip freeze --all --exclude-editable \
			| grep -v -i -E '^(pip|labledger)==' \
			| sed -E 's/^torch==([^+]+)\+.*$$/torch==\1/' \
			| LC_ALL=C sort -f; \
	} > $(CONSTRAINTS).tmp; \
	mv $(CONSTRAINTS).tmp $(CONSTRAINTS); \
	echo "Wrote $(CONSTRAINTS) ($$(grep -c '==' $(CONSTRAINTS)) pins)."

# ----------------------------------------------------------- browsers
browsers:
	@if [ -x /usr/bin/chromium ]; then \
		echo "chromium already installed: $$(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"; \
	else \
		if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi; \
		echo "Installing Debian chromium via apt-get"; \
		$$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

# -------------------------------------------------------------- clean
clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts
	find . -path ./.git -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -prune -exec rm -rf {} +
