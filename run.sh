#!/usr/bin/env bash
# daxlab: boot a TCG guest with an emulated NV-DIMM, mount it with DAX,
# run scenarios, and collect everything into results/<run-id>/.
#
# This file is the flow and nothing else; each step is where its name says:
#   options, checks   host/options.sh
#   the guest kernel  host/kernel.sh
#   the machine       host/machine.sh (QEMU command line, libvirt domain)
#   running it        host/guest.sh (time limit, channel caps, signals)
#   crash states      host/crash-check.sh
#   reading the guest host/daxlab-collect.c (the protocol: protocol/README.md)
#   verdicts          host/judge.c
#   report.html       host/daxlab-report.c
# No text the guest wrote is read here: daxlab-collect reads it.
set -eu
# A make that called us (make test) must not leak into our makes: its
# MAKEFLAGS would print "Entering directory" into captured output.
unset MAKEFLAGS MAKELEVEL MFLAGS

TOP=$(cd "$(dirname "$0")" && pwd)
PROG=run.sh
CACHE=${DAXLAB_CACHE:-$TOP/.cache}
PMEM1_MIB=384 # the second NV-DIMM of scenarios that need one (mkfs.xfs wants > 300 MB)

# --campaign FILE: many guests; scripts/campaign.sh does the rest.
for a in "$@"; do
	[ "$a" != --campaign ] || exec "$TOP/scripts/campaign.sh" "$@"
done

# shellcheck source=host/options.sh
. "$TOP/host/options.sh"
# shellcheck source=host/kernel.sh
. "$TOP/host/kernel.sh"
# shellcheck source=host/machine.sh
. "$TOP/host/machine.sh"
# shellcheck source=host/guest.sh
. "$TOP/host/guest.sh"
# shellcheck source=host/crash-check.sh
. "$TOP/host/crash-check.sh"

step() { echo "==> $*"; }

parse_options "$@"
check_options
[ $record = 0 ] || replay_save_args
# --emit-xml: progress goes to stderr, only the XML to stdout.
[ $emit_xml = 0 ] || exec 3>&1 1>&2

# --latency's parameters, checked by the model's own parser (a small host
# tool), before anything is printed when a compiler and jansson are there
# (else once the dependencies are installed).
check_latency() {
	local err
	mkdir -p "$CACHE"
	(flock 9 && make -s -C "$TOP" CACHE="$CACHE" "$CACHE/build/emulator/daxlab-latency") \
		9>"$CACHE/.build.lock" >"$CACHE/make-latency.log" 2>&1 ||
		die "building daxlab-latency failed: see $CACHE/make-latency.log"
	err=$("$CACHE/build/emulator/daxlab-latency" check "$latency" 2>&1 >/dev/null) ||
		die "--latency: ${err:-daxlab-latency failed}"
}
latency_checked=0
if [ -n "$latency" ] && command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1 &&
	[ -e /usr/include/jansson.h ]; then
	check_latency
	latency_checked=1
fi

# ------------------------------------------------------------------ build
START=$(date +%s)
step "dependencies"
"$TOP/scripts/install-deps.sh" || die "installing dependencies failed"
if [ "$LIBVIRT_ENSURE" = 1 ]; then
	step "libvirt (installed and started when missing)"
	"$TOP/scripts/libvirt-daemons.sh" ensure "$libvirt" ||
		die "--libvirt: libvirt could not be installed or started, or $libvirt does not answer (see above)"
fi
mkdir -p "$CACHE"
# One build at a time per cache: parallel runs share the cache.
exec 9>"$CACHE/.build.lock"
flock 9
step "guest programs, host tools and the NV-DIMM plugin"
targets="guest host"
[ "$plugin" = off ] || targets="$targets plugin"
# shellcheck disable=SC2086 # make targets
if ! make -s -C "$TOP" CACHE="$CACHE" $targets >"$CACHE/make.log" 2>&1; then
	cat "$CACHE/make.log" >&2
	die "building the guest programs, the host tools or the plugin failed"
fi
[ -z "$latency" ] || [ $latency_checked = 1 ] || check_latency
COLLECT=$CACHE/build/host/daxlab-collect

step "guest kernel"
kernel_prepare
echo "    $KERNEL_DESC"
extra=()
if [ -n "$widen" ] && [ -z "$replay_dir" ]; then
	step "daxlab-widen module"
	widen_prepare
	extra=(--extra "$WIDEN_DIR")
