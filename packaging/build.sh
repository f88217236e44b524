#!/bin/sh
# Builds the one-folder bundle dist/monitorapp/ from packaging/monitorapp.spec and prints how
# long it took and how large the result is. `make package` runs it; PY picks the interpreter
# (default: the project's .venv). Needs the web assets (`make web`) and PyInstaller 6.x
# (installed here from PyPI if the virtualenv lacks it).
set -eu
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -c 'import PyInstaller' 2>/dev/null || "$PY" -m pip install -q 'pyinstaller>=6.10,<7'
test -f resources/web/node_modules/leaflet/dist/leaflet.js || {
    echo "build.sh: the map's web assets are not installed; run \`make web\` first" >&2; exit 2; }
start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/monitorapp.spec
end=$(date +%s)
size=$(du -sm dist/monitorapp | cut -f1)
files=$(find dist/monitorapp -type f | wc -l)
echo "built dist/monitorapp in $((end - start)) s: ${size} MB, ${files} files (PyInstaller $("$PY" -c 'import PyInstaller; print(PyInstaller.__version__)'))"
