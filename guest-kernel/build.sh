#!/usr/bin/env bash
# Build a guest kernel, out of tree, with the checked-in config fragments,
# and cache it by the hash of its inputs: from Debian's linux-source-6.1
# (the default), or from a tree of the user's (--src DIR: a git checkout of
# mainline, a patched tree, an unpacked source package).
#
# Variants:
#   slim      x86_64_defconfig + config/daxlab.config + config/slim.config
#             (the default source kernel: only what the guest needs)
#   defconfig x86_64_defconfig + config/daxlab.config (for comparison)
#   debug     slim + config/debug.config (lockdep, KASAN)
#   mNN-...   a mutant: patches/mutants/mNN-....patch on top of the base
#             its header names ("Base: slim" or "Base: debug")
#
# A mutant is applied to the one source tree and built in its base's
# build directory, so only the files it touches recompile before the
# relink; the patch is reversed afterwards (also after a failure or an
# interrupt). Prints the kernel directory on stdout:
#   DIR/vmlinuz  DIR/config  DIR/kver  DIR/variant.txt  DIR/build.log
set -eu
# A make that called us (make test) must not leak into our makes: its
# MAKEFLAGS would print "Entering directory" into captured output.
unset MAKEFLAGS MAKELEVEL MFLAGS

usage() {
	cat <<'USAGE'
usage: guest-kernel/build.sh [--variant NAME] [--src DIR] [--cache DIR] [--jobs N]
       guest-kernel/build.sh --config-only [--variant NAME] [--src DIR] [--cache DIR]
       guest-kernel/build.sh --list [--src DIR]
       guest-kernel/build.sh --resolve NAME

Builds a kernel for the daxlab guest (everything it needs built in) from
Debian's linux-source-6.1, or from the tree DIR, and prints the directory
holding vmlinuz. A kernel whose inputs (the source: package version, or
the tree's git revision and uncommitted changes, or its files; the config
fragments; the mutant patch; gcc) are unchanged is never rebuilt.

  --variant NAME  slim (default), defconfig, debug, or a mutant (--list);
                  a unique prefix will do (m1)
  --src DIR       build the Linux tree DIR instead of linux-source-6.1 (out
                  of tree: DIR must be clean; a mutant is applied to DIR and
                  reversed after the build)
  --cache DIR     cache directory (default: $DAXLAB_CACHE or .cache)
  --jobs N        parallel make jobs (default: number of CPUs + 1)
  --config-only   make the .config and check that every line of the
                  fragments survived Kconfig; build nothing
  --list          list the variants and exit (with --src: and whether each
                  mutant's patch applies to DIR)
  --resolve NAME  print the variant NAME (or its unique prefix) names
USAGE
}

top=$(cd "$(dirname "$0")/.." && pwd)
here=$top/guest-kernel
cache=${DAXLAB_CACHE:-$top/.cache}
variant=slim
jobs=$(($(nproc) + 1))
config_only=0
list=0
srcdir=""
resolve=""
die() {
	echo "build-kernel: $*" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help)
		usage
		exit 0
		;;
	--variant)
		[ $# -ge 2 ] || die "--variant needs a name (try --list)"
		variant=$2
		shift
		;;
	--cache)
		[ $# -ge 2 ] || die "--cache needs a directory"
		cache=$2
		shift
		;;
	--jobs)
		[ $# -ge 2 ] || die "--jobs needs a number"
		case "$2" in '' | *[!0-9]* | 0) die "--jobs needs a positive number, not '$2'" ;; esac
		jobs=$2
		shift
		;;
	--src)
		[ $# -ge 2 ] || die "--src needs a directory"
		srcdir=$2
		shift
		;;
	--resolve)
		[ $# -ge 2 ] || die "--resolve needs a name"
		resolve=$2
		shift
		;;
	--config-only) config_only=1 ;;
	--list) list=1 ;;
	*) die "unknown option: $1 (try --help)" ;;
	esac
	shift
done

mutant_dir=$here/patches/mutants
# header_field PATCH FIELD: a "Field: value" line of a mutant's header.
header_field() {
	sed -n "/^--- /q; s/^$2: *//p" "$1" | head -n1
}
names() {
	echo slim
	echo defconfig
	echo debug
	for p in "$mutant_dir"/m*.patch; do [ ! -f "$p" ] || basename "$p" .patch; done
}
# A variant's full name: itself, or the one variant it is a prefix of.
resolve_name() {
	local n matches=()
	while read -r n; do
		[ "$n" != "$1" ] || {
			echo "$n"
			return 0
		}
		case "$n" in "$1"*) matches+=("$n") ;; esac
	done < <(names)
	case ${#matches[@]} in
	1) echo "${matches[0]}" ;;
	0) die "no such kernel variant: $1 (guest-kernel/build.sh --list)" ;;
	*) die "kernel variant '$1' is ambiguous: ${matches[*]}" ;;
	esac
}
if [ -n "$resolve" ]; then
	resolve_name "$resolve"
	exit 0