fi
step "initramfs"
if [ -n "$replay_dir" ]; then
	INITRD=$replay_dir/replay/initrd.cpio.gz
else
	INITRD=$("$TOP/images/build-initramfs.sh" --cache "$CACHE" --kernel-dir "$KDIR" \
		--bin-dir "$CACHE/build/guest" ${extra[@]+"${extra[@]}"}) || die "building the initramfs failed"
fi
echo "    ${INITRD#"$TOP"/}"
flock -u 9

# ---------------------------------------------------------------- run dir
# Run directories and what is in them are the user's only (images can
# hold user data). INCOMPLETE stays until the run is judged and reported:
# a run killed on the way keeps its logs and says so, and results/latest
# never points at it.
umask 077
fs_tag=$(IFS=+ && echo "${FS_LIST[*]}")
while :; do
	RUN_ID=$(date +%Y%m%d-%H%M%S)-$fs_tag-$(printf '%04x' $((RANDOM % 65536)))
	mkdir "$results/$RUN_ID" 2>/dev/null && break
done
RUN=$results/$RUN_ID
echo "run.sh did not finish this run (killed, or the host failed): its logs are partial" >"$RUN/INCOMPLETE"

# --------------------------------------------------------------- machine
ram_mib=$(to_mib "$mem")
PMEM_BASE=$(pmem_base_for "$ram_mib")
if [ "$pmem_kind" = cxl ]; then
	# the second NV-DIMM, when there is one, is the hotplug area's only one
	if [ "$NEEDS_PMEM1" = 1 ]; then PMEM_BASE=$(cxl_base_for "$ram_mib" "$PMEM1_MIB"); else PMEM_BASE=$(cxl_base_for "$ram_mib"); fi
fi
PMEM_BYTES=$(($(to_mib "$pmem_size") * 1024 * 1024))
pmem_file=$RUN/pmem0.img
if [ -n "$replay_dir" ]; then
	# The NV-DIMM as it was when the recording started (never the live --image).
	cp --sparse=always "$replay_dir/replay/pmem-start.img" "$pmem_file"
	[ "$plugin" != persist ] || cp --sparse=always "$pmem_file" "$RUN/pmem-base.img"
elif [ -n "$image" ]; then
	[ $image_format = 0 ] || { truncate -s 0 "$image" && truncate -s "$pmem_size" "$image"; }
	pmem_file=$image
	# Crash states start from the image as it was at boot.
	[ "$plugin" != persist ] || cp --sparse=always "$image" "$RUN/pmem-base.img"
	ln -s "$image" "$RUN/pmem0.img"
else
	truncate -s "$pmem_size" "$pmem_file"
fi
[ "$pmem_kind" != cxl ] || truncate -s 256K "$RUN/cxl-lsa.img"
# --exec: the command becomes a scenario, 000-payload, and --payload DIR
# /payload, in a cpio overlay after the initramfs (the kernel unpacks both).
if [ $exec_given = 1 ]; then
	SCEN_BINS+=(000-payload)
	SCEN_NAMES+=(payload)
	ov=$RUN/payload-root
	mkdir -p "$ov/scenarios" "$ov/payload"
	[ -z "$payload" ] || cp -a "$payload/." "$ov/payload/" || die "cannot copy --payload $payload"
	printf '%s\n' "$exec_cmd" >"$ov/payload.cmd"
	cat >"$ov/scenarios/000-payload" <<'PAYLOAD'
