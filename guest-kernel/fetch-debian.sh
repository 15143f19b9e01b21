#!/usr/bin/env bash
# Fetch Debian's prebuilt 6.1 kernel (the default guest) into the cache.
# The ABI (6.1.0-NN) is resolved from linux-image-amd64's dependency at run
# time, never hard-coded. Prints the kernel directory on stdout:
#   DIR/vmlinuz  DIR/lib/modules/KVER/...  DIR/kver
set -eu

usage() {
	cat <<'USAGE'
usage: guest-kernel/fetch-debian.sh [--cache DIR]

Downloads linux-image-6.1.0-NN-amd64 (NN resolved with apt-cache from
linux-image-amd64) and unpacks it under DIR/kernels/debian-KVER/.
Reuses an already unpacked copy. Prints that directory.
USAGE
}

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${DAXLAB_CACHE:-$top/.cache}
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help)
		usage
		exit 0
		;;
	--cache)
		cache=${2:?--cache needs a directory}
		shift
		;;
	*)
		echo "fetch-debian: unknown option: $1 (try --help)" >&2
		exit 2
		;;
	esac
	shift
done

# Resolve the ABI. Only a 6.1 image counts: backports may offer newer ones.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n1)
if [ -z "$pkg" ]; then
	# An empty package list on a new machine: update once and retry.
	apt-get update >/dev/null 2>&1 || true
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n1)
fi
if [ -z "$pkg" ]; then
	echo "fetch-debian: cannot resolve the Debian 6.1 kernel from 'apt-cache depends linux-image-amd64'" >&2
	exit 1
fi
kver=${pkg#linux-image-}
dir=$cache/kernels/debian-$kver
if [ -f "$dir/vmlinuz" ] && [ -d "$dir/lib/modules/$kver" ]; then
	echo "$dir"
	exit 0
fi

echo "fetch-debian: downloading $pkg" >&2
tmp=$(mktemp -d "$cache/.fetch.XXXXXX" 2>/dev/null) || {
	mkdir -p "$cache" && tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
}
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && apt-get download "$pkg" >download.log 2>&1); then
	echo "fetch-debian: apt-get download $pkg failed:" >&2
	tail -n 5 "$tmp/download.log" >&2
	exit 1
fi
mkdir -p "$tmp/deb"
dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/deb"
mkdir -p "$tmp/out/lib/modules"
cp "$tmp/deb/boot/vmlinuz-$kver" "$tmp/out/vmlinuz"
cp "$tmp/deb/boot/config-$kver" "$tmp/out/config"
mv "$tmp/deb/lib/modules/$kver" "$tmp/out/lib/modules/$kver"
echo "$kver" >"$tmp/out/kver"
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
mv "$tmp/out" "$dir"
echo "fetch-debian: $kver unpacked into $dir" >&2
echo "$dir"
