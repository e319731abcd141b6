# Two commands do all setup on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install kafka kafka-pins run test test-module test-backend test-page test-app screenshots proof proof-cluster lint unit integration bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL = DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends

# Apache Kafka (KRaft) runs on Java 17; Maven resolves its jars from Maven Central once, by the
# pinned deploy/kafka/pom.xml, checked against deploy/kafka/jars.sha256 (streams/kafka/dist.py).
JAVA := /usr/bin/java
MVN := /usr/bin/mvn
$(JAVA) $(MVN):
	$(APT_INSTALL) openjdk-17-jre-headless maven \
	  || ($(SUDO) apt-get update -q && $(APT_INSTALL) openjdk-17-jre-headless maven)

KAFKA_VERSION := $(shell sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' deploy/kafka/pom.xml)
KAFKA_LIBS := .pulse/kafka/$(KAFKA_VERSION)/libs/.verified
$(KAFKA_LIBS): deploy/kafka/pom.xml deploy/kafka/jars.sha256 | $(STAMP) $(JAVA) $(MVN)
	rm -rf .pulse/kafka/$(KAFKA_VERSION)
	$(PY) -c 'from streams.kafka.dist import ensure_installed; print(ensure_installed())'

kafka: $(KAFKA_LIBS)

# After a version change in pom.xml: resolve once without pins and write them anew.
kafka-pins: | $(MVN)
	rm -rf .pulse/kafka-pins && mvn -q -B --strict-checksums -f deploy/kafka/pom.xml \
	  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(abspath .pulse/kafka-pins)
	(echo "# sha256 of every jar deploy/kafka/pom.xml resolves (Kafka $(KAFKA_VERSION)); regenerate with: make kafka-pins"; \
	  cd .pulse/kafka-pins && sha256sum *.jar | sort -k2) > deploy/kafka/jars.sha256

run: $(STAMP) $(KAFKA_LIBS)
	$(PY) -m deploy.local

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m schemas check

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

integration: $(STAMP) $(KAFKA_LIBS)
	$(PY) -m pytest tests/integration -q

# The dashboard's browser test drives Debian's Chromium (installed once, as root or via sudo).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium \
	  || ($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium)

# kcat: the standard Kafka CLI the operators' docs use; make test reads the stack's topics with it.
KCAT := /usr/bin/kcat
$(KCAT):
	$(APT_INSTALL) kcat || ($(SUDO) apt-get update -q && $(APT_INSTALL) kcat)

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

test-module: $(STAMP) $(KAFKA_LIBS) $(MODULE_DEPS) $(CHROMIUM)
	PULSE_PYTHON=$(abspath $(PY)) npm test --prefix $(MODULE) --silent

# The Backstage backend plugin serving the insights (pinned by its lockfile); its tests run it in
# Backstage's test backend against a real Pulse query port (python -m sinks dashboard on chDB).
BACKEND := clients/backstage-plugin-pulse-backend
BACKEND_DEPS := $(BACKEND)/node_modules/.package-lock.json
$(BACKEND_DEPS): $(BACKEND)/package-lock.json
	npm ci --prefix $(BACKEND) --no-audit --no-fund --silent

test-backend: $(STAMP) $(BACKEND_DEPS)
	PULSE_PYTHON=$(abspath $(PY)) npm test --prefix $(BACKEND) --silent

# The Backstage insights page (frontend plugin, both frontend systems; pinned by its lockfile).
PAGE := clients/backstage-plugin-pulse
PAGE_DEPS := $(PAGE)/node_modules/.package-lock.json
$(PAGE_DEPS): $(PAGE)/package-lock.json
	npm ci --prefix $(PAGE) --no-audit --no-fund --silent

test-page: $(PAGE_DEPS)
	npm test --prefix $(PAGE) --silent

# A real Backstage app (new frontend and backend systems, the catalog; pinned by its lockfile)
# with the module, the page and the backend plugin installed from their folders as packed
# copies. Pulse's packages are reinstalled, and the app bundled again, only when they change.
APP := clients/backstage-app
package_dist = $(1)/dist/index.js
$(foreach p,$(MODULE) $(PAGE) $(BACKEND),$(eval $(call package_dist,$(p)): $(p)/node_modules/.package-lock.json $(p)/package.json $(wildcard $(p)/config.d.ts) $(shell find $(p)/src -type f) ; npm run build --prefix $(p) --silent))
PULSE_DISTS := $(foreach p,$(MODULE) $(PAGE) $(BACKEND),$(call package_dist,$(p)))
APP_DEPS := $(APP)/node_modules/.package-lock.json
$(APP_DEPS): $(APP)/package-lock.json | $(PULSE_DISTS)
	npm ci --prefix $(APP) --no-audit --no-fund --silent
APP_PULSE := $(APP)/node_modules/@pulse-analytics/.installed
$(APP_PULSE): $(APP_DEPS) $(PULSE_DISTS)
	rm -rf $(APP)/node_modules/@pulse-analytics
	npm install --prefix $(APP) --no-save --no-audit --no-fund --silent
	touch $@
APP_BUNDLE := $(APP)/app/dist/index.html
$(APP_BUNDLE): $(APP_PULSE) $(APP)/app/package.json $(APP)/app-config.yaml $(shell find $(APP)/app/src $(APP)/app/public -type f)
	npm run build --prefix $(APP) --silent > /dev/null

test-app: $(STAMP) $(KAFKA_LIBS) $(CHROMIUM) $(APP_BUNDLE)
	PULSE_PYTHON=$(abspath $(PY)) npm test --prefix $(APP) --silent

# The pictures in docs/backstage.md, taken by the app's test.
screenshots: $(STAMP) $(KAFKA_LIBS) $(CHROMIUM) $(APP_BUNDLE)
	PULSE_PYTHON=$(abspath $(PY)) PULSE_SCREENSHOTS=$(abspath docs/images) npm test --prefix $(APP) --silent

# The system proof at full size (1M events; see README "Proof"). make test runs a 50k variant.
proof: $(STAMP) $(KAFKA_LIBS)
	$(PY) -m deploy.proof

# The same on a three-node Kafka cluster, with a node SIGKILLed and a leader's node stopped; at
# half the rates, since three broker JVMs share the machine with the stack.
proof-cluster: $(STAMP) $(KAFKA_LIBS)
	$(PY) -m deploy.proof --brokers 3

test: lint $(KAFKA_LIBS) $(KCAT) $(CHROMIUM) $(PROMTOOL) $(VALIDATE) test-module test-backend test-page test-app
	$(PY) -m pytest tests -q -p no:cacheprovider


clean:
	rm -rf $(VENV) .pulse
