PY ?= .venv/bin/python
PIP := .venv/bin/pip
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test setup worker bench clean images lint

.venv/.installed: requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $@

setup: .venv/.installed

## Set up, migrate, seed the demo project and start web + one worker on the embedded default.
run: setup
	bash scripts/run.sh

## The whole test suite (against PostgreSQL and Redis when DATABASE_URL / CELERY_BROKER_URL say so).
test: setup
	bash scripts/test.sh

## The layers' contracts (import-linter) and ruff's lint and format checks; the tree is kept clean.
lint: setup
	.venv/bin/lint-imports
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

## The container images, stamped with the commit they were built from (runs and model cards record it).
images:
	PORTAL_CODE_VERSION=$$(git rev-parse HEAD) docker compose build
	PORTAL_CODE_VERSION=$$(git rev-parse HEAD) docker compose --profile gpu build worker-gpu

clean:
	rm -rf var/ .pytest_cache
