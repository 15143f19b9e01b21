#!/usr/bin/env bash
# Put QEMU's qemu-plugin.h (no Debian binary package ships it) into the
# cache, from the source tarball of the installed QEMU. Prints the include
# directory. Reuses a cached copy for the same upstream version.
set -eu

case "${1:-}" in
-h | --help)
	echo "usage: emulator/fetch-qemu-header.sh CACHE_DIR"
	echo "Extracts include/qemu/qemu-plugin.h of the installed QEMU into CACHE_DIR/qemu/VERSION/."
	exit 0
	;;
"")
	echo "fetch-qemu-header: usage: fetch-qemu-header.sh CACHE_DIR" >&2
	exit 2
	;;
esac
cache=$1
ver=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null) || {
	echo "fetch-qemu-header: qemu-system-x86 is not installed (run scripts/install-deps.sh)" >&2
	exit 1
}
upstream=${ver#*:}
upstream=${upstream%%+*}
upstream=${upstream%%-*}
dir=$cache/qemu/$upstream
if [ -f "$dir/qemu-plugin.h" ]; then
	echo "$dir"
	exit 0
fi
mkdir -p "$cache/qemu"
tmp=$(mktemp -d "$cache/qemu/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "fetch-qemu-header: downloading the QEMU $upstream source tarball" >&2
# The .dsc and debian.tar may 404 on backports mirrors; the orig tarball
# is all we need, so judge by the file, not by apt's exit code.
(cd "$tmp" && apt-get source --download-only -t bookworm-backports qemu >apt.log 2>&1) || true
tarball=$(find "$tmp" -maxdepth 1 -name "qemu_${upstream}*.orig.tar.*" | head -n1)
if [ -z "$tarball" ]; then
	echo "fetch-qemu-header: could not download the QEMU source tarball:" >&2
	tail -n 3 "$tmp/apt.log" >&2
	exit 1
fi
tar -xf "$tarball" -C "$tmp" --wildcards '*/include/qemu/qemu-plugin.h'
mkdir -p "$dir"
cp "$tmp"/*/include/qemu/qemu-plugin.h "$dir/qemu-plugin.h"
echo "$dir"
