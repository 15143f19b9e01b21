# shellcheck shell=bash
# The guest kernel: where it comes from (Debian's by name, a user's image,
# a build of linux-source-6.1 or of the user's tree, a recorded run's), its
# modules (depmod'ed on a copy when they lack modules.dep: a user's
# directory is never written), and the --widen module built against its
# headers or its build tree.
#
# After kernel_prepare: KDIR (vmlinuz, kver, lib/modules/KVER when it has
# modules, config when known), KVER, KERNEL_DESC, KERNEL_BUILD (a build tree
# for out-of-tree modules, or empty: Debian's headers come from apt).

kernel_prepare() {
	local base
	KERNEL_BUILD=""
	if [ -n "$replay_dir" ]; then
		KDIR=$replay_dir/replay # a replay boots exactly what was recorded
		KERNEL_DESC="$(cat "$KDIR/kernel.txt") (replay of ${replay_dir##*/})"
	elif [ -n "$kernel" ] && [ -z "$kseries" ]; then
		user_kernel
	elif [ -n "$kvariant" ] || [ -n "$ksrc" ]; then
		local args=(--variant "${kvariant:-slim}" --cache "$CACHE")
		[ -z "$ksrc" ] || args+=(--src "$ksrc")
		# pdeathsig: run.sh killed (even by SIGKILL) stops the build too
		KDIR=$(exec setpriv --pdeathsig TERM -- "$TOP/guest-kernel/build.sh" "${args[@]}") ||
			die "building kernel variant ${kvariant:-slim}${ksrc:+ of $ksrc} failed"
		KERNEL_DESC="source ${kvariant:-slim} $(cat "$KDIR/kver") ($(sed -n 's/^source=//p' "$KDIR/variant.txt"))"
		KERNEL_BUILD=$(sed -n 's/^build_dir=//p' "$KDIR/variant.txt")
		if [ -z "$KERNEL_BUILD" ]; then # built before variant.txt said where
			base=$(sed -n 's/^base=//p' "$KDIR/variant.txt")
			KERNEL_BUILD=$CACHE/kernel-build/${base:-slim}
		fi
	else
		KDIR=$(exec setpriv --pdeathsig TERM -- "$TOP/guest-kernel/fetch-debian.sh" --series "${kseries:-6.1}" --cache "$CACHE") ||
			die "fetching the Debian ${kseries:-6.1} kernel failed"
		KERNEL_DESC="debian $(cat "$KDIR/kver")"
	fi
	KVER=$(cat "$KDIR/kver")
}

# A kernel image of the user's, with its modules directory if given.
user_kernel() {
	local kv key copy
	KDIR=$(mktemp -d "${TMPDIR:-/tmp}/daxlab-kernel.XXXXXX")
	trap 'rm -rf "$KDIR"' EXIT
	ln -s "$kernel" "$KDIR/vmlinuz"
	KERNEL_DESC="custom $kernel"
	if [ -z "$modules" ]; then
		echo "builtin-$(sha256sum "$kernel" | cut -c1-12)" >"$KDIR/kver"
		return 0
	fi
	kv=$(basename "$modules")
	echo "$kv" >"$KDIR/kver"
	mkdir -p "$KDIR/lib/modules"
	[ ! -d "$modules/build" ] || KERNEL_BUILD=$modules/build
	if [ -f "$modules/modules.dep" ]; then
		ln -s "$modules" "$KDIR/lib/modules/$kv"
		return 0
	fi
	# No modules.dep: depmod a copy in the cache, named by the directory's
	# files (their names, sizes and times), and reuse it while they stay.
	key=$({
		echo "$modules"
		find "$modules" -type f -printf '%P %s %T@\n' | LC_ALL=C sort
	} | sha256sum | cut -c1-16)
	copy=$CACHE/kernels/modules-$kv-$key
	if [ ! -f "$copy/lib/modules/$kv/modules.dep" ]; then
		echo "    $modules has no modules.dep: depmod on a copy in ${copy#"$TOP"/}"
		rm -rf "$copy.tmp"
		mkdir -p "$copy.tmp/lib/modules"
		# (hard links where it can: depmod only adds files)
		cp -al "$modules" "$copy.tmp/lib/modules/$kv" 2>/dev/null ||
			cp -a "$modules" "$copy.tmp/lib/modules/$kv" || die "cannot copy $modules into the cache"
		depmod -b "$copy.tmp" "$kv" 2>"$copy.tmp/depmod.log" ||
			die "depmod of a copy of $modules failed: $(tail -n1 "$copy.tmp/depmod.log")"
		rm -rf "$copy"
		mv "$copy.tmp" "$copy"
	fi
	ln -s "$copy/lib/modules/$kv" "$KDIR/lib/modules/$kv"
}

# WIDEN_DIR: the daxlab-widen module for this kernel.
widen_prepare() {
	local args=(--kver "$KVER" --cache "$CACHE")
	[ -z "$KERNEL_BUILD" ] || args+=(--build-dir "$KERNEL_BUILD")
	WIDEN_DIR=$("$TOP/guest-kernel/build-widen.sh" "${args[@]}") || die "building the daxlab-widen module failed"
}
