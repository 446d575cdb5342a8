# tracer-kit: `make demo` and `make test` set everything up from scratch (a .venv in this folder).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL := $(VENV)/share/jupyter/kernels/python3/kernel.json

.PHONY: demo test lint format bench browser java postgres docs clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tracer-kit needs Python 3.11 or newer")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@# Papermill runs the notebook on this venv's own python3 kernelspec (never a --user one).
	@test -f $(KERNEL) || $(PY) -m ipykernel install --sys-prefix --name python3
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tracer demo

# Chromium for the browser test: installed with apt when missing and we are root.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| { echo "warning: could not install chromium; the browser test will fail under CI"; [ -z "$$CI" ]; }; \
	fi

# Java 17 for the Spark engine's tests (pyspark comes with the dev extra).
java:
	@if ! command -v java >/dev/null && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null) \
		|| { echo "warning: could not install Java 17; the Spark tests will fail under CI"; [ -z "$$CI" ]; }; \
	fi

# PostgreSQL for the database source and export tests (the tests start their own server).
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
		|| { echo "warning: could not install PostgreSQL; the database tests will fail under CI"; [ -z "$$CI" ]; }; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check tracer_kit tests benchmarks
	$(VENV)/bin/ruff format --check tracer_kit tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff format tracer_kit tests benchmarks
	$(VENV)/bin/ruff check --fix tracer_kit tests benchmarks

# The documentation site, strictly (a broken link or an unreadable docstring fails), offline.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

test: $(STAMP) browser java postgres lint docs
	$(VENV)/bin/pytest -p no:cacheprovider tests notebooks --nbval-lax --nbval-cell-timeout 300 --durations=15

# Throughput (1 GB), latency (whole processes), the peers (in their own venv,
# benchmarks/.peers-venv), and the export to PostgreSQL (1 M rows).
bench: $(STAMP) postgres
	$(PY) benchmarks/run.py
	$(PY) benchmarks/latency.py
	$(PY) benchmarks/server.py
	$(PY) benchmarks/peers.py
	$(PY) benchmarks/export.py

clean:
	rm -rf $(VENV) site benchmarks/.peers-venv data/warehouse.duckdb data/warehouse.duckdb.wal data/bronze data/processed data/staging reports
