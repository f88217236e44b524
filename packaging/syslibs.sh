#!/bin/sh
# Checks that the system libraries Qt needs on a real display are there, and installs them from
# Debian's packages when they are not:
#
#   packaging/syslibs.sh [--install] [QTDIR]
#
# QTDIR is PySide6's Qt folder (default: the one of $PY, itself defaulting to .venv/bin/python;
# in the bundle: BUNDLE/_internal/PySide6/Qt, with LD_LIBRARY_PATH=BUNDLE/_internal). The check
# runs `ldd` on Qt's xcb platform plugin (and its GL integrations), the QtWebEngine helper
# process, the multimedia plugin (the alarm sound) and, where present, the Wayland plugin, and
# prints every library it reports "not found"; that takes a fraction of a second, so `make`
# runs it every time. With --install, when something is missing, it installs the packages of
# debian-runtime-packages.txt (next to this script) with apt-get, which needs root, and checks
# again. Exit status: 0 nothing missing, 1 libraries missing (or the installation failed),
# 2 bad usage or Qt's files not found.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
LIST=$HERE/debian-runtime-packages.txt
INSTALL=
if [ "${1:-}" = "--install" ]; then INSTALL=1; shift; fi
if [ $# -gt 1 ]; then echo "usage: syslibs.sh [--install] [QTDIR]" >&2; exit 2; fi
if [ $# -eq 1 ]; then
    QT=$1
else
    PY=${PY:-.venv/bin/python}
    QT=$("$PY" -c 'import os, PySide6; print(os.path.join(os.path.dirname(PySide6.__file__), "Qt"))') || {
        echo "syslibs.sh: $PY cannot import PySide6 (run \`make venv\` first)" >&2; exit 2; }
fi

# the files to check: the first three must exist, the others are checked where present
files() {
    for f in "$QT/plugins/platforms/libqxcb.so" "$QT/libexec/QtWebEngineProcess"; do
        if [ ! -f "$f" ]; then echo "syslibs.sh: $f does not exist" >&2; exit 2; fi
        echo "$f"
    done
    found=
    for f in "$QT"/plugins/multimedia/*.so; do
        if [ -f "$f" ]; then echo "$f"; found=1; fi
    done
    if [ -z "$found" ]; then echo "syslibs.sh: no multimedia plugin in $QT/plugins/multimedia" >&2; exit 2; fi
    for f in "$QT"/plugins/xcbglintegrations/*.so "$QT/plugins/platforms/libqwayland.so" \
             "$QT/plugins/wayland-graphics-integration-client/libqt-plugin-wayland-egl.so"; do
        if [ -f "$f" ]; then echo "$f"; fi
    done
}

# the libraries ldd cannot find, one per line, each with the files that need it
missing() {
    list=$(files) || exit 2
    IFS='
'
    for f in $list; do
        ldd "$f" 2>/dev/null | awk -v who="$(basename "$f")" '/=> not found/ {print $1, who}'
    done | sort -u | awk '{n[$1] = n[$1] ? n[$1] "," $2 : $2} END {for (l in n) print l " (" n[l] ")"}' | sort
}

packages() {
    sed -e 's/#.*//' "$LIST" | tr -s ' \t' '\n\n' | grep -v '^$'
}

lacking=$(missing) || exit 2
if [ -z "$lacking" ]; then exit 0; fi
echo "syslibs.sh: Qt's system libraries not found:" >&2
echo "$lacking" | sed 's/^/  /' >&2
if [ -z "$INSTALL" ]; then
    echo "syslibs.sh: install them with: apt-get install $(packages | tr '\n' ' ')" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "syslibs.sh: no apt-get here; install the packages of $LIST or their equivalents" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "syslibs.sh: installing them needs root: sudo make syslibs (or apt-get install $(packages | tr '\n' ' '))" >&2
    exit 1
fi
echo "syslibs.sh: installing $(packages | wc -l) packages from $LIST" >&2
apt-get update -qq
# shellcheck disable=SC2046 (one word per package)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(packages) >/dev/null
lacking=$(missing) || exit 2
if [ -n "$lacking" ]; then
    echo "syslibs.sh: still not found after installing the packages:" >&2
    echo "$lacking" | sed 's/^/  /' >&2
    exit 1
fi
echo "syslibs.sh: Qt's system libraries are all there now" >&2
