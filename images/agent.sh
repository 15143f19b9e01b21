#!/bin/sh
# daxlab guest agent: PID 1 of the test guest (busybox sh).
#
# Reads its job from the kernel command line:
#   daxlab.fs=ext4,xfs         filesystems to test, in order
#   daxlab.scenarios=001-x,... scenario binaries under /scenarios
#   daxlab.dax=1|0             mount with DAX (0 for --no-dax)
#   daxlab.stimeout=SECS       per-scenario time limit
#   daxlab.iterations=N        rounds for racing scenarios (DAXLAB_ITERATIONS)
#   daxlab.seed=S              their seed (DAXLAB_SEED)
#   daxlab.strict=1            known kernel windows are hits (DAXLAB_STRICT)
#   daxlab.widen=US            load /lib/daxlab/daxlab-widen.ko around each
#                              scenario that declares kernel functions to delay
#   daxlab.pmem_kind=KIND      nvdimm (NFIT), virtio-pmem or cxl (a region made
#                              with cxl create-region): the device under test,
#                              at daxlab.pmem_base
#   daxlab.mode=devdax         run.sh --mode devdax: a device-dax namespace
#                              (/dev/daxN.0, 2 MiB aligned) and no filesystem;
#                              daxlab.fs is then "devdax" and scenarios run in
#                              a tmpfs directory with DAXLAB_DEVDAX set
#   daxlab.shell=1             run.sh --shell: after each mount, an interactive
#                              shell on the console in /mnt/dax/shell; its exit
#                              goes on (unmount, next fs, power off)
# Writes TAP to ttyS1 (the host parses only that), files (fs_dax traces,
# dmesg) to ttyS2, and a human log to the console (ttyS0). Everything the
# host parses goes out through daxlab-emit, which holds it to the protocol
# (protocol/daxlab-protocol.h, protocol/README.md); the host judges. Powers
# the guest off when done; it must never exit (PID 1 exiting panics the
# kernel).
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "daxlab-agent: $*" >/dev/console; }
die() {
	say "FATAL: $*"
	[ -e /dev/ttyS1 ] && echo "Bail out! $*" >/dev/ttyS1
	poweroff -f
	sleep 60
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp /mnt/dax /run
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null

cmdarg() {
	read -r cmdline </proc/cmdline
	for w in $cmdline; do
		case "$w" in "daxlab.$1="*) echo "${w#daxlab."$1"=}" ;; esac
	done
}
FS_LIST=$(cmdarg fs | tr ',' ' ')
SCENARIOS=$(cmdarg scenarios | tr ',' ' ')
DAX=$(cmdarg dax)
STIMEOUT=$(cmdarg stimeout)
: "${DAX:=1}" "${STIMEOUT:=300}"
# Seconds a scenario may take to die after its SIGKILL before it counts as
# stuck in the kernel; "wedged" then says which one, and nothing more runs.
STUCK_GRACE=15
wedged=""
# Racing scenarios read these (scenarios/lib/race.c); unset means their default.
ITERATIONS=$(cmdarg iterations)
SEED=$(cmdarg seed)
[ -n "$ITERATIONS" ] && export DAXLAB_ITERATIONS="$ITERATIONS"
[ -n "$SEED" ] && export DAXLAB_SEED="$SEED"
[ "$(cmdarg strict)" = 1 ] && export DAXLAB_STRICT=1
WIDEN=$(cmdarg widen)
SHELL_MODE=$(cmdarg shell)

# Raw mode: no CR/LF translation on the host-parsed channels.
exec 3>/dev/ttyS1 4>/dev/ttyS2
stty -F /dev/ttyS1 raw -echo 2>/dev/null
stty -F /dev/ttyS2 raw -echo 2>/dev/null

send_file() { # NAME PATH: a file the protocol allows, cut to its cap
	daxlab-emit file "$1" "$2" >&4 || say "cannot send $1"
}
emit() { # TAG KEY=VALUE...: a protocol line on the TAP port
	daxlab-emit line "$@" >&3 || say "cannot emit $1"
}
now_cs() { # uptime in centiseconds
	read -r up _ </proc/uptime
	echo "${up%.*}${up#*.}"
}

say "kernel $(uname -r), fs: $FS_LIST, dax: $DAX"

