# The two set-up commands: `make demo` and `make test`. Both bootstrap a virtual
# environment in .venv from nothing but Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-soak lint typecheck unit system-deps bench bench-quick bench-lake soak clean

# Test workers (pytest-xdist): `make test` uses two, enough on a 2-core machine; on a bigger one
# `make test WORKERS=auto` uses every core. Tests marked xdist_group("name") share one worker
# (the packaging tests build the wheel once).
WORKERS ?= 2

# The syslog export tests run against a real rsyslog (TCP, TLS and RELP), the lake tests against
# a throwaway PostgreSQL cluster (initdb and pg_ctl, as a user that is not root); as root (CI)
# they are installed here.
SYSTEM_PACKAGES := rsyslog rsyslog-openssl rsyslog-relp openssl postgresql

$(STAMP): pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "oktaduck needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/oktaduck demo

lint: $(STAMP)
	$(BIN)/ruff check ingest tests
	$(BIN)/ruff format --check ingest tests

typecheck: $(STAMP)
	$(BIN)/mypy

system-deps:
	@if [ -x /usr/sbin/rsyslogd ] && command -v openssl >/dev/null \
	    && { ! command -v dpkg >/dev/null \
	         || dpkg -s rsyslog-openssl rsyslog-relp >/dev/null 2>&1; } \
	    && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing $(SYSTEM_PACKAGES) for the syslog and lake tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; \
	else \
	  echo "note: rsyslog or PostgreSQL is missing; the tests that need them will be skipped (apt-get install $(SYSTEM_PACKAGES))"; \
	fi

unit: $(STAMP) system-deps
	$(BIN)/pytest -q -n $(WORKERS) --dist loadgroup -m "not soak"

# The tests marked soak: three daemons sharing twenty orgs on one lake, one killed, with
# bounds on the takeover time that a machine loaded by the rest of the suite can miss.
test-soak: $(STAMP) system-deps
	$(BIN)/pytest -q -m soak

test: lint typecheck unit

# The inner loop: every test not marked slow (no daemon, rsyslog, wheel build, subprocess-heavy
# or Hypothesis-heavy tests), on every core, in well under a minute.
test-fast: $(STAMP)
	$(BIN)/pytest -q -n auto -m "not slow"

bench: $(STAMP) system-deps
	$(BIN)/python -m tests.perf.bench

# the lake part of bench alone; LAKE_EVENTS sizes its stores (the issue's 10M: see
# docs/performance.md for how long that takes)
bench-lake: $(STAMP) system-deps
	$(BIN)/python -m tests.perf.lake --events $(or $(LAKE_EVENTS),1000000)

bench-quick: $(STAMP) system-deps
	$(BIN)/python -m tests.perf.bench --quick

soak: $(STAMP) system-deps
	$(BIN)/python -m tests.perf.soak

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