fi
if [ -n "$srcdir" ]; then
	[ -d "$srcdir" ] || die "--src: no such directory: $srcdir"
	srcdir=$(cd "$srcdir" && pwd)
	grep -q '^VERSION = ' "$srcdir/Makefile" 2>/dev/null ||
		die "--src: $srcdir is not a Linux source tree (no top-level Makefile with VERSION)"
fi
if [ "$list" = 1 ]; then
	echo "slim       defconfig + daxlab.config + slim.config (default)"
	echo "defconfig  defconfig + daxlab.config"
	echo "debug      slim + debug.config (lockdep, KASAN)"
	for p in "$mutant_dir"/m*.patch; do
		[ -f "$p" ] || continue
		n=$(basename "$p" .patch)
		applies=""
		if [ -n "$srcdir" ]; then
			if patch -p1 --dry-run --forward -s -d "$srcdir" <"$p" >/dev/null 2>&1; then
				applies="; applies to --src"
			else
				applies="; does NOT apply to --src"
			fi
		fi
		printf '%-24s %s (base %s; killed by %s%s)\n' "$n" \
			"$(sed -n '1s/^daxlab mutant [0-9]*: //p' "$p")" \
			"$(header_field "$p" Base)" "$(header_field "$p" Killed-by)" "$applies"
	done
	exit 0
fi
variant=$(resolve_name "$variant")

patch_file=""
case "$variant" in
slim) fragments="daxlab.config slim.config" ;;
defconfig) fragments="daxlab.config" ;;
debug) fragments="daxlab.config slim.config debug.config" ;;
m[0-9]*)
	patch_file=$mutant_dir/$variant.patch
	[ -f "$patch_file" ] || die "no such variant: $variant (try --list)"
	base=$(header_field "$patch_file" Base)
	case "$base" in
	slim) fragments="daxlab.config slim.config" ;;
	debug) fragments="daxlab.config slim.config debug.config" ;;
	*) die "$patch_file: header has no 'Base: slim|debug' line" ;;
	esac
	;;
*) die "no such variant: $variant (try --list)" ;;
esac
base_name=${base:-$variant}
for f in $fragments; do
	[ -r "$here/config/$f" ] || die "missing config fragment: guest-kernel/config/$f"
done

# ---------------------------------------------------------------- tools
mkdir -p "$cache/kernel-src" "$cache/kernel-build" "$cache/kernels"
need=()
for t in flex:flex bison:bison bc:bc gcc:gcc make:make xz:xz-utils; do
	command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
done
for h in /usr/include/libelf.h:libelf-dev /usr/include/openssl/ssl.h:libssl-dev; do
	[ -f "${h%%:*}" ] || need+=("${h#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "kernel build tools missing: ${need[*]} (install them, or run as root)"
	echo "build-kernel: installing ${need[*]}" >&2
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >"$cache/.apt-kernel.log" 2>&1; then
		apt-get update >/dev/null 2>&1 || true
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >"$cache/.apt-kernel.log" 2>&1 ||
			die "apt-get install ${need[*]} failed (see $cache/.apt-kernel.log)"
	fi
fi

# ---------------------------------------------------------------- source
# The identity of a user's tree: its git revision and a hash of what is
# not committed, or (not a git checkout) a hash of its source files' names,
# sizes and times.
tree_identity() {
	# git only when DIR is the top of its own checkout (a tree unpacked
	# inside another repository's ignored directory is not that repository)
	if [ "$(git -C "$1" rev-parse --show-toplevel 2>/dev/null)" = "$(cd "$1" && pwd -P)" ] &&
		git -C "$1" rev-parse --verify -q HEAD >/dev/null 2>&1; then
		echo "git $(git -C "$1" rev-parse HEAD) changes $({
			git -C "$1" diff HEAD
			git -C "$1" status --porcelain --untracked-files=normal
		} | sha256sum | cut -c1-16)"
	else
		echo "files $(cd "$1" && find . -type f \( -name '*.[chS]' -o -name 'Kconfig*' -o -name 'Makefile*' \
			-o -name '*.lds*' -o -name '*.sh' \) -printf '%P %s %T@\n' | LC_ALL=C sort | sha256sum | cut -c1-16)"
	fi
}
if [ -n "$srcdir" ]; then
	src=$srcdir
	source_desc="tree $srcdir ($(tree_identity "$srcdir"))"
	tree_tag=tree-$(echo "$source_desc" | sha256sum | cut -c1-12)-