#!/bin/sh
# run.sh --exec: the user's command, in its directory on the DAX mount.
export PATH=/payload:$PATH DAXLAB_PAYLOAD=/payload
exec sh -c "$(cat /payload.cmd)"
PAYLOAD
	chmod 755 "$ov/scenarios/000-payload" "$ov/scenarios" "$ov/payload"
	(cd "$ov" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -1 >"$RUN/payload.cpio.gz" ||
		die "cannot pack --payload into the initramfs overlay"
	cat "$INITRD" "$RUN/payload.cpio.gz" >"$RUN/initrd-payload.cpio.gz"
	INITRD=$RUN/initrd-payload.cpio.gz
	rm -rf "$ov"
fi
cmdline="console=ttyS0 panic=-1 loglevel=5 daxlab.fs=$(IFS=, && echo "${FS_LIST[*]}")"
cmdline="$cmdline daxlab.scenarios=$(IFS=, && echo "${SCEN_BINS[*]}") daxlab.dax=$dax"
cmdline="$cmdline daxlab.stimeout=$stimeout daxlab.seed=$seed"
[ -z "$iterations" ] || cmdline="$cmdline daxlab.iterations=$iterations"
[ $strict = 0 ] || cmdline="$cmdline daxlab.strict=1"
[ -z "$widen" ] || cmdline="$cmdline daxlab.widen=$widen"
[ "$NEEDS_PMEM1" = 0 ] || cmdline="$cmdline daxlab.pmem1=1"
# KASAN on 6.1 with 5-level paging (-cpu max has LA57) reports a wild access
# at boot now and then (identify_cpu() clears LA57 for a moment), and the
# report turns lockdep off: 4-level paging exercises the same DAX code.
[ ! -f "$KDIR/config" ] || ! grep -q '^CONFIG_KASAN=y' "$KDIR/config" || cmdline="$cmdline no5lvl"
cmdline="$cmdline daxlab.pmem_base=$PMEM_BASE daxlab.pmem_kind=$pmem_kind"
[ "$pmem_mode" = fsdax ] || cmdline="$cmdline daxlab.mode=$pmem_mode"
if [ -n "$replay_dir" ]; then
	cmdline=$(cat "$replay_dir/replay/guest-cmdline.txt")
elif [ $record = 1 ]; then
	# Everything a replay needs, kept with the run (the cache may change).
	step "record: keeping the kernel, initramfs and starting NV-DIMM image in replay/"
	mkdir -p "$RUN/replay"
	cp -L "$KDIR/vmlinuz" "$RUN/replay/vmlinuz"
	cp "$INITRD" "$RUN/replay/initrd.cpio.gz"
	cp --sparse=always "$pmem_file" "$RUN/replay/pmem-start.img"
	echo "$KVER" >"$RUN/replay/kver"
	echo "$KERNEL_DESC" >"$RUN/replay/kernel.txt"
	echo "$cmdline" >"$RUN/replay/guest-cmdline.txt"
	printf '%s\0' ${SAVE_ARGS[@]+"${SAVE_ARGS[@]}"} >"$RUN/replay/args"
fi
[ -z "$write_cache" ] || cmdline="$cmdline daxlab.write_cache=$write_cache"
[ -z "$image" ] || cmdline="$cmdline daxlab.keep=1"
[ $shell = 0 ] || cmdline="$cmdline daxlab.shell=1"

declare -gA M=([cpus]=$cpus [cpu]=$cpu_model [mem]=$mem [kernel]=$KDIR/vmlinuz [initrd]=$INITRD
	[cmdline]=$cmdline [persistence]=$NVDIMM_PERSISTENCE [pmem_kind]=$pmem_kind [pmem_base]=$PMEM_BASE [console]=$RUN/console.log
	[cxl_lsa]=$RUN/cxl-lsa.img
	[tap]=$RUN/tap.txt [files]=$RUN/guest-files.raw [console_stdio]=$shell)
M_DIMMS=("$pmem_file:$(to_mib "$pmem_size")")
if [ "$NEEDS_PMEM1" = 1 ]; then
	# The second NV-DIMM: small, after the first, not watched by the plugin.
	truncate -s "${PMEM1_MIB}M" "$RUN/pmem1.img"
	M_DIMMS+=("$RUN/pmem1.img:$PMEM1_MIB")
fi
[ $record = 0 ] || M[rr]="shift=auto,rr=record,rrfile=$RUN/replay/events.bin"
[ -z "$replay_dir" ] || M[rr]="shift=auto,rr=replay,rrfile=$replay_dir/replay/events.bin"
# The plugin watches guest accesses from the agent's marker when this kernel
# has the NV-DIMM drivers as modules (nothing reaches the NV-DIMM before
# they load; the boot is a third of the plugin's cost), else from the
# kernel's first instruction; --record/--replay keep to the latter (the
# marker flushes QEMU's translated code).
watch_from=kernel
if [ $record = 0 ] && [ -z "$replay_dir" ] && [ -f "$KDIR/config" ] &&
	grep -qx 'CONFIG_ACPI_NFIT=m' "$KDIR/config"; then
	watch_from=marker
fi
if [ "$plugin" != off ]; then
	popts="base=$PMEM_BASE,size=$PMEM_BYTES,out=$RUN,persist=off"
	[ "$plugin" != persist ] || popts="base=$PMEM_BASE,size=$PMEM_BYTES,out=$RUN,persist=$persist,image=$pmem_file"
	[ -z "$TRACE_OPTS" ] || popts="$popts,$TRACE_OPTS"
	[ -z "$crash_every" ] || popts="$popts,checkpoint_fences=$crash_every"
	popts="$popts,watch=$watch_from"
	# CXL memory is MMIO to QEMU (the window is an I/O region): watch it too
	[ "$pmem_kind" != cxl ] || popts="$popts,io=on"
	# QEMU splits plugin options at commas: the model's own go joined by '+'.
	[ -z "$latency" ] || popts="$popts,latency=${latency//,/+},latency_mode=$latency_mode"
	# DAXLAB_PLUGIN_OPTS adds plugin options (e.g. verify=on, a self-check).
	[ -z "${DAXLAB_PLUGIN_OPTS:-}" ] || popts="$popts,$DAXLAB_PLUGIN_OPTS"
	M[plugin]="$CACHE/build/emulator/libdaxlab-pmem.so,$popts"
	M[plugin_log]=$RUN/plugin.log
fi
machine_qemu_argv
printf '%q ' "${QEMU_ARGV[@]}" >"$RUN/qemu-cmdline.txt"
echo >>"$RUN/qemu-cmdline.txt"
backend=${libvirt:-direct}

# run.json: the plan, for daxlab-collect; the guest's outcome is added below.
scen_json=$(for i in "${!SCEN_NAMES[@]}"; do
	jq -n -c --arg n "${SCEN_NAMES[$i]}" --arg b "${SCEN_BINS[$i]}" '{name: $n, bin: $b}'
done | jq -s -c .)
jq -n --arg run_id "$RUN_ID" --argjson started "$START" --arg kernel "$KERNEL_DESC" \
	--arg kernel_variant "$kvariant" --argjson fs "$(printf '%s\n' "${FS_LIST[@]}" | jq -R . | jq -s -c .)" \
	--argjson scenarios "$scen_json" --argjson dax "$([ $dax = 1 ] && echo true || echo false)" \
	--arg qemu_version "$(qemu-system-x86_64 --version | head -n1)" --arg cpu_model "$cpu_model" \
	--argjson cpus "$cpus" --arg persist "$persist" --arg nvdimm_persistence "$NVDIMM_PERSISTENCE" \
	--arg pmem_kind "$pmem_kind" --arg pmem_mode "$pmem_mode" --arg plugin "$plugin" --arg watch_from "$watch_from" --arg backend "$backend" \
	--arg pmem_base "$PMEM_BASE" --argjson pmem_bytes "$PMEM_BYTES" --arg pmem_size "$pmem_size" \
	--arg image "$image" --argjson seed "$seed" --argjson widen "${widen:-0}" \
	--arg crash_check "$crash_check" --argjson crash_samples "$crash_samples" \
	--argjson crash_point_samples "$crash_point_samples" --argjson crash_max_states "$crash_max_states" \
	--arg latency "$latency" --arg latency_mode "$latency_mode" \
	'{run_id: $run_id, started: $started, kernel: $kernel, kernel_variant: $kernel_variant,
	  fs: $fs, scenarios: $scenarios, dax: $dax, qemu_version: $qemu_version,
	  cpu_model: $cpu_model, cpus: $cpus, persist: $persist,
	  nvdimm_persistence: $nvdimm_persistence, pmem_kind: $pmem_kind, pmem_mode: $pmem_mode, plugin: $plugin, watch_from: $watch_from,
	  backend: $backend, pmem_base: $pmem_base, pmem_bytes: $pmem_bytes, pmem_size: $pmem_size,
	  image: $image, seed: $seed, widen: $widen, crash_check: $crash_check,
	  crash_samples: $crash_samples, crash_point_samples: $crash_point_samples,
	  crash_max_states: $crash_max_states, latency: $latency, latency_mode: $latency_mode}' >"$RUN/run.json"

