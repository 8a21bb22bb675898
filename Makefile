# Bosun: `make run` brings the Bridge up on http://127.0.0.1:8000; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-e2e test-postgres bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# make run PORT=8001 HOST=0.0.0.0 serves elsewhere (the defaults: 127.0.0.1:8000)
HOST ?= 127.0.0.1
PORT ?= 8000
run: $(STAMP)
	$(BIN)/python manage.py up --host $(HOST) --port $(PORT)

# The suite runs in 2 workers (pytest-xdist; each has its own test database and Redis database); the browser
# tests run alone.
XDIST := -n 2

test: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e" -q $(XDIST)
	$(MAKE) --no-print-directory test-postgres
	$(MAKE) --no-print-directory test-e2e

# The scale-out mode: the whole suite again on PostgreSQL (DATABASE_URL) and the Redis channel layer and
# cache (REDIS_URL). .ci/run starts both when the machine has none.
test-postgres: $(STAMP)
	@if $(BIN)/python -c "import psycopg; psycopg.connect('postgresql://postgres@127.0.0.1:5432/postgres', connect_timeout=3).close()" 2>/dev/null; then \
		DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bosun BOSUN_TEST_DATABASE=test_bosun_ci \
		REDIS_URL=redis://127.0.0.1:6379/0 \
		$(BIN)/python -m pytest -m "not e2e" -q $(XDIST); \
	else echo "PostgreSQL is not reachable on 127.0.0.1:5432: .ci/run starts one"; exit 1; fi

test-e2e: $(STAMP)
	@command -v chromium >/dev/null || { echo "The browser tests drive Debian's Chromium (/usr/bin/chromium):" \
		"sudo apt-get install chromium (.ci/run installs it on a fresh machine)"; exit 1; }
	$(BIN)/python -m pytest -m e2e -q

# Bosun beside ../shared/floor, on SQLite and (when reachable) PostgreSQL: starts its own servers.
bench: $(STAMP)
	$(BIN)/python bench/run.py --out bench/RESULTS.md

clean:
	rm -rf $(VENV) var build *.egg-info
