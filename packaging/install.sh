#!/bin/sh
# Installs the monitorapp bundle on a Linux workstation (run as root):
#
#   packaging/install.sh [BUNDLE]          BUNDLE defaults to dist/monitorapp
#
# * copies the bundle folder to $PREFIX (default /opt/monitorapp), replacing an older copy
#   only once the new one is complete;
# * installs the desktop entry into $SHARE/applications (default /usr/share) with Exec pointing
#   at $PREFIX, and the icon into $SHARE/icons/hicolor (256x256 PNG and scalable SVG);
# * checks with syslibs.sh that the system libraries Qt needs on a display are there, and
#   installs the Debian packages of debian-runtime-packages.txt when one is missing (a staged
#   installation, DESTDIR, only reports what is missing);
# * runs the installed bundle's --self-check (offscreen) and fails if it fails.
# DESTDIR stages everything under another root (packagers, tests); the self-check is then run
# from the staged copy. The bundle carries this script and its files in _internal/packaging/,
# so a copied bundle can install itself: sh BUNDLE/_internal/packaging/install.sh BUNDLE
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BUNDLE=${1:-$HERE/../dist/monitorapp}
PREFIX=${PREFIX:-/opt/monitorapp}
SHARE=${SHARE:-/usr/share}
DESTDIR=${DESTDIR:-}
test -x "$BUNDLE/monitorapp" || { echo "install.sh: no bundle at $BUNDLE (build it with \`make package\`)" >&2; exit 2; }
BUNDLE=$(cd "$BUNDLE" && pwd)

# the desktop entry and icons: from the bundle if it carries them, else from the source tree
find_file() {
    for f in "$@"; do if [ -f "$f" ]; then echo "$f"; return 0; fi; done
    echo "install.sh: none of $* exists" >&2; exit 2
}
DESKTOP=$(find_file "$BUNDLE/_internal/packaging/monitorapp.desktop" "$HERE/monitorapp.desktop")
PNG=$(find_file "$BUNDLE/_internal/resources/icons/app-icon.png" "$HERE/../resources/icons/app-icon.png")
SVG=$(find_file "$BUNDLE/_internal/resources/icons/app-icon.svg" "$HERE/../resources/icons/app-icon.svg")
SYSLIBS=$(find_file "$BUNDLE/_internal/packaging/syslibs.sh" "$HERE/syslibs.sh")

TARGET=$DESTDIR$PREFIX
mkdir -p "$(dirname "$TARGET")"
rm -rf "$TARGET.new" "$TARGET.old"
cp -a "$BUNDLE" "$TARGET.new"
if [ -e "$TARGET" ]; then mv "$TARGET" "$TARGET.old"; fi
mv "$TARGET.new" "$TARGET"
rm -rf "$TARGET.old"

APPS=$DESTDIR$SHARE/applications
ICONS=$DESTDIR$SHARE/icons/hicolor
mkdir -p "$APPS" "$ICONS/256x256/apps" "$ICONS/scalable/apps"
sed -e "s|/opt/monitorapp/monitorapp|$PREFIX/monitorapp|g" "$DESKTOP" > "$APPS/monitorapp.desktop"
chmod 0644 "$APPS/monitorapp.desktop"
cp "$PNG" "$ICONS/256x256/apps/monitorapp.png"
cp "$SVG" "$ICONS/scalable/apps/monitorapp.svg"
chmod 0644 "$ICONS/256x256/apps/monitorapp.png" "$ICONS/scalable/apps/monitorapp.svg"
if [ -z "$DESTDIR" ]; then     # refresh the menus' caches where the tools exist
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$APPS" || true
    command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$ICONS" || true
fi
# the bundle's Qt finds the libraries PyInstaller collected in _internal (the bootloader puts
# it on LD_LIBRARY_PATH), and the rest from the system
QTLIBS=$TARGET/_internal${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [ -z "$DESTDIR" ]; then
    LD_LIBRARY_PATH=$QTLIBS sh "$SYSLIBS" --install "$TARGET/_internal/PySide6/Qt"
else
    LD_LIBRARY_PATH=$QTLIBS sh "$SYSLIBS" "$TARGET/_internal/PySide6/Qt" || \
        echo "install.sh: staged installation: the workstation needs those libraries before the console can show a window" >&2
fi
echo "installed $("$TARGET/monitorapp" --version) in $TARGET"
echo "desktop entry $APPS/monitorapp.desktop, icon $ICONS/256x256/apps/monitorapp.png"
QT_QPA_PLATFORM=offscreen "$TARGET/monitorapp" --self-check