if [ -n "$libvirt" ] || [ $emit_xml = 1 ]; then
	machine_domain_xml "daxlab-$RUN_ID" >"$RUN/domain.xml"
	if [ $emit_xml = 1 ]; then
		cat "$RUN/domain.xml" >&3
		rm -f "$RUN/INCOMPLETE"
		echo "$PROG: the domain's files are in $RUN; start it with virsh -c ${libvirt:-qemu:///system} create $RUN/domain.xml" >&2
		exit 0
	fi
fi

# ------------------------------------------------------------------- boot
step "booting: TCG, $cpus vCPUs, -cpu $cpu_model, $pmem_size $pmem_kind at $PMEM_BASE ($persist, plugin: $plugin${latency:+, latency: $latency $latency_mode}), fs: ${FS_LIST[*]}, dax: $([ $dax = 1 ] && echo on || echo off)"
echo "    run directory: ${RUN#"$TOP"/}"
# The images are sparse and grow as the guest writes; a full disk kills
# QEMU with SIGBUS on the mapped image. Say so before, not only after.
need_mib=$(($(to_mib "$pmem_size") * ($([ "$plugin" = persist ] && echo 2 || echo 1)) + NEEDS_PMEM1 * PMEM1_MIB + 64))
free_now=$(free_mib "$RUN")
[ "${free_now:-0}" -ge "$need_mib" ] ||
	echo "$PROG: warning: ${free_now:-0} MiB free in $RUN; the NV-DIMM images can grow to $need_mib MiB, and a full disk stops the guest" >&2