else
	srcver=$(apt-cache policy linux-source-6.1 2>/dev/null | sed -n 's/^ *Candidate: *//p')
	if [ -z "$srcver" ] || [ "$srcver" = "(none)" ]; then
		apt-get update >/dev/null 2>&1 || true
		srcver=$(apt-cache policy linux-source-6.1 2>/dev/null | sed -n 's/^ *Candidate: *//p')
	fi
	# Offline with a source tree already unpacked: use the newest one.
	if [ -z "$srcver" ] || [ "$srcver" = "(none)" ]; then
		srcver=$(find "$cache/kernel-src" -maxdepth 1 -name 'linux-source-6.1-*' -printf '%f\n' |
			sed 's/^linux-source-6.1-//' | sort -V | tail -n1)
		[ -n "$srcver" ] || die "cannot resolve package linux-source-6.1 (apt-cache policy) and none is cached"
	fi
	src=$cache/kernel-src/linux-source-6.1-$srcver
	source_desc="linux-source-6.1 $srcver"
	tree_tag=""
fi

# The cache key is known before anything is unpacked or configured, so a
# kernel that is already built is found without waiting for the lock.
key=$({
	echo "$source_desc"
	for f in $fragments; do cat "$here/config/$f"; done
	[ -z "$patch_file" ] || cat "$patch_file"
	gcc --version | head -n1
} | sha256sum | cut -c1-16)
out=$cache/kernels/src-$tree_tag$variant-$key
if [ "$config_only" = 0 ] && [ -f "$out/vmlinuz" ]; then
	echo "$out"
	exit 0
fi

# One build at a time: the source tree is shared and mutants patch it.
exec 8>"$cache/kernel-src/.lock"
if ! flock -n 8; then
	echo "build-kernel: waiting for another kernel build to finish" >&2
	flock 8
fi
# Built by the build we waited for?
if [ "$config_only" = 0 ] && [ -f "$out/vmlinuz" ]; then
	echo "$out"
	exit 0
