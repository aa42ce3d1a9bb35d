# onestop-ioc: the two commands a new machine needs.
#   make demo   install, then run Kafka, the worker, the sink and the simulator, and print the backlog report
#   make test   install, then run the whole test suite (unit + integration on real Kafka and chDB)
# Everything is installed from pinned, locked versions (uv.lock) into .venv.

PYTHON ?= python3.11
UV_VERSION := 0.13.8
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install tools demo test test-unit bench bench-history clean help

help:
	@echo "make demo   - run the whole pipeline once and print the backlog per commune"
	@echo "make test   - run the whole test suite"
	@echo "make bench  - run the throughput benchmarks (prints figures)"

$(STAMP): pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(PYTHON) -m uv sync --frozen --extra dev --python $(PYTHON)
	@touch $@

install: $(STAMP) tools

# Prometheus and Alertmanager tools come from Debian packages (promtool, amtool check the deploy configs);
# Chromium (with fonts that cover Vietnamese) draws the IOC report's PNG and runs the browser tests.
TOOL_PACKAGES := prometheus prometheus-alertmanager chromium fonts-dejavu-core
tools:
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(TOOL_PACKAGES) from Debian"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(TOOL_PACKAGES) >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(TOOL_PACKAGES) >/dev/null; } || \
	    echo "warning: could not install $(TOOL_PACKAGES); their checks will be skipped"; \
	  else echo "note: promtool/amtool/chromium missing and not root; their checks will be skipped"; fi; \
	fi

demo: install
	$(VENV)/bin/onestop demo

# pytest exits 5 when it collects no test; that is not a failure of the suite.
test: install
	$(VENV)/bin/onestop schema --check
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; rc=0; fi; exit $$rc

test-unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

bench: install
	$(PY) -m tests.bench.run

# History at scale: 5 years of one province (>= 100 million events) and every IOC panel's latency on it.
bench-history: install
	$(PY) -m tests.bench.history

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