touch "$RUN/tap.txt"
# shellcheck disable=SC2317 # guest_run calls it every second
progress() { "$COLLECT" progress "$RUN"; }
# CPU seconds of this shell's children: the delta over the guest is QEMU's
# CPU time (steadier than wall time on a busy host).
# (times runs in this shell: a $(...) subshell has no children of its own.)
children_cpu() { awk 'NR == 2 {gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4}' "$1"; }
times >"$RUN/.cpu-before"
if [ -n "$libvirt" ]; then
	guest_run_libvirt "$libvirt" "daxlab-$RUN_ID" "$RUN/domain.xml" "$RUN/qemu.log" "$timeout" progress
else
	[ $shell = 0 ] || echo "    the shell comes up on this terminal once the filesystem is mounted; exit it to power off"
	guest_run "$RUN/qemu.log" "$timeout" progress
fi
# The run's own NV-DIMM images back to sparse files (a user's --image is
# left alone): libvirt preallocates an NV-DIMM's file, and the zeros a
# guest writes (mkfs) take blocks too.
for f in "$RUN/pmem0.img" "$RUN/pmem1.img" "$RUN/pmem-durable.img"; do
	[ ! -f "$f" ] || [ -L "$f" ] || fallocate --dig-holes "$f" 2>/dev/null || true
done
free_now=$(free_mib "$RUN")
# A full disk: QEMU died of SIGBUS writing the mapped image, and nothing
# more can be written here. Stop with what is there.
[ "${free_now:-0}" -ge 8 ] ||
	die "the disk of the run directory is full (${free_now:-0} MiB free): the guest stopped (qemu exit $G_EXIT$([ "$G_EXIT" = 135 ] && echo ", SIGBUS on the NV-DIMM image")); its logs so far are in $RUN"
times >"$RUN/.cpu-after"
cpu_seconds=$(awk -v a="$(children_cpu "$RUN/.cpu-before")" -v b="$(children_cpu "$RUN/.cpu-after")" 'BEGIN {printf "%.2f", b - a}')
rm -f "$RUN/.cpu-before" "$RUN/.cpu-after"

# Record/replay: the recording keeps its final NV-DIMM digest; a replay
# must end with the same TAP stream and the same NV-DIMM image.
rr_json=null replay_json=null
if [ $record = 1 ]; then
	sha256sum <"$pmem_file" | cut -d' ' -f1 >"$RUN/replay/pmem-final.sha256"
	rr_json=$(jq -n -c --argjson b "$(size_of "$RUN/replay/events.bin")" --arg s "$(cat "$RUN/replay/pmem-final.sha256")" \
		'{dir: "replay", events_bytes: $b, pmem_final_sha256: $s}')