# The plugin (run.sh passes watch=marker when this kernel has the NV-DIMM
# drivers as modules) watches guest accesses from here on: nothing could
# reach the NV-DIMM before its drivers are loaded. A no-op without it.
daxlab-mark watch

# Modules (a kernel with everything built in has none to load).
if [ -d "/lib/modules/$(uname -r)" ]; then
	mods="crc32c_generic libnvdimm nfit nd_pmem dax_pmem"
	[ "$(cmdarg pmem_kind)" != virtio-pmem ] || mods="$mods virtio_pci virtio_pmem"
	[ "$(cmdarg mode)" != devdax ] || mods="$mods device_dax"
	[ "$(cmdarg pmem_kind)" != cxl ] || mods="$mods cxl_acpi cxl_pci cxl_mem cxl_pmem"
	for m in $mods; do
		modprobe -q "$m" 2>/dev/null || true
	done
fi

# Recovery mode (run.sh --crash-check): the NV-DIMM holds crash states,
# one after another. The host's feeder (daxlab-crash feed) talks on ttyS1:
# it rewrites the NV-DIMM while this waits, then says "state SEQ"; this
# mounts it (the journal or log replays), asks the scenario what it finds,
# runs fsck, reports on the TAP port and answers "done SEQ". "end" (or
# anything else) ends it. The mount is not DAX: replay goes through the
# block layer either way, and the host puts back whatever it wrote.
if [ "$(cmdarg mode)" = recover ]; then
	RECOVER=$(cmdarg recover)
	FS=$(cmdarg fs)
	tries=0
	until [ -b /dev/pmem0 ]; do
		tries=$((tries + 1))
		[ $tries -gt 300 ] && break
		sleep 0.1
	done
	mkdir -p /mnt/rec
	modprobe -q ext4 2>/dev/null
	modprobe -q xfs 2>/dev/null
	# TAP on ttyS2, control on ttyS1 (protocol/daxlab-protocol.h)
	exec 3>/dev/ttyS2 4>/dev/ttyS1 5</dev/ttyS1
	stty -F /dev/ttyS1 raw -echo min 1 time 0
	echo "TAP version 13" >&3
	echo ready >&4
	last=""
	while :; do
		if ! read -r cmd seq <&5; then
			say "control channel: read failed"
			break
		fi
		case "$cmd:$seq" in
		state:[0-9]*) ;;
		end:) break ;;
		*)
			# QEMU's UART now and then loses a burst of received bytes: ask again
			echo again >&4
			continue
			;;
		esac
		case "$seq" in *[!0-9]*)
			echo again >&4
			continue
			;;
		esac
		if [ "$seq" = "$last" ]; then
			# a command that came twice (the first copy was late, not lost)
			echo "done $seq" >&4
			continue
		fi
		# Nothing of the previous state lingers in a cache: the block
		# device's page cache goes with its last close (umount, fsck).
		dev=/dev/pmem0
		version=- fsck=- mounted=fail
		t0=$(now_cs)
		t1=$t0 t2=$t0 t3=$t0
		if mount -t "$FS" "$dev" /mnt/rec 2>/tmp/mount.err; then
			mounted=ok
			t1=$(now_cs)
			version=$(DAXLAB_DIR=/mnt/rec/${RECOVER#[0-9][0-9][0-9]-} timeout -s KILL 60 \
				"/scenarios/$RECOVER" --recover 2>/dev/console |
				sed -n 's/^# daxlab-recovered: version=//p')
			t2=$(now_cs)
			if ! umount /mnt/rec; then
				# the next state must not meet this one's mount: say so and
				# end here (the host boots a new guest for the next state)
				say "recover state $seq: cannot unmount"
				emit daxlab-recover state="$seq" mount=stuck version="${version:--}" fsck=- cs=0,0,0,0
				break
			fi
			t3=$(now_cs)
			case "$FS" in
			xfs) xfs_repair -n "$dev" >/tmp/fsck.out 2>&1 ;;
			*) /sbin/e2fsck -fn "$dev" >/tmp/fsck.out 2>&1 ;;
			esac
			fsck=$?
		fi
		t4=$(now_cs)
		emit daxlab-recover state="$seq" mount="$mounted" version="${version:--}" fsck="$fsck" \
			cs="$((t1 - t0)),$((t2 - t1)),$((t3 - t2)),$((t4 - t3))"
		say "recover state $seq: mount $mounted, version ${version:--}, fsck $fsck"
		echo "done $seq" >&4
		last=$seq
	done
	emit daxlab-done
	poweroff -f
	sleep 60
