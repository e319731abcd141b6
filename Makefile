# Two commands do all setup on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-module proof lint unit integration bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m deploy.local

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m schemas check

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

integration: $(STAMP)
	$(PY) -m pytest tests/integration -q

# The dashboard's browser test drives Debian's Chromium (installed once, as root or via sudo).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium \
	  || ($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium)

# promtool (alert rule tests) is in Debian's prometheus package.
PROMTOOL := /usr/bin/promtool
$(PROMTOOL):
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends prometheus \
	  || ($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends prometheus)

# Offline schema checks of deploy/ (Kubernetes, KEDA, compose) use npm packages, pinned.
VALIDATE := deploy/validate/node_modules/.package-lock.json
$(VALIDATE): deploy/validate/package-lock.json
	npm ci --prefix deploy/validate --no-audit --no-fund --silent

# The Backstage analytics module (TypeScript, npm packages pinned by its lockfile). Its tests
# build it with tsc and include an end-to-end run against the embedded stack.
MODULE := clients/backstage-plugin-analytics-module-pulse
MODULE_DEPS := $(MODULE)/node_modules/.package-lock.json
$(MODULE_DEPS): $(MODULE)/package-lock.json
	npm ci --prefix $(MODULE) --no-audit --no-fund --silent

test-module: $(STAMP) $(MODULE_DEPS) $(CHROMIUM)
	PULSE_PYTHON=$(abspath $(PY)) npm test --prefix $(MODULE) --silent

# The system proof at full size (1M events; see README "Proof"). make test runs a 50k variant.
proof: $(STAMP)
	$(PY) -m deploy.proof

test: lint $(CHROMIUM) $(PROMTOOL) $(VALIDATE) test-module
	$(PY) -m pytest tests -q -p no:cacheprovider


clean:
	rm -rf $(VENV) .pulse