elif [ -n "$replay_dir" ]; then
	got_sha=$(sha256sum <"$pmem_file" | cut -d' ' -f1)
	tap_same=false image_same=false
	! cmp -s "$replay_dir/tap.txt" "$RUN/tap.txt" || tap_same=true
	[ "$(cat "$replay_dir/replay/pmem-final.sha256" 2>/dev/null)" != "$got_sha" ] || image_same=true
	[ $tap_same = true ] || diff "$replay_dir/tap.txt" "$RUN/tap.txt" >"$RUN/replay-tap.diff" 2>&1 || true
	replay_json=$(jq -n -c --arg of "$replay_dir" --argjson t $tap_same --argjson i $image_same --arg s "$got_sha" \
		'{of: $of, tap_identical: $t, pmem_image_identical: $i, pmem_final_sha256: $s}')
fi
jq --argjson exit "$G_EXIT" --arg signal "$G_SIGNAL" --argjson deadline "$([ "$G_DEADLINE" = 1 ] && echo true || echo false)" \
	--argjson timeout "$timeout" --argjson interrupted "$([ "$G_INTERRUPTED" = 1 ] && echo true || echo false)" \
	--arg flood "$G_FLOOD" --argjson seconds "$G_SECONDS" --argjson cpu "$cpu_seconds" \
	--argjson free "${free_now:-0}" --argjson record "$rr_json" --argjson replay "$replay_json" \
	'.guest = {exit: $exit, signal: $signal, deadline: $deadline, timeout: $timeout,
	  interrupted: $interrupted, flood: $flood, seconds: $seconds, cpu_seconds: $cpu, free_mib: $free}
	 | .record = $record | .replay = $replay' "$RUN/run.json" >"$RUN/run.json.tmp"
mv "$RUN/run.json.tmp" "$RUN/run.json"

# ---------------------------------------------------------------- collect
"$COLLECT" guest "$RUN" >"$RUN/crash-plan.txt" || die "reading what the guest sent failed (see above)"
if [ -s "$RUN/crash-plan.txt" ] && [ "$G_INTERRUPTED" = 0 ]; then
	crash_stage <"$RUN/crash-plan.txt"
fi
rm -f "$RUN/crash-plan.txt"
# The latency model's plot, drawn by the host from the numbers the
# collector checked (pmem-perf-*.dat); the report inlines it.
if [ -n "$latency" ] && [ -s "$RUN/pmem-perf-latency.dat" ]; then
	if command -v gnuplot >/dev/null 2>&1; then
		(cd "$RUN" && gnuplot -e "preset='${latency%%:*}'" "$TOP/host/pmem-perf.gnuplot" 2>gnuplot.log) ||
			echo "    gnuplot failed: see gnuplot.log"
	else
		echo "    (no gnuplot: pmem-perf.svg not drawn; the data is in pmem-perf-*.dat)"
	fi
fi
jq --argjson ended "$(date +%s)" '.ended = $ended' "$RUN/run.json" >"$RUN/run.json.tmp"
mv "$RUN/run.json.tmp" "$RUN/run.json"
rc=0
"$COLLECT" judge "$RUN" --golden "$TOP/scenarios" || rc=$?
crash_keep_images
[ "$rc" -le 1 ] || die "judging the run failed (exit $rc); its files are in $RUN"
"$CACHE/build/host/daxlab-report" "$RUN" || echo "$PROG: writing report.html failed" >&2
[ $record = 0 ] || echo "  recorded: replay it with ./run.sh --replay ${RUN#"$TOP"/}"
[ -z "$replay_dir" ] || [ "$rc" != 0 ] || echo "  replay of ${replay_dir##*/}: TAP stream and NV-DIMM image identical (sha256 ${got_sha:0:16}...)"
echo "  results: ${RUN#"$TOP"/} (report.html)"
if [ "$G_INTERRUPTED" = 1 ]; then
	echo "$PROG: interrupted; the run's logs so far are in $RUN (marked INCOMPLETE)" >&2
	exit 130
fi
rm -f "$RUN/INCOMPLETE"
if ! { ln -sfn "$RUN_ID" "$results/.latest.$$" && mv -T "$results/.latest.$$" "$results/latest"; } 2>/dev/null; then
	rm -f "$results/.latest.$$"
	echo "$PROG: could not point $results/latest at this run (is the disk full?)" >&2
fi
exit "$rc"
