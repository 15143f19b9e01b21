#!/usr/bin/env bash
# Fetch one of Debian's prebuilt kernels into the cache: 6.1 (bookworm, the
# default guest) or 6.12 (bookworm-backports). The ABI (6.1.0-NN,
# 6.12.NN+deb12) is resolved from linux-image-amd64's dependency in that
# suite at run time, never hard-coded. The modules are depmod'ed in the
# cache. Prints the kernel directory on stdout:
#   DIR/vmlinuz  DIR/config  DIR/lib/modules/KVER/...  DIR/kver
set -eu

usage() {
	cat <<'USAGE'
usage: guest-kernel/fetch-debian.sh [--series 6.1|6.12] [--cache DIR]

Downloads Debian's linux-image for SERIES (default 6.1; 6.12 comes from
bookworm-backports), its ABI resolved with apt-cache from linux-image-amd64,
unpacks it under DIR/kernels/debian-KVER/ and runs depmod there. Reuses an
already unpacked copy. Prints that directory.
USAGE
}

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${DAXLAB_CACHE:-$top/.cache}
series=6.1
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
	--series)
		series=${2:?--series needs 6.1 or 6.12}
		shift
		;;
	*)
		echo "fetch-debian: unknown option: $1 (try --help)" >&2
		exit 2
		;;
	esac
	shift
done
case "$series" in
6.1) suite_args=() pattern='linux-image-6\.1\.0-[0-9]*-amd64' ;;
6.12) suite_args=(-t bookworm-backports) pattern='linux-image-6\.12\.[0-9]*+deb12-amd64' ;;
*)
	echo "fetch-debian: no Debian kernel series '$series' (6.1 or 6.12)" >&2
	exit 2
	;;
esac

# Resolve the ABI: the image linux-image-amd64 depends on in that suite.
resolve() {
	apt-cache depends ${suite_args[@]+"${suite_args[@]}"} linux-image-amd64 2>/dev/null |
		sed -n "s/^ *Depends: \($pattern\)\$/\1/p" | head -n1
}
pkg=$(resolve)
if [ -z "$pkg" ]; then
	# An empty package list on a new machine: update once and retry.
	apt-get update >/dev/null 2>&1 || true
	pkg=$(resolve)
fi
if [ -z "$pkg" ]; then
	echo "fetch-debian: cannot resolve the Debian $series kernel from 'apt-cache depends ${suite_args[*]} linux-image-amd64'" >&2
	exit 1
fi
kver=${pkg#linux-image-}
dir=$cache/kernels/debian-$kver
if [ -f "$dir/vmlinuz" ] && [ -f "$dir/lib/modules/$kver/modules.dep" ]; then
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
# The .deb ships no modules.dep: the initramfs and --modules users want one.
depmod -b "$tmp/out" "$kver"
echo "$kver" >"$tmp/out/kver"
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
mv "$tmp/out" "$dir"
echo "fetch-debian: $kver unpacked into $dir" >&2
echo "$dir"
