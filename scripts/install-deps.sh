#!/usr/bin/env bash
# Install what daxlab needs on a Debian 12 host, with apt-get only.
# Idempotent and quiet: prints one line per package it installs, and the
# apt log only when apt fails.
set -eu

usage() {
	cat <<'USAGE'
usage: scripts/install-deps.sh [--tests] [--libvirt] [--check]

Installs daxlab's host dependencies with apt-get (Debian 12, as root):
QEMU 10.x from bookworm-backports (the apt source is added if missing),
busybox-static, kmod, cpio, ndctl, e2fsprogs, xfsprogs, libglib2.0-dev,
libjansson-dev and jq (the host reads and writes its JSON with them),
libpmemobj-dev and libpmem-dev (PMDK, for the pmdk scenarios),
python3-pytest, gnuplot-nox (the latency model's plot), plus gcc, make,
xz-utils and pkg-config.

  --tests   also what only the tests need: chromium (report.html is
            opened in headless Chromium), clang with libFuzzer (the
            parsers are fuzzed)
  --libvirt libvirt 11 from bookworm-backports (daemon, QEMU driver,
            virsh): run.sh --libvirt and campaigns over URIs install it
            this way when it is missing
  --check   only report what is missing; exit 1 if anything is
USAGE
}

check_only=0
tests=0
with_libvirt=0
for a in "$@"; do
	case "$a" in
	-h | --help)
		usage
		exit 0
		;;
	--check) check_only=1 ;;
	--tests) tests=1 ;;
	--libvirt) with_libvirt=1 ;;
	*)
		echo "install-deps: unknown option: $a (try --help)" >&2
		exit 2
		;;
	esac
done

# Packages from bookworm itself.
BASE_PKGS="busybox-static kmod cpio ndctl e2fsprogs xfsprogs libglib2.0-dev
libjansson-dev jq python3-pytest gcc make xz-utils pkg-config dpkg-dev
ca-certificates shellcheck clang-format gnuplot-nox libpmemobj-dev libpmem-dev"
[ $tests = 0 ] || BASE_PKGS="$BASE_PKGS chromium clang libclang-rt-14-dev"
# Packages that must come from bookworm-backports (QEMU 10.x).
BPO_PKGS="qemu-system-x86 qemu-utils"
[ $with_libvirt = 0 ] || BPO_PKGS="$BPO_PKGS libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients"
BPO_LIST=/etc/apt/sources.list.d/daxlab-bookworm-backports.sources

missing=""
for p in $BASE_PKGS $BPO_PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
# The QEMU must be 10.x: an older one from bookworm does not count.
qemu_ok() {
	command -v qemu-system-x86_64 >/dev/null 2>&1 &&
		qemu-system-x86_64 --version | head -n1 | grep -Eq 'version (1[0-9])\.'
}
need_bpo=0
qemu_ok || need_bpo=1
[ ! -f "$BPO_LIST" ] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ && need_bpo=1
# deb-src is needed for the QEMU source tarball (the plugin header).
grep -rqs 'deb-src' "$BPO_LIST" 2>/dev/null || need_bpo=1

if [ -z "$missing" ] && [ "$need_bpo" = 0 ]; then
	exit 0
fi
if [ "$check_only" = 1 ]; then
	echo "install-deps: missing:${missing:- (bookworm-backports source)}"
	exit 1
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing; run as root (or install them yourself)" >&2
	exit 1
fi

log=$(mktemp "${TMPDIR:-/tmp}/daxlab-apt.XXXXXX")
trap 'rm -f "$log"' EXIT
apt_run() {
	if ! DEBIAN_FRONTEND=noninteractive "$@" >>"$log" 2>&1; then
		echo "install-deps: failed: $*" >&2
		tail -n 30 "$log" >&2
		exit 1
	fi
}

if [ ! -f "$BPO_LIST" ] || ! grep -qs deb-src "$BPO_LIST"; then
	echo "install-deps: adding apt source bookworm-backports ($BPO_LIST)"
	cat >"$BPO_LIST" <<'SRC'
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	# Also let apt fetch bookworm's own sources (apt-get source needs them
	# only for backports, but a .dsc lookup may touch the main suite).
fi
echo "install-deps: apt-get update"
apt_run apt-get update
if [ -n "$missing" ]; then
	echo "install-deps: installing:$missing"
fi
# shellcheck disable=SC2086 # word splitting of the package lists is intended
apt_run apt-get install -y --no-install-recommends $BASE_PKGS
# shellcheck disable=SC2086
apt_run apt-get install -y --no-install-recommends -t bookworm-backports $BPO_PKGS
if ! qemu_ok; then
	echo "install-deps: qemu-system-x86_64 is not 10.x after install: $(qemu-system-x86_64 --version | head -n1)" >&2
	exit 1
fi
echo "install-deps: done ($(qemu-system-x86_64 --version | head -n1))"