fi
if [ -z "$srcdir" ] && [ ! -f "$src/Makefile" ]; then
	echo "build-kernel: fetching linux-source-6.1 $srcver (about 140 MB)" >&2
	tmp=$(mktemp -d "$cache/kernel-src/.fetch.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && apt-get download "linux-source-6.1=$srcver" >download.log 2>&1) ||
		die "apt-get download linux-source-6.1=$srcver failed: $(tail -n1 "$tmp/download.log")"
	dpkg-deb -x "$tmp"/linux-source-6.1_*.deb "$tmp/deb"
	echo "build-kernel: unpacking" >&2
	tar -xJf "$tmp/deb/usr/src/linux-source-6.1.tar.xz" -C "$tmp"
	rm -rf "$src"
	mv "$tmp/linux-source-6.1" "$src"
	rm -rf "$tmp"
	trap - EXIT
fi
# A build killed between patch and reverse left its mutant applied.
if [ -f "$src/.daxlab-applied" ]; then
	left=$(cat "$src/.daxlab-applied")
	echo "build-kernel: reversing $(basename "$left") left applied by an interrupted build" >&2
	patch -p1 -R -s -d "$src" <"$left" || die "cannot reverse $left in $src: unpack the source again (rm -rf $src)"
	rm -f "$src/.daxlab-applied"
fi
# An out-of-tree build needs a clean source tree.
if [ -f "$src/.config" ] || [ -f "$src/include/config/auto.conf" ]; then
	die "$src has a configuration in the tree: an out-of-tree build needs it clean (make mrproper there)"
fi

# ---------------------------------------------------------------- config
build=$cache/kernel-build/$tree_tag$base_name
mkdir -p "$build"
newcfg=$build/.config.new
make -s -C "$src" O="$build" KCONFIG_CONFIG=.config.new x86_64_defconfig >/dev/null
frag_paths=""
for f in $fragments; do frag_paths="$frag_paths $here/config/$f"; done
# shellcheck disable=SC2086 # a list of paths without blanks
(cd "$build" && KCONFIG_CONFIG=.config.new "$src/scripts/kconfig/merge_config.sh" -m -O "$build" .config.new $frag_paths) >/dev/null
make -s -C "$src" O="$build" KCONFIG_CONFIG=.config.new olddefconfig >/dev/null 2>&1
# Every "=y"/"=value" line must be in the result as written; a "not set"
# line must not have become set (Kconfig drops symbols whose dependencies
# are off, which is fine for a "not set").
bad=0
for f in $fragments; do
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			grep -qxF "$line" "$newcfg" || {
				echo "build-kernel: config/$f: '$line' did not survive olddefconfig (got: $(grep "^${line%%=*}=" "$newcfg" || echo 'not set'))" >&2
				bad=1
			}
			;;
		"# CONFIG_"*" is not set")
			sym=${line#\# }
			sym=${sym%% *}
			! grep -q "^$sym=" "$newcfg" || {
				echo "build-kernel: config/$f: '$line' but olddefconfig set it ($(grep "^$sym=" "$newcfg"))" >&2
				bad=1
			}
			;;
		esac
	done <"$here/config/$f"
done
[ "$bad" = 0 ] || die "config check failed for variant $variant"
if [ "$config_only" = 1 ]; then
	echo "build-kernel: $variant: config ok ($(grep -c '=y$' "$newcfg") options built in)" >&2
	echo "$newcfg"
	exit 0
fi

cmp -s "$newcfg" "$build/.config" || cp "$newcfg" "$build/.config"

# ---------------------------------------------------------------- build
log=$build/build-$variant.log
mk=""
cleanup() {
	# make runs in a process group of its own: stop all of it, not only
	# the top make (its jobs would go on compiling)
	[ -z "${mk:-}" ] || kill -TERM -- "-$mk" 2>/dev/null || true
	if [ -f "$src/.daxlab-applied" ]; then
		patch -p1 -R -s -d "$src" <"$(cat "$src/.daxlab-applied")" && rm -f "$src/.daxlab-applied"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -n "$patch_file" ]; then
	patch -p1 --forward -s -d "$src" <"$patch_file" >"$log" 2>&1 ||
		die "$variant: the patch does not apply to $source_desc: $(head -n1 "$log")"
	echo "$patch_file" >"$src/.daxlab-applied"
fi
start=$(date +%s)
echo "build-kernel: building $variant ($base_name tree, -j$jobs); log: ${log#"$top"/}" >&2
setsid setpriv --pdeathsig TERM -- make -C "$src" O="$build" -j"$jobs" bzImage >"$log" 2>&1 &
mk=$!
# Progress: a line a minute with the number of objects compiled so far.
while kill -0 "$mk" 2>/dev/null; do
	for _ in $(seq 60); do
		kill -0 "$mk" 2>/dev/null || break
		sleep 1
	done
	kill -0 "$mk" 2>/dev/null || break
	n=$(grep -c '^  CC ' "$log" || true)
	echo "build-kernel: $variant: $(($(date +%s) - start)) s, $n files compiled, last: $(grep '^  [A-Z]' "$log" | tail -n1 | sed 's/^ *//')" >&2
done
if ! wait "$mk"; then
	grep -E 'error|Error' "$log" | head -n 10 >&2 || true
	die "$variant: kernel build failed (log: $log)"
fi
mk=""
secs=$(($(date +%s) - start))
compiled=$(grep -c '^  CC ' "$log" || true)
kver=$(make -s --no-print-directory -C "$src" O="$build" kernelrelease)
# It names the cached kernel and the initramfs: one plain word or nothing.
[[ "$kver" =~ ^[0-9][A-Za-z0-9._+~-]*$ ]] || die "unexpected kernel release from make kernelrelease: $(printf '%q' "$kver")"
tmp=$(mktemp -d "$cache/kernels/.build.XXXXXX")
cp "$build/arch/x86/boot/bzImage" "$tmp/vmlinuz"
cp "$build/.config" "$tmp/config"
echo "$kver" >"$tmp/kver"
cp "$log" "$tmp/build.log"
{
	echo "variant=$variant"
	echo "base=$base_name"
	echo "source=$source_desc"
	echo "build_dir=$build"
	echo "fragments=$fragments"
	echo "patch=${patch_file:+guest-kernel/patches/mutants/$(basename "$patch_file")}"
	echo "build_seconds=$secs"
	echo "files_compiled=$compiled"
	echo "jobs=$jobs"
} >"$tmp/variant.txt"
rm -rf "$out"
mv "$tmp" "$out"
echo "build-kernel: $variant built in ${secs} s ($compiled files compiled): ${out#"$top"/}" >&2
echo "$out"
