#!/usr/bin/env bash
# Build the daxlab guest initramfs (cpio newc, gzip) into the cache.
#
# Contents: busybox (static), kmod + the modules the guest needs (with
# depmod), ndctl, mke2fs, mkfs.xfs, xfs_io, the guest agent as /init, and
# the static guest binaries (scenarios, dax-probe). The image is named by
# the hash of its inputs and rebuilt only when one of them changes.
# Prints the image path on stdout.
set -eu

usage() {
	cat <<'USAGE'
usage: images/build-initramfs.sh --kernel-dir DIR --bin-dir DIR [--extra DIR] [--cache DIR]

  --kernel-dir DIR  a kernel directory (vmlinuz, kver, lib/modules/KVER);
                    a kernel without lib/modules gets no modules
  --bin-dir DIR     static guest binaries: scenarios/ and tools/ inside
  --extra DIR       more files for /lib/daxlab/ (e.g. the daxlab-widen module)
  --cache DIR       cache root (default: $DAXLAB_CACHE or .cache)
USAGE
}

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
cache=${DAXLAB_CACHE:-$top/.cache}
kdir="" bindir="" extra=""
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help)
		usage
		exit 0
		;;
	--kernel-dir)
		kdir=${2:?--kernel-dir needs a directory}
		shift
		;;
	--bin-dir)
		bindir=${2:?--bin-dir needs a directory}
		shift
		;;
	--extra)
		extra=${2:?--extra needs a directory}
		shift
		;;
	--cache)
		cache=${2:?--cache needs a directory}
		shift
		;;
	*)
		echo "build-initramfs: unknown option: $1 (try --help)" >&2
		exit 2
		;;
	esac
	shift
done
if [ -z "$kdir" ] || [ -z "$bindir" ]; then
	usage >&2
	exit 2
fi
[ -f "$kdir/kver" ] || {
	echo "build-initramfs: $kdir has no kver file" >&2
	exit 1
}
kdir=$(cd "$kdir" && pwd)
bindir=$(cd "$bindir" && pwd)
kver=$(cat "$kdir/kver")
moddir=$kdir/lib/modules/$kver

# Modules the agent loads, and what they pull in.
MODULES="crc32c_generic libnvdimm nfit nd_pmem nd_btt dax_pmem device_dax cxl_acpi cxl_pci cxl_mem cxl_pmem virtio_pci virtio_pmem ext4 xfs brd"
# Host programs copied with their shared libraries.
PROGRAMS="/bin/kmod /usr/bin/ndctl /usr/bin/cxl /sbin/mke2fs /sbin/mkfs.xfs /usr/sbin/xfs_io /sbin/e2fsck /usr/sbin/xfs_repair /sbin/blkid"

# The input hash: this script, the agent, the guest binaries, the kernel
# release and the versions of the host packages we copy from.
hash=$(
	{
		cat "$0" "$here/agent.sh"
		find "$bindir" ${extra:+"$extra"} -type f -print0 | sort -z | xargs -0 sha256sum
		echo "$kver"
		[ -d "$moddir" ] && find "$moddir" -maxdepth 1 -name 'modules.order' -exec sha256sum {} +
		dpkg-query -W -f='${Package} ${Version}\n' busybox-static kmod ndctl e2fsprogs xfsprogs libc6 libpmemobj1 libpmem1
	} | sha256sum | cut -c1-16
)
out=$cache/initramfs/initramfs-$kver-$hash.cpio.gz
if [ -f "$out" ]; then
	echo "$out"
	exit 0
fi

echo "build-initramfs: building $(basename "$out")" >&2
mkdir -p "$cache/initramfs"
stage=$(mktemp -d "$cache/initramfs/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,mnt/dax,lib,lib64,scenarios}

cp /bin/busybox "$stage/bin/busybox"
for applet in $("$stage/bin/busybox" --list); do
	case "$applet" in
	busybox | blkid | mke2fs | mkfs.ext2 | mkfs.ext3 | mkfs.ext4 | e2fsck | fsck* | modprobe | insmod | rmmod | lsmod | depmod | modinfo) continue ;;
	esac
	[ -e "$stage/bin/$applet" ] || ln -s busybox "$stage/bin/$applet"
done

copy_libs() { # PROGRAM: its shared libraries (none for a static one)
	ldd "$1" 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r lib; do
		mkdir -p "$stage$(dirname "$lib")"
		[ -e "$stage$lib" ] || cp -L "$lib" "$stage$lib"
	done
}
copy_with_libs() { # PROGRAM DEST
	cp -L "$1" "$stage$2"
	copy_libs "$1"
}
for p in $PROGRAMS; do
	[ -x "$p" ] || {
		echo "build-initramfs: $p is missing (run scripts/install-deps.sh)" >&2
		exit 1
	}
	copy_with_libs "$p" "$p"
done
for tool in modprobe insmod rmmod lsmod depmod modinfo; do
	ln -s /bin/kmod "$stage/sbin/$tool"
done
cp /etc/mke2fs.conf "$stage/etc/mke2fs.conf"
echo "root:x:0:0:root:/:/bin/sh" >"$stage/etc/passwd"

if [ -d "$moddir" ]; then
	# depmod the unpacked tree once (the .deb ships no modules.dep).
	[ -f "$moddir/modules.dep" ] || depmod -b "$kdir" "$kver"
	mods=$(for m in $MODULES; do
		# -C /dev/null: the host's modprobe.d (ndctl hides libnvdimm) must
		# not decide what goes into the guest.
		modprobe -C /dev/null -d "$kdir" -S "$kver" --show-depends "$m" 2>/dev/null |
			awk '$1 == "insmod" {print $2}'
	done | sort -u)
	for ko in $mods; do
		rel=${ko#"$kdir"}
		mkdir -p "$stage$(dirname "$rel")"
		cp "$ko" "$stage$rel"
	done
	cp "$moddir"/modules.order "$moddir"/modules.builtin* "$stage/lib/modules/$kver/" 2>/dev/null || true
	depmod -b "$stage" "$kver"
fi

cp "$here/agent.sh" "$stage/init"
chmod 755 "$stage/init"
cp "$bindir"/scenarios/* "$stage/scenarios/"
# The PMDK scenarios are dynamic (libpmemobj has no static build here).
for f in "$bindir"/scenarios/*; do
	copy_libs "$f"
done
cp "$bindir"/tools/* "$stage/usr/bin/"
if [ -n "$extra" ]; then
	mkdir -p "$stage/lib/daxlab"
	cp "$extra"/* "$stage/lib/daxlab/"
fi

tmp_out=$(mktemp "$cache/initramfs/.img.XXXXXX")
(cd "$stage" && find . -print0 | sort -z | cpio --quiet -o -0 -H newc --owner=0:0) | gzip -1 >"$tmp_out"
mv "$tmp_out" "$out"
echo "build-initramfs: $(du -h "$out" | cut -f1) written" >&2
echo "$out"
