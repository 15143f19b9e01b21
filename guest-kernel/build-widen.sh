#!/usr/bin/env bash
# Build the daxlab-widen kprobe module (guest-kernel/widen/) for one guest
# kernel, into the cache, and print the directory holding the .ko.
# For Debian's kernel the headers come from apt-get (linux-headers-KVER);
# for a kernel built from source, pass its build tree with --build-dir.
set -eu

usage() {
	cat <<'USAGE'
usage: guest-kernel/build-widen.sh --kver KVER [--build-dir DIR] [--cache DIR]

Builds daxlab-widen.ko for kernel release KVER into
DIR/build/widen/KVER-HASH/ (reused while the source and the kernel are
unchanged) and prints that directory. Without --build-dir it installs
linux-headers-KVER with apt-get (Debian's prebuilt kernels).
USAGE
}

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${DAXLAB_CACHE:-$top/.cache}
kver=""
kbuild=""
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help)
		usage
		exit 0
		;;
	--kver)
		kver=${2:?--kver needs a kernel release}
		shift
		;;
	--build-dir)
		kbuild=${2:?--build-dir needs a directory}
		shift
		;;
	--cache)
		cache=${2:?--cache needs a directory}
		shift
		;;
	*)
		echo "build-widen: unknown option: $1 (try --help)" >&2
		exit 2
		;;
	esac
	shift
done
[ -n "$kver" ] || {
	echo "build-widen: --kver is required (try --help)" >&2
	exit 2
}

src=$top/guest-kernel/widen
# (two source trees may share a release name: the tree counts too)
hash=$({
	cat "$src"/daxlab-widen.c "$src"/Kbuild "$0"
	echo "$kbuild"
} | sha256sum | cut -c1-12)
out=$cache/build/widen/$kver-$hash
if [ -f "$out/daxlab-widen.ko" ]; then
	echo "$out"
	exit 0
fi

if [ -z "$kbuild" ]; then
	kbuild=/usr/src/linux-headers-$kver
	if [ ! -f "$kbuild/Makefile" ]; then
		echo "build-widen: installing linux-headers-$kver" >&2
		export DEBIAN_FRONTEND=noninteractive
		if ! apt-get install -y -q --no-install-recommends "linux-headers-$kver" >"$cache/widen-apt.log" 2>&1; then
			echo "build-widen: cannot install linux-headers-$kver (see $cache/widen-apt.log)" >&2
			exit 1
		fi
	fi
fi
[ -f "$kbuild/Makefile" ] || {
	echo "build-widen: no kernel build tree at $kbuild" >&2
	exit 1
}
# A build tree of guest-kernel/build.sh built bzImage only: it has
# vmlinux.symvers but no Module.symvers, and may lack what out-of-tree
# modules need (modules_prepare).
if [ ! -f "$kbuild/Module.symvers" ]; then
	[ -f "$kbuild/vmlinux.symvers" ] || {
		echo "build-widen: $kbuild has neither Module.symvers nor vmlinux.symvers (build the kernel first)" >&2
		exit 1
	}
	echo "build-widen: preparing $kbuild for out-of-tree modules" >&2
	if ! make -s -C "$kbuild" modules_prepare >"$cache/widen-prepare.log" 2>&1; then
		tail -n 20 "$cache/widen-prepare.log" >&2
		echo "build-widen: make modules_prepare failed in $kbuild" >&2
		exit 1
	fi
	cp "$kbuild/vmlinux.symvers" "$kbuild/Module.symvers"
fi

echo "build-widen: building daxlab-widen.ko for $kver" >&2
mkdir -p "$out"
stage=$(mktemp -d "$cache/build/widen/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$src"/daxlab-widen.c "$src"/Kbuild "$stage/"
if ! make -s -C "$kbuild" M="$stage" modules >"$stage/build.log" 2>&1; then
	cat "$stage/build.log" >&2
	echo "build-widen: the module did not build against $kbuild" >&2
	exit 1
fi
cp "$stage/daxlab-widen.ko" "$out/"
echo "$out"