fi

# The NV-DIMM under test is the region at daxlab.pmem_base; Linux numbers
# regions in its own order, so with a second DIMM (daxlab.pmem1=1) it need
# not be region0. PMEM, NS and REGION name its devices from here on.
NREGIONS=1
[ "$(cmdarg pmem1)" = 1 ] && NREGIONS=2
# CXL: the memory device's persistent capacity becomes an nd region only
# once a CXL region is made of it in the root decoder (the fixed window).
if [ "$(cmdarg pmem_kind)" = cxl ]; then
	tries=0
	until [ -e /sys/bus/cxl/devices/mem0 ] && [ -e /sys/bus/cxl/devices/decoder0.0 ]; do
		tries=$((tries + 1))
		[ $tries -gt 100 ] && die "no CXL memory device mem0 or root decoder (are cxl_acpi, cxl_pci, cxl_mem loaded?)"
		sleep 0.1
	done
	if ! cxl create-region -m -d decoder0.0 -w 1 -t pmem mem0 >/tmp/cxl.out 2>&1; then
		cat /tmp/cxl.out >/dev/console
		die "cxl create-region failed"
	fi
	send_file cxl-region.json /tmp/cxl.out
fi
PMEM_BASE=$(cmdarg pmem_base)
tries=0
until [ "$(find /sys/bus/nd/devices -maxdepth 1 -name 'region*' 2>/dev/null | wc -l)" -ge $NREGIONS ]; do
	tries=$((tries + 1))
	[ $tries -gt 100 ] && die "no NV-DIMM region (is the nfit module in the initramfs? is -device nvdimm there?)"
	sleep 0.1
