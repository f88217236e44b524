# Every target bootstraps what it needs; each step is idempotent.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WEBSTAMP := resources/web/node_modules/.installed

.PHONY: demo test bench venv web broker postgres syslibs clean package package-test basemap-tools basemap

# Debian's Python needs python3-venv for `-m venv`; installed here when it is missing. The
# decoder's compiled fast path (monitorapp/feed/_speedups.c) needs a C compiler and the Python
# headers, from Debian's packages when missing; without them the pure-Python decoder serves.
$(STAMP): pyproject.toml setup.py monitorapp/feed/_speedups.c
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) 2>/dev/null || \
	  (rm -rf $(VENV) && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
	   && $(PY) -m venv $(VENV))
	@(command -v cc >/dev/null 2>&1 && $(BIN)/python -c "import os, sys, sysconfig; \
	  sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))") || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc $(notdir $(PY))-dev >/dev/null) || \
	  echo "no C compiler or Python headers: the decoder's pure-Python path will be used"
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Leaflet and its plugins from the npm registry, pinned by package-lock.json, into an ignored
# folder; Node.js and npm from Debian's packages when missing.
$(WEBSTAMP): resources/web/package.json resources/web/package-lock.json
	@command -v npm >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null)
	cd resources/web && npm ci --no-audit --no-fund --silent
	touch $(WEBSTAMP)

web: $(WEBSTAMP)

# System packages the tests use, from Debian's packages when missing: Mosquitto (the MQTT tests
# start their own brokers), poppler-utils (the evidential PDF is rendered with pdftoppm),
# desktop-file-utils (the workstation's .desktop entry is validated) and an X server with a
# window manager (xvfb, openbox, xdotool, x11-utils: tests/test_ui_wm_close.py clicks the ×).
broker:
	@command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null)
	@command -v pdftoppm >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null)
	@command -v desktop-file-validate >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq desktop-file-utils >/dev/null)
	@(command -v Xvfb && command -v openbox && command -v xdotool && command -v xwininfo) >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb openbox xdotool x11-utils >/dev/null)

# PostgreSQL 15 and PostGIS 3 (the centre's record, centraldb), from Debian's packages when
# missing: the tests start a throw-away cluster of their own with these binaries (initdb and
# pg_ctl under an unprivileged user, tests/fixtures_pg.py); nothing here starts or configures
# the system's own cluster.
PG_BIN := /usr/lib/postgresql/15/bin
postgres:
	@(test -x $(PG_BIN)/initdb && test -x $(PG_BIN)/pg_ctl && \
	  test -f /usr/share/postgresql/15/extension/postgis.control) || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	   postgresql-15 postgresql-15-postgis-3 >/dev/null)

# The basemap pipeline's tools (monitorapp basemap build), from Debian's packages when missing:
# tilemaker (vector tiles) and osmium-tool. Only building a basemap needs them; the tests build
# one from the small committed cut of Camden (tests/data/osm), so `make test` installs them.
basemap-tools:
	@(command -v tilemaker >/dev/null 2>&1 && command -v osmium >/dev/null 2>&1) || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tilemaker osmium-tool >/dev/null)

# Rebuilds the shipped basemap (resources/basemap/london.*) from the OSM extracts of the pilot
# area (resources/basemap/README.md says where they come from and what they are called):
# `make basemap OSM_DIR=/path/to/the/extracts`.
basemap: venv basemap-tools
	@test -n "$(OSM_DIR)" || (echo "make basemap: set OSM_DIR to the folder of the OSM extracts (see resources/basemap/README.md)" >&2; exit 2)
	$(BIN)/python -m monitorapp basemap build --osm $(OSM_DIR)/camden.osm.pbf \
	  --osm $(OSM_DIR)/palmers-green-wood-green-highways.osm --osm $(OSM_DIR)/aldgate-whitechapel.osm \
	  --boundaries $(OSM_DIR)/london-boundaries.osm.pbf --out resources/basemap/london.mbtiles

# The system libraries Qt needs on a real display (the xcb and Wayland platform plugins,
# QtWebEngine for the map, QtMultimedia for the alarm sound), from Debian's packages when `ldd`
# of those Qt files reports one "not found": the packages of packaging/debian-runtime-packages.txt
# (packaging/syslibs.sh; installing needs root, checking takes a fraction of a second).
syslibs: venv
	@PY=$(BIN)/python sh packaging/syslibs.sh --install

demo: venv web syslibs
	$(BIN)/python main.py --demo

test: venv web broker postgres syslibs basemap-tools
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Every benchmark of the README's performance section, one after another (about 15 minutes).
bench: venv web broker syslibs
	$(BIN)/python benchmarks/bench_replay.py
	$(BIN)/python benchmarks/bench_store_ingest.py --fixes 1000000
	$(BIN)/python benchmarks/bench_crime_query.py --db benchmarks/.cache/crime10m.sqlite
	$(BIN)/python benchmarks/bench_mqtt.py --seconds 60 --tags 20000 --publishers 2
	$(BIN)/python benchmarks/bench_checkpoint.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/bench_map.py --seconds 30
	QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/bench_ui.py
	$(BIN)/python benchmarks/make_feed.py
	$(BIN)/python benchmarks/bench_places.py

# The desktop bundle for workstations (PyInstaller one-folder) in dist/monitorapp; see the README.
package: venv web syslibs
	PY=$(BIN)/python sh packaging/build.sh

# Builds the bundle, then tests it: --version, --self-check (offscreen), contents, a staged install,
# and that its Qt finds every system library it links (ldd).
package-test: package
	MONITORAPP_BUNDLE=dist/monitorapp QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q tests/test_packaging_bundle.py tests/test_system_libs.py

clean:
	rm -rf $(VENV) resources/web/node_modules build dist
