# Tend — `make run` serves the demo practice (gunicorn and the background worker),
# `make test` runs the whole suite.
SHELL := /bin/bash
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
PY := $(VENV)/bin/python
# pyenv's shim honours .python-version (3.13); otherwise take the newest python3.
PYTHON ?= $(shell for p in python3.13 python3.12 python3; do command -v $$p >/dev/null && { echo $$p; break; }; done)

.PHONY: run test lint typecheck bench check-python migrate demo clean

check-python:
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 12) else "Tend needs Python 3.12 or newer (3.13 recommended); found %d.%d. Install it with pyenv (pyenv install 3.13) and try again." % v[:2])'

$(VENV)/.base: pyproject.toml | check-python
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	@touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.base
	$(PY) -m pip install -q -e ".[test]"
	@touch $@

$(VENV)/.lint: pyproject.toml $(VENV)/.base
	$(PY) -m pip install -q -e ".[lint]"
	@touch $@

var/local.env: | check-python
	@./scripts/local-env "$(PYTHON)" "$(PYTHON)"

migrate: $(VENV)/.base var/local.env
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py seed_demo

# Links Tend builds (calendar feeds, emails) point at the server make run starts,
# unless SITE_URL is set.
run: export SITE_URL ?= http://$(HOST):$(PORT)
run: demo
	$(PY) manage.py collectstatic --noinput -v 0
	@echo
	@echo "Tend is running on http://$(HOST):$(PORT)/  (Ctrl+C stops it)"
	@echo "Demo logins, password tend-demo:"
	@echo "  admin@riverside.test      administrator and clinician"
	@echo "  scheduler@riverside.test  scheduler"
	@echo "  rivera@riverside.test, chen@riverside.test, okafor@riverside.test  clinicians"
	@echo "  admin@harbor.test, lee@harbor.test  a second practice (Harbor Family Therapy)"
	@echo
	@echo "Emails (invitations, password and calendar links) are printed here, by the"
	@echo "background worker started beside it."
	@echo
	./scripts/serve $(VENV) config.wsgi:application --bind $(HOST):$(PORT) --workers 2 \
		--access-logfile - --access-logformat '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss' \
		--logger-class calendarsync.gunicorn.RedactingLogger

test: $(VENV)/.test var/local.env
	@./scripts/test-deps
	$(PY) -m pytest $(PYTEST_ARGS)

# Ruff, then mypy against the committed baseline of known type errors.
lint: $(VENV)/.lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/typecheck

# TYPECHECK_ARGS=--update drops fixed errors from .ci/typecheck-baseline.txt.
typecheck: $(VENV)/.lint
	$(PY) scripts/typecheck $(TYPECHECK_ARGS)

bench: $(VENV)/.test var/local.env
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && \
		{ apt-get install -y -q wrk || { apt-get update -q && apt-get install -y -q wrk; }; }; } || \
		echo "wrk is not installed (apt-get install wrk): S5 will be skipped"
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var/staticfiles .mypy_cache