done
REGION=region0
OTHER_REGION=""
for r in /sys/bus/nd/devices/region*; do
	if [ -n "$PMEM_BASE" ] && [ $(($(cat "$r/resource"))) = $((PMEM_BASE)) ]; then
		REGION=${r##*/}
	else
		OTHER_REGION=${r##*/}
	fi
done
PMEM=pmem${REGION#region}
NS=namespace${REGION#region}.0
# Scenarios that read the region's sysfs (persistence_domain) find it here.
export DAXLAB_REGION="$REGION"

# The raw namespace only gives a non-DAX block device: make it fsdax. A kept
# image (daxlab.keep=1, run.sh --image) is fsdax already: leave it alone.
KEEP=$(cmdarg keep)
DEVDAX=""
if [ "$(cmdarg mode)" = devdax ]; then
	if ! ndctl create-namespace -f -e "$NS" -m devdax --map=mem --align 2M >/tmp/ndctl.out 2>&1; then
		cat /tmp/ndctl.out >/dev/console
		die "ndctl create-namespace -m devdax failed"
	fi
	DEVDAX=/dev/dax${REGION#region}.0
	tries=0
	until [ -c "$DEVDAX" ]; do
		tries=$((tries + 1))
		[ $tries -gt 100 ] && die "$DEVDAX did not appear (is device_dax in the initramfs?)"
		sleep 0.1
	done
elif [ "$(cmdarg pmem_kind)" = cxl ]; then
	# a labelled region (the device's label area): a new namespace in it
	if ! ndctl create-namespace -m fsdax --map=mem -r "$REGION" >/tmp/ndctl.out 2>&1; then
		cat /tmp/ndctl.out >/dev/console
		die "ndctl create-namespace -r $REGION failed"
	fi
	PMEM=$(sed -n 's/^ *"blockdev":"\(pmem[0-9.]*\)".*/\1/p' /tmp/ndctl.out | head -n1)
	NS=$(sed -n 's/^ *"dev":"\(namespace[0-9.]*\)".*/\1/p' /tmp/ndctl.out | head -n1)
	{ [ -n "$PMEM" ] && [ -n "$NS" ]; } || die "ndctl create-namespace -r $REGION: no block device in its answer"
elif [ "$KEEP" = 1 ] && ndctl list -N 2>/dev/null | grep -q '"mode":"fsdax"'; then
	ndctl list -N >/tmp/ndctl.out 2>&1
	say "kept image: namespace already fsdax"
elif ! ndctl create-namespace -f -e "$NS" -m fsdax --map=mem >/tmp/ndctl.out 2>&1; then
	cat /tmp/ndctl.out >/dev/console
	die "ndctl create-namespace failed"
fi
tries=0
until [ -n "$DEVDAX" ] || [ -b "/dev/$PMEM" ]; do
	tries=$((tries + 1))
	[ $tries -gt 100 ] && die "/dev/$PMEM did not appear"
	sleep 0.1
done
send_file ndctl-namespace.json /tmp/ndctl.out
# A second NV-DIMM for scenarios that partition a pmem device of their own.
# Scenarios find it as $DAXLAB_PMEM1.
if [ -n "$OTHER_REGION" ]; then
	if ndctl create-namespace -f -e "namespace${OTHER_REGION#region}.0" -m fsdax --map=mem >/tmp/ndctl1.out 2>&1; then
		export DAXLAB_PMEM1="/dev/pmem${OTHER_REGION#region}"
	else
		say "second NV-DIMM: ndctl create-namespace failed: $(tail -n1 /tmp/ndctl1.out)"
	fi
fi
# --guest-write-cache: whether the kernel flushes CPU caches on DAX writeback.
WRITE_CACHE=$(cmdarg write_cache)
if [ -n "$WRITE_CACHE" ]; then
	echo "$WRITE_CACHE" >"/sys/block/$PMEM/dax/write_cache" || die "cannot set dax/write_cache"
fi
# Where the block device's data starts on the NV-DIMM (after the fsdax info
# block): the pfn device's resource, for crash images cut to the filesystem.
for d in /sys/bus/nd/devices/pfn* /sys/bus/nd/devices/dax*; do
	[ -f "$d/resource" ] && [ "$(cat "$d/namespace" 2>/dev/null)" = "$NS" ] &&
		echo "$(basename "$d") resource=$(cat "$d/resource") size=$(cat "$d/size")"
done >/tmp/pfn.txt 2>/dev/null
send_file pmem-data.txt /tmp/pfn.txt
# The NV-DIMM window as the guest sees it, for the host to check.
grep -i 'persistent memory' /proc/iomem >/tmp/iomem.txt 2>/dev/null || true
send_file iomem-pmem.txt /tmp/iomem.txt

TRACE=/sys/kernel/tracing
[ -d $TRACE/events ] || TRACE=/sys/kernel/debug/tracing
trace_on() {
	[ -d $TRACE/events/fs_dax ] || return 0
	echo 0 >$TRACE/tracing_on
	echo 8192 >$TRACE/buffer_size_kb
	# CLOCK_MONOTONIC, the clock scenarios stamp their hits with.
	echo mono >$TRACE/trace_clock 2>/dev/null
	echo >$TRACE/trace
	echo 1 >$TRACE/events/fs_dax/enable
	echo 1 >$TRACE/tracing_on
}
trace_off() { # NAME
	[ -d $TRACE/events/fs_dax ] || return 0
	echo 0 >$TRACE/events/fs_dax/enable
	cat $TRACE/trace >/tmp/trace.txt
	# A fault that retries forever fills the buffer with tens of MB of
	# text: daxlab-emit sends the newest part, up to the protocol's cap.
	send_file "fs_dax/$1.txt" /tmp/trace.txt
}

# mkfs and mount one filesystem; prints the reason on failure.
mount_fs() { # FS
	umount /mnt/dax 2>/dev/null
	# --mode devdax: no filesystem, the scenarios' directories are on tmpfs
	if [ "$1" = devdax ]; then
		mkdir -p /tmp/devdax
		return 0
	fi
	# A kept image with this filesystem on it is mounted as it is.
	if [ "$KEEP" = 1 ] && [ "$(blkid -s TYPE -o value "/dev/$PMEM" 2>/dev/null)" = "$1" ]; then
		mkfs_skip=1
	else
		mkfs_skip=0
	fi
	case "$1" in
	ext4 | ext2)
		modprobe -q ext4 2>/dev/null
		[ $mkfs_skip = 1 ] || /sbin/mke2fs -q -F -t "$1" -b 4096 "/dev/$PMEM" >/tmp/mkfs.out 2>&1 || {
			echo "mke2fs failed: $(head -n1 /tmp/mkfs.out)"
			return 1
		}
		opts=""
		[ "$DAX" = 1 ] && opts="-o dax"
		;;
	xfs)
		modprobe -q xfs 2>/dev/null
		[ $mkfs_skip = 1 ] || /sbin/mkfs.xfs -q -f -m reflink=0 "/dev/$PMEM" >/tmp/mkfs.out 2>&1 || {
			cat /tmp/mkfs.out >/dev/console
			echo "mkfs.xfs failed: $(head -n1 /tmp/mkfs.out)"
			return 1
		}
		opts="-o dax=never"
		[ "$DAX" = 1 ] && opts="-o dax=always"
		;;
	*)
		echo "unknown filesystem $1"
		return 1
		;;
	esac
	dmesg_mark=$(dmesg | wc -l)
	# shellcheck disable=SC2086 # $opts is "" or one "-o x" pair
	if ! mount -t "$1" $opts "/dev/$PMEM" /mnt/dax 2>/tmp/mount.out; then
		reason=$(dmesg | tail -n +$((dmesg_mark + 1)) | grep -i -m1 -E 'dax|error|unsupported' | sed 's/^\[[^]]*\] //')
		echo "mount -t $1 $opts failed: ${reason:-$(cat /tmp/mount.out)}"
		return 1
	fi
	return 0
}

# shellcheck disable=SC2086 # the lists are space-separated words
set -- $SCENARIOS
nscen=$#
# shellcheck disable=SC2086
set -- $FS_LIST
nfs=$#
echo "TAP version 13" >&3
echo "1..$((nscen * nfs))" >&3
emit daxlab-guest kernel="$(uname -r)" cpus="$(grep -c ^processor /proc/cpuinfo)" \
	flush="$(grep -o -w -E 'clwb|clflushopt|clflush' /proc/cpuinfo | sort -u | tr '\n' , | sed 's/,$//')" \
	write_cache="$(cat "/sys/block/$PMEM/dax/write_cache" 2>/dev/null || echo -)" \
	persistence_domain="$(cat "/sys/bus/nd/devices/$REGION/persistence_domain" 2>/dev/null || echo -)"
n=0

# The scenario's result as the guest saw it (its exit, its time); the host
# adds what it judges (the kernel log, the golden output, the plugin).
report() { # NAME FS STATUS DAX DURATION EXIT REASON
	n=$((n + 1))
	emit daxlab-result scenario="$1" fs="$2" status="$3" dax="$4" duration="$5" exit="$6" reason="$7"
	daxlab-emit point "$n" "$3" "$1 $2" "$7" >&3
	if [ "$7" = - ]; then say "[$2] $1: $3 in ${5}s"; else say "[$2] $1: $3 ($7) in ${5}s"; fi
}

# One pass over the filesystems: mkfs, mount, the scenarios of LIST on each.
run_pass() { # LIST
	for fs in $FS_LIST; do
		if [ -n "$wedged" ]; then
			fs_status=1 fs_reason="not run: $wedged"
		else
			fs_reason=$(mount_fs "$fs")
			fs_status=$?
		fi
		dax_on=0
		if [ $fs_status = 0 ] && [ "$fs" = devdax ]; then
			# device dax is DAX by construction: a dax character device
			dax_on=0
			[ -c "$DEVDAX" ] && [ -e "/sys/bus/dax/devices/${DEVDAX#/dev/}" ] && dax_on=1
			say "[$fs] $DEVDAX: no filesystem, dax=$dax_on"
			[ "$dax_on" = 1 ] || fs_status=1 fs_reason="no device dax at $DEVDAX"
		elif [ $fs_status = 0 ]; then
			touch /mnt/dax/.daxlab-probe
			dax_on=$(dax-probe /mnt/dax/.daxlab-probe 2>/tmp/probe.err | sed 's/dax=//')
			rm -f /mnt/dax/.daxlab-probe
			[ -n "$dax_on" ] || dax_on=0
			say "[$fs] mounted: $(grep ' /mnt/dax ' /proc/mounts | cut -d' ' -f4), STATX_ATTR_DAX=$dax_on"
			if [ "$KEEP" = 1 ] && [ -z "${booted:-}" ]; then
				# The image's own memory: how many boots have mounted it.
				booted=1
				boots=$(($(cat /mnt/dax/.daxlab-boots 2>/dev/null || echo 0) + 1))
				echo "$boots" >/mnt/dax/.daxlab-boots
				sync
				emit daxlab-image fs="$fs" boots="$boots"
			fi
			if [ "$DAX" = 1 ] && [ "$dax_on" != 1 ]; then
				fs_status=1
				fs_reason="mounted with DAX requested but statx shows no STATX_ATTR_DAX"
				umount /mnt/dax
			fi
		fi
		if [ "$SHELL_MODE" = 1 ] && [ $fs_status = 0 ]; then
			say "[$fs] shell: /dev/$PMEM is mounted on /mnt/dax ($(grep ' /mnt/dax ' /proc/mounts | cut -d' ' -f4), STATX_ATTR_DAX=$dax_on); exit the shell to go on"
			mkdir -p /mnt/dax/shell
			# cttyhack gives the shell the console as its controlling tty (^C works).
			(cd /mnt/dax/shell && DAXLAB_DIR=/mnt/dax/shell DAXLAB_FS=$fs setsid cttyhack sh -l) </dev/console >/dev/console 2>&1
			say "[$fs] shell exited"
			emit daxlab-shell fs="$fs"
		elif [ "$SHELL_MODE" = 1 ]; then
			say "[$fs] shell: not started, the mount failed: $fs_reason"
		fi
		for scen in $1; do
			name=${scen#[0-9][0-9][0-9]-}
			if [ -n "$wedged" ]; then
				# Its mount cannot be unmounted, nor the device used again.
				report "$name" "$fs" skip 0 0 0 "not run: $wedged"
				continue
			fi
			if [ $fs_status != 0 ]; then
				if [ "$fs" = ext2 ]; then
					report "$name" "$fs" skip 0 0 0 "$fs_reason"
				else
					report "$name" "$fs" fail "$dax_on" 0 0 "$fs_reason"
				fi
				continue
			fi
			dir=/mnt/dax/$name
			[ "$fs" != devdax ] || dir=/tmp/devdax/$name
			mkdir -p "$dir"
			witness=/tmp/witness/$name-$fs
			mkdir -p "$witness"
			dmesg_mark=$(dmesg | wc -l)
			trace_on
			# run.sh --widen: seeded delays at the kernel functions the scenario
			# declared (/scenarios/NNN-name.widen), for its own tasks only.
			widened=0
			if [ -n "$WIDEN" ] && [ -s "/scenarios/$scen.widen" ]; then
				comm=$(printf '%s' "$scen" | cut -c1-15)
				if insmod /lib/daxlab/daxlab-widen.ko points="$(tr -d ' \n' <"/scenarios/$scen.widen")" \
					delay_us="$WIDEN" seed="${SEED:-1}" comm="$comm" 2>/tmp/widen.err; then
					widened=1
				else
					say "[$fs] $name: daxlab-widen did not load: $(cat /tmp/widen.err)"
				fi
			fi
			echo "# Subtest: $name $fs" >&3
			start=$(now_cs)
			rm -f /tmp/rc /tmp/stuck /tmp/waiter.pid /tmp/tee.pid
			# A scenario deadlocked in the kernel (D state) survives SIGKILL and
			# keeps the TAP pipe open: the guard notices, dumps the blocked
			# tasks into the kernel log, and unblocks the pipeline.
			(
				sleep $((STIMEOUT + STUCK_GRACE))
				: >/tmp/stuck
				echo w >/proc/sysrq-trigger 2>/dev/null
				# Busybox timeout runs the scenario in its own pid, so it is
				# the waiting subshell and the tee that must go (a child the
				# scenario left behind can hold the pipe as well).
				[ -f /tmp/rc ] || echo 137 >/tmp/rc
				kill -9 "$(cat /tmp/waiter.pid)" "$(cat /tmp/tee.pid)" 2>/dev/null
			) &
			guard=$!
			# timeout's watcher child keeps the cwd it started in for up to a
			# second after the scenario ends: start it outside the mount.
			(
				cd / || exit 1
				sh -c 'echo $PPID' >/tmp/waiter.pid
				# shellcheck disable=SC2016 # $0 and $DAXLAB_DIR expand in the inner sh
				# (the scenario gets no descriptor of the host's ports)
				DAXLAB_DIR=$dir DAXLAB_FS=$fs DAXLAB_SEQ=$((n + 1)) DAXLAB_WITNESS_DIR=$witness DAXLAB_DEVDAX=$DEVDAX timeout -s KILL "$STIMEOUT" \
					sh -c 'cd "$DAXLAB_DIR" && exec "$0"' "/scenarios/$scen" 2>/dev/console 3>&- 4>&-
				echo $? >/tmp/rc
			) | sh -c 'echo $$ >/tmp/tee.pid && exec tee /tmp/last.tap' | sed 's/^/    /' >&3
			kill "$guard" 2>/dev/null || true
			end=$(now_cs)
			rc=$(cat /tmp/rc 2>/dev/null || echo 255)
			trace_off "$name-$fs"
			if [ $widened = 1 ]; then
				rmmod daxlab_widen 2>/dev/null
				dmesg | tail -n +$((dmesg_mark + 1)) | sed -n 's/.*daxlab-widen: point \([^:]*\): \([0-9]*\) delays, \([0-9]*\) us.*/\1 \2 \3/p' |
					while read -r point delays us; do
						emit daxlab-widen scenario="$name" fs="$fs" point="$point" delays="$delays" us="$us"
					done
			fi
			dmesg | tail -n +$((dmesg_mark + 1)) >/tmp/dmesg.part
			send_file "dmesg/$name-$fs.txt" /tmp/dmesg.part
			# Witnesses of race hits (scenarios/lib/race.c), one file per hit.
			for w in "$witness"/*; do
				[ -f "$w" ] && send_file "hits/$name-$fs/${w##*/}" "$w"
			done
			rm -rf "$witness"
			dur=$(((end - start) / 100)).$(printf '%02d' $(((end - start) % 100)))
			reason=-
			case "$rc" in
			0) status=pass ;;
			4)
				status=skip
				reason=$(sed -n 's/.*# SKIP //p' /tmp/last.tap | head -n1)
				;;
			137) status=timeout reason="killed after ${STIMEOUT}s" ;;
			*)
				status=fail
				# The scenario's own words: its bail-out, or its first failed point.
				why=$(grep -m1 -E '^ *(Bail out!|not ok )' /tmp/last.tap | sed 's/^ *//' | cut -c1-160)
				reason="exit $rc${why:+: $why}"
				;;
			esac
			if [ -f /tmp/stuck ]; then
				wedged="$name is stuck in the kernel (D state) after SIGKILL"
				status=timeout
				reason="stuck in the kernel after SIGKILL at ${STIMEOUT}s (blocked tasks in dmesg)"
			fi
			report "$name" "$fs" "$status" "$dax_on" "$dur" "$rc" "$reason"
			# Removing a stuck scenario's files would block on its locks.
			[ -n "$wedged" ] || rm -rf "$dir"
		done
		tries=0
		while grep -q ' /mnt/dax ' /proc/mounts && ! umount /mnt/dax 2>/tmp/umount.err && [ $tries -lt 20 ]; do
			tries=$((tries + 1))
			sleep 0.2
		done
		if grep -q ' /mnt/dax ' /proc/mounts; then
			say "[$fs] umount failed: $(cat /tmp/umount.err); processes still there:"
			ps >/dev/console
		fi
	done
}

# A payload (--exec) runs after every other scenario on every filesystem:
# it is root here, and what it could say on the host's ports after it ran
# can then only be about itself (protocol/README.md). The host expects
# this order.
OTHERS="" PAYLOAD=""
for s in $SCENARIOS; do
	case "$s" in
	000-payload) PAYLOAD=$s ;;
	*) OTHERS="$OTHERS $s" ;;
	esac
done
if [ -n "$PAYLOAD" ] && [ -n "$OTHERS" ]; then
	run_pass "$OTHERS"
	run_pass "$PAYLOAD"
else
	run_pass "$SCENARIOS"
fi

dmesg >/tmp/dmesg.txt
send_file dmesg.txt /tmp/dmesg.txt
emit daxlab-done
say "all done, powering off"
[ -n "$wedged" ] || sync
poweroff -f
sleep 60
