# Every target bootstraps what it needs; each step is idempotent.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WEBSTAMP := resources/web/node_modules/.installed

.PHONY: demo test bench venv web broker clean package package-test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

$(WEBSTAMP): resources/web/package.json resources/web/package-lock.json
	cd resources/web && npm ci --no-audit --no-fund --silent
	touch $(WEBSTAMP)

web: $(WEBSTAMP)

# Mosquitto is needed by the MQTT tests; install it from Debian's packages when missing.
broker:
	@command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null)

demo: venv web
	$(BIN)/python main.py --demo

test: venv web broker
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: venv
	$(BIN)/python benchmarks/bench_replay.py

# The desktop bundle for workstations (PyInstaller one-folder) in dist/monitorapp; see the README.
package: venv web
	PY=$(BIN)/python sh packaging/build.sh

# Builds the bundle, then tests it: --version, --self-check (offscreen), contents, a staged install.
package-test: package
	MONITORAPP_BUNDLE=dist/monitorapp QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q tests/test_packaging_bundle.py

clean:
	rm -rf $(VENV) resources/web/node_modules build dist
