#!/usr/bin/env bash
# daxlab: boot a TCG guest with an emulated NV-DIMM, mount it with DAX,
# run scenarios, and collect everything into results/<run-id>/.
set -eu
# A make that called us (make test) must not leak into our makes: its
# MAKEFLAGS would print "Entering directory" into captured output.
unset MAKEFLAGS MAKELEVEL MFLAGS

TOP=$(cd "$(dirname "$0")" && pwd)
PROG=run.sh
ALL_FS="ext4 xfs ext2"

usage() {
	cat <<'USAGE'
usage: ./run.sh [options]

Installs what is missing (apt-get), builds the guest programs and the
initramfs, boots Debian's 6.1 kernel under QEMU TCG with a 512 MiB NV-DIMM,
mounts it with DAX and runs the scenarios. Results go to results/<run-id>/
(results/latest points at the newest run). Exits 0 when nothing failed.

Scenarios and filesystems
  --scenario NAME      run this scenario (repeatable; default: scenarios/default.list)
  --list               list the scenarios, one line each, and exit
  --fs FS              ext4 (default), xfs, ext2, all, or a comma list
  --no-dax             mount without DAX (dax-basics must then fail)
  --iterations N       rounds of each racing scenario (default: its own,
                       a few); the summary gives rounds/s, hits, first hit
  --seed S             seed of the racing rounds' timing and of the crash
                       samples (default: 1)
  --strict             known kernel windows (a broken promise the default
                       kernel is known to break briefly, e.g. 6.1's zero page
                       seen after pwrite()) count as hits, not diagnostics
  --widen [US]         widen race windows: a kprobe module delays the kernel
                       functions each scenario declares ("daxlab-widen:" in
                       its source) by a seeded 0..US microseconds (default 200)

NV-DIMM model (the daxlab-pmem QEMU plugin)
  --persist MODE       adr (default) or eadr: the persistence domain, told to
                       the guest (NFIT, nvdimm-persistence=mem-ctrl|cpu) and
                       used by the plugin's model
  --plugin MODE        persist (default: counters + persistence model),
                       counters (no model), or off (plain QEMU)
  --trace [FILTER]     write results/<run>/pmem-trace.bin (read it with
                       .cache/build/emulator/daxlab-trace); FILTER is a comma
                       list of types=T+T (load store nt flush fence locked
                       marker; default store+nt+flush+fence+marker),
                       range=A-B (NV-DIMM offsets), time=A-B (seconds after
                       QEMU starts), windows (marked windows only)
  --crash-check SCENARIO
                       run SCENARIO and check every crash state at its
                       checkpoints against what it declares (durable-only +
                       --crash-samples seeded samples of pending lines)
  --crash-samples K    sampled crash states per checkpoint (default: 8)
  --crash-every N      also a checkpoint (a crash state in pmem-log.bin)
                       after every Nth fence of any vCPU, kernel or user
                       (ids 4294967297, ...; daxlab-crash list|image)
  --guest-write-cache 0|1
                       set the pmem disk's dax/write_cache in the guest
                       (0: the kernel skips its cache flushes)

Latency and bandwidth model (the plugin's perf-model.c)
  --latency SPEC       model the NV-DIMM's latency and bandwidth: dram, optane
                       (Intel Optane DC PMM 100, published figures), or
                       custom:key=value,... starting from dram (keys and units:
                       .cache/build/emulator/daxlab-latency --help). Modelled
                       time per marked window goes to pmem-model.json; the
                       pmem-perf scenario's own figures to pmem-perf.json, and
                       a plot of both presets to pmem-perf.svg
  --latency-mode MODE  model (default: the modelled time is reported, the
                       guest runs at emulation speed) or stall (the vCPU is
                       also busy-waited for the modelled cost above dram's,
                       so programs in the guest measure the slowdown)

Your own workload
  --payload DIR        put DIR into the guest as /payload (an initramfs
                       overlay): static binaries and shell scripts (the guest
                       has busybox, no libc)
  --exec 'CMD'         run CMD with sh in a directory on the DAX mount, with
                       /payload first on PATH, like a scenario named payload:
                       its output in tap.txt and payload-<fs>.txt, exit 0
                       pass, 4 skip, else fail; time limit --scenario-timeout.
                       Without --scenario, only CMD runs
  --shell              boot to an interactive shell on this terminal, in a
                       directory on the DAX mount, the plugin attached; exit
                       the shell to unmount and power off (--timeout
                       defaults to 4 hours here)

libvirt and campaigns
  --libvirt [URI]      run the same job through libvirt (default URI
                       qemu:///system): the domain XML (nvdimm memory device,
                       ACPI, NUMA cell, the plugin through qemu:commandline,
                       a named CPU) is kept as domain.xml in the run directory;
                       on a machine without an init system start the daemons
                       with scripts/libvirt-daemons.sh start
  --emit-xml           print the domain XML of this job for libvirt and exit
                       (its run directory, with the NV-DIMM image, stays)
  --campaign FILE      many guests from one file, -j N at once, over direct
                       QEMU and/or libvirt URIs (./run.sh --campaign --help)

Record and replay (QEMU -icount rr; one vCPU: QEMU refuses rr with more)
  --record             record the run for exact replay: the run directory
                       keeps replay/ (kernel, initramfs, starting NV-DIMM
                       image, QEMU's event log); implies --cpus 1
  --replay RUN_DIR     replay a recorded run bit for bit into a new run
                       directory and check the TAP stream and the final
                       NV-DIMM image are identical; may add --trace,
                       --plugin, --timeout, --results (the plugin watches,
                       it does not change what the guest does)

Guest
  --kernel-variant NAME
                       boot a kernel built from Debian's linux-source-6.1
                       with guest-kernel/build.sh (built on first use, then
                       cached): slim, defconfig, debug (lockdep + KASAN) or
                       a mutant that puts back one DAX bug (m1-... to m9-...;
                       guest-kernel/build.sh --list)
  --kernel PATH        boot this kernel image instead of Debian's prebuilt one
  --modules DIR        its modules directory (.../lib/modules/KVER); omit for
                       a kernel with everything built in
  --cpu MODEL          QEMU CPU model (default: max)
  --cpus N             vCPUs (default: 2)
  --mem SIZE           guest RAM (default: 1G)
  --pmem-size SIZE     NV-DIMM size (default: 512M)
  --image PATH         keep the NV-DIMM in PATH across runs (created if
                       missing): the namespace and filesystem on it are
                       reused, like a real DIMM; one --fs at a time

Limits and output
  --timeout SECS       kill the guest after this long (default: 900)
  --scenario-timeout SECS
                       kill one scenario after this long (default: 300)
  --results DIR        where run directories go (default: results/ in the repo,
                       or $DAXLAB_RESULTS)
  -h, --help           this help

Environment: DAXLAB_CACHE (default .cache in the repo) holds the kernel,
initramfs and build output; DAXLAB_RESULTS as --results; DAXLAB_QEMU_WRAPPER
is put before the QEMU command (e.g. "perf record -o /tmp/perf.data --");
DAXLAB_PLUGIN_OPTS is added to the plugin's options (verify=on: self-check).
USAGE
}

die() {
	echo "$PROG: $*" >&2
	exit 2
}
step() { echo "==> $*"; }

# --campaign FILE: many guests; scripts/campaign.sh does the rest.
for a in "$@"; do
	[ "$a" != --campaign ] || exec "$TOP/scripts/campaign.sh" "$@"
done

# ---------------------------------------------------------------- scenarios
scenario_file() { # NAME -> scenarios/NNN-NAME.c (or nothing)
	local f
	for f in "$TOP"/scenarios/[0-9][0-9][0-9]-*.c; do
		local base=${f##*/}
		base=${base%.c}
		if [ "${base#[0-9][0-9][0-9]-}" = "$1" ] || [ "$base" = "$1" ]; then
			echo "$f"
			return 0
		fi
	done
	return 1
}
scenario_desc() { # FILE: line 2 is " * NAME - description"
	sed -n '2s/^ \* [^ ]* - //p' "$1"
}
default_scenarios() {
	sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$TOP/scenarios/default.list"
}
list_scenarios() {
	local f base name tag
	local defaults
	defaults=" $(default_scenarios | tr '\n' ' ') "
	for f in "$TOP"/scenarios/[0-9][0-9][0-9]-*.c; do
		base=${f##*/}
		base=${base%.c}
		name=${base#[0-9][0-9][0-9]-}
		tag=""
		case "$defaults" in *" $name "*) tag=" [default]" ;; esac
		printf '%-24s %s%s\n' "$name" "$(scenario_desc "$f")" "$tag"
	done
}

# --------------------------------------------------------------- arguments
scenarios=()
fs_arg=ext4
dax=1
kernel=""
kvariant=""
modules=""
cpu_model=max
cpus=2
mem=1G
pmem_size=512M
timeout=900
stimeout=300
results=${DAXLAB_RESULTS:-$TOP/results}
persist=adr
plugin=persist
crash_check=""
image=""
trace=""
trace_filter=""
crash_samples=8
seed=1
iterations=""
strict=0
widen=""
write_cache=""
latency=""
latency_mode=""
libvirt=""
emit_xml=0
crash_every=""
payload=""
exec_cmd=""
exec_given=0
shell=0
timeout_given=0
CACHE=${DAXLAB_CACHE:-$TOP/.cache}

# --replay RUN_DIR: the recorded run's own arguments, then the few options a
# replay may add (what the plugin watches, limits, where results go).
replay_dir=""
orig_args=("$@")
for ((i = 0; i < $#; i++)); do
	if [ "${orig_args[$i]}" = --replay ]; then
		replay_dir=${orig_args[$((i + 1))]:-}
		[ -n "$replay_dir" ] || die "--replay needs a run directory (try --help)"
		[ -f "$replay_dir/replay/args" ] || die "not a recorded run (no replay/args): $replay_dir"
		for f in vmlinuz initrd.cpio.gz pmem-start.img events.bin guest-cmdline.txt; do
			[ -f "$replay_dir/replay/$f" ] || die "recorded run is incomplete (no replay/$f): $replay_dir"
		done
		replay_dir=$(cd "$replay_dir" && pwd)
		extra_args=()
		for ((j = 0; j < $#; j++)); do
			[ $j = "$i" ] || [ $j = $((i + 1)) ] && continue
			a=${orig_args[$j]}
			case "$a" in
			--trace | --plugin | --timeout | --results) extra_args+=("$a") ;;
			-*) die "--replay takes only --trace, --plugin, --timeout and --results, not $a" ;;
			*) extra_args+=("$a") ;;
			esac
		done
		mapfile -d '' -t rec_args <"$replay_dir/replay/args"
		set -- ${rec_args[@]+"${rec_args[@]}"} ${extra_args[@]+"${extra_args[@]}"}
		break
	fi
done
record=0
cpus_given=""

need_arg() { if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (try --help)"; fi; }
to_mib() { case "$1" in *G) echo $((${1%G} * 1024)) ;; *M) echo "${1%M}" ;; esac }
is_uint() { case "$1" in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac }
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help)
		usage
		exit 0
		;;
	--list)
		list_scenarios
		exit 0
		;;
	--scenario)
		need_arg "$@"
		scenarios+=("$2")
		shift
		;;
	--fs)
		need_arg "$@"
		fs_arg=$2
		shift
		;;
	--no-dax) dax=0 ;;
	--persist)
		need_arg "$@"
		persist=$2
		shift
		;;
	--plugin)
		need_arg "$@"
		plugin=$2
		shift
		;;
	--crash-check)
		need_arg "$@"
		crash_check=$2
		scenarios+=("$2")
		shift
		;;
	--crash-every)
		need_arg "$@"
		crash_every=$2
		shift
		;;
	--crash-samples)
		need_arg "$@"
		crash_samples=$2
		shift
		;;
	--seed)
		need_arg "$@"
		seed=$2
		shift
		;;
	--iterations)
		need_arg "$@"
		iterations=$2
		shift
		;;
	--strict) strict=1 ;;
	--widen)
		widen=200
		if [ $# -ge 2 ] && [ "${2#-}" = "$2" ]; then
			widen=$2
			shift
		fi
		;;
	--payload)
		need_arg "$@"
		payload=$2
		shift
		;;
	--exec)
		need_arg "$@"
		exec_cmd=$2
		exec_given=1
		shift
		;;
	--shell) shell=1 ;;
	--libvirt)
		libvirt=qemu:///system
		if [ $# -ge 2 ] && [ "${2#-}" = "$2" ]; then
			libvirt=$2
			shift
		fi
		;;
	--emit-xml) emit_xml=1 ;;
	--latency)
		need_arg "$@"
		latency=$2
		shift
		;;
	--latency-mode)
		need_arg "$@"
		latency_mode=$2
		shift
		;;
	--guest-write-cache)
		need_arg "$@"
		write_cache=$2
		shift
		;;
	--image)
		need_arg "$@"
		image=$2
		shift
		;;
	--trace)
		trace=on
		if [ $# -ge 2 ] && [ "${2#-}" = "$2" ]; then
			trace_filter=$2
			shift
		fi
		;;
	--kernel)
		need_arg "$@"
		kernel=$2
		shift
		;;
	--kernel-variant)
		need_arg "$@"
		kvariant=$2
		shift
		;;
	--modules)
		need_arg "$@"
		modules=$2
		shift
		;;
	--cpu)
		need_arg "$@"
		cpu_model=$2
		shift
		;;
	--cpus)
		need_arg "$@"
		cpus=$2
		cpus_given=1
		shift
		;;
	--record) record=1 ;;
	--mem)
		need_arg "$@"
		mem=$2
		shift
		;;
	--pmem-size)
		need_arg "$@"
		pmem_size=$2
		shift
		;;
	--timeout)
		need_arg "$@"
		timeout=$2
		timeout_given=1
		shift
		;;
	--scenario-timeout)
		need_arg "$@"
		stimeout=$2
		shift
		;;
	--results)
		need_arg "$@"
		results=$2
		shift
		;;
	*) die "unknown option: $1 (try --help)" ;;
	esac
	shift
done

# Validate everything before installing or booting anything.
fs_list=""
for fs in ${fs_arg//,/ }; do
	case "$fs" in
	all) fs_list="$fs_list $ALL_FS" ;;
	ext4 | xfs | ext2) fs_list="$fs_list $fs" ;;
	*) die "unknown filesystem: $fs (choose ext4, xfs, ext2 or all)" ;;
	esac
done
fs_list=$(echo "$fs_list" | tr ' ' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')
fs_list=${fs_list% }
[ -n "$fs_list" ] || die "--fs is empty"

if [ $shell = 1 ]; then
	[ ${#scenarios[@]} -eq 0 ] || die "--shell runs no scenarios: drop --scenario"
elif [ ${#scenarios[@]} -eq 0 ] && [ $exec_given = 0 ]; then
	mapfile -t scenarios < <(default_scenarios)
fi
scen_bins=()
scen_names=()
[ ${#scenarios[@]} -eq 0 ] || mapfile -t scenarios < <(printf '%s\n' "${scenarios[@]}" | awk '!seen[$0]++')
pmem1=0
for s in ${scenarios[@]+"${scenarios[@]}"}; do
	f=$(scenario_file "$s") || die "no such scenario: $s (see --list)"
	# A scenario that needs a second, small NV-DIMM (/dev/pmem1) says so.
	grep -q '^ \* daxlab-needs: .*\bpmem1\b' "$f" && pmem1=1
	b=${f##*/}
	scen_bins+=("${b%.c}")
	scen_names+=("${b:4:-2}")
done

case "$persist" in
adr) nvdimm_persistence="mem-ctrl" ;;
eadr) nvdimm_persistence=cpu ;;
*) die "unknown --persist mode: $persist (choose adr or eadr)" ;;
esac
case "$plugin" in
persist | counters | off) ;;
*) die "unknown --plugin mode: $plugin (choose persist, counters or off)" ;;
esac
is_pos() { is_uint "$1" && [ "$1" -ge 1 ]; }
# --trace FILTER -> the plugin's trace_* options.
trace_opts=""
if [ -n "$trace" ]; then
	[ "$plugin" != off ] || die "--trace needs the plugin (not --plugin off)"
	trace_opts="trace=on"
	IFS=, read -r -a tparts <<<"${trace_filter:-}"
	for t in ${tparts[@]+"${tparts[@]}"}; do
		case "$t" in
		types=*) [[ "${t#types=}" =~ ^(load|store|nt|flush|fence|locked|marker)(\+(load|store|nt|flush|fence|locked|marker))*$ ]] ||
			die "--trace: unknown event type in '$t' (load store nt flush fence locked marker, joined by +)"
			trace_opts="$trace_opts,trace_types=${t#types=}" ;;
		range=*) [[ "${t#range=}" =~ ^[0-9a-fA-Fx]+[KMG]?-[0-9a-fA-Fx]+[KMG]?$ ]] ||
			die "--trace: range must look like 0x1000-0x200000, not '${t#range=}'"
			trace_opts="$trace_opts,trace_range=${t#range=}" ;;
		windows) trace_opts="$trace_opts,trace_windows=on" ;;
		time=*) [[ "${t#time=}" =~ ^[0-9]+(\.[0-9]+)?-[0-9]+(\.[0-9]+)?$ ]] ||
			die "--trace: time must look like 10-20.5 (seconds after QEMU starts), not '${t#time=}'"
			trace_opts="$trace_opts,trace_time=${t#time=}" ;;
		*) die "--trace: unknown filter '$t' (types=, range=, time=, windows)" ;;
		esac
	done
fi
crash_check_name=""
if [ -n "$crash_check" ]; then
	f=$(scenario_file "$crash_check")
	b=${f##*/}
	crash_check_name=${b:4:-2}
fi
if [ -n "$crash_check" ] && [ "$plugin" != persist ]; then
	die "--crash-check needs --plugin persist"
fi
is_uint "$crash_samples" || die "--crash-samples must be a number, not '$crash_samples'"
if [ -n "$crash_every" ]; then
	is_pos "$crash_every" || die "--crash-every must be a positive number of fences, not '$crash_every'"
	[ "$plugin" = persist ] || die "--crash-every needs --plugin persist"
fi
is_uint "$seed" || die "--seed must be a number, not '$seed'"
[ -z "$iterations" ] || is_pos "$iterations" || die "--iterations must be a positive number, not '$iterations'"
if [ -n "$widen" ]; then
	if ! is_pos "$widen" || [ "$widen" -gt 100000 ]; then
		die "--widen takes microseconds, 1 to 100000, not '$widen'"
	fi
	[ -z "$kernel" ] || [ -d "$modules/build" ] ||
		die "--widen with --kernel needs --modules DIR with DIR/build (the kernel's build tree)"
fi
case "$write_cache" in "" | 0 | 1) ;; *) die "--guest-write-cache must be 0 or 1, not '$write_cache'" ;; esac
# --latency: the preset's name here; its parameters once daxlab-latency is built.
if [ -n "$latency" ]; then
	case "$latency" in
	dram | optane | custom | custom:*) ;;
	*) die "unknown latency preset '$latency' (choose dram, optane or custom:key=value,...)" ;;
	esac
	[ "$plugin" != off ] || die "--latency needs the plugin (not --plugin off)"
	case "$latency" in *+* | *" "*) die "--latency: separate parameters with commas, not '+' or spaces" ;; esac
fi
case "$latency_mode" in
"") latency_mode=model ;;
model | stall) [ -n "$latency" ] || die "--latency-mode needs --latency PRESET" ;;
*) die "unknown --latency-mode: $latency_mode (choose model or stall)" ;;
esac
is_pos "$cpus" || die "--cpus must be a positive integer, not '$cpus'"
if [ $record = 1 ]; then
	[ -z "$replay_dir" ] || die "--record and --replay exclude each other"
	[ -z "$cpus_given" ] || [ "$cpus" = 1 ] ||
		die "--record needs one vCPU (QEMU refuses record/replay with more): drop --cpus $cpus"
	cpus=1
fi
[ -z "$replay_dir" ] || cpus=1
# What a replay needs of this run's arguments: those that shape the guest
# and the host-side view of it. The kernel, initramfs, image and guest
# command line are kept as files instead.
save_args=()
if [ $record = 1 ]; then
	for ((i = 0; i < ${#orig_args[@]}; i++)); do
		a=${orig_args[$i]}
		case "$a" in
		--record) ;;
		--no-dax) save_args+=("$a") ;;
		--trace) [ "${orig_args[$((i + 1))]:--}" = "${orig_args[$((i + 1))]#-}" ] && i=$((i + 1)) ;;
		--widen) save_args+=("$a") ;;
		--results | --plugin | --timeout | --kernel | --kernel-variant | --modules | --image | --crash-samples) i=$((i + 1)) ;;
		--crash-check) save_args+=(--scenario "${orig_args[$((i + 1))]}") && i=$((i + 1)) ;;
		*) save_args+=("$a") ;;
		esac
	done
fi
is_pos "$timeout" || die "--timeout must be a positive number of seconds, not '$timeout'"
if [ -n "$payload" ]; then
	[ $exec_given = 1 ] || die "--payload needs --exec 'CMD' (what to run in the guest)"
	[ -d "$payload" ] || die "--payload is not a directory: $payload"
	{ [ -r "$payload" ] && [ -x "$payload" ]; } || die "--payload directory is not readable: $payload"
	payload=$(cd "$payload" && pwd)
	payload_mib=$(($(du -sk "$payload" | cut -f1) / 1024))
	[ "$payload_mib" -le $(($(to_mib "$mem") / 4)) ] ||
		die "--payload is $payload_mib MiB: more than a quarter of the guest's --mem $mem (it lives in the initramfs)"
fi
if [ -n "$libvirt" ] || [ $emit_xml = 1 ]; then
	case "${libvirt:-qemu:///system}" in qemu:///* | qemu+*://*) ;; *) die "--libvirt: '$libvirt' is not a QEMU libvirt URI (qemu:///system, qemu+ssh://host/system)" ;; esac
	[ $shell = 0 ] || die "--shell runs QEMU on this terminal: not with --libvirt"
	{ [ -z "$replay_dir" ] && [ $record = 0 ]; } || die "--record and --replay run QEMU directly: not with --libvirt"
	[ -z "${DAXLAB_QEMU_WRAPPER:-}" ] || die "DAXLAB_QEMU_WRAPPER does not apply to --libvirt"
fi
# --emit-xml: progress goes to stderr, only the XML to stdout.
[ $emit_xml = 0 ] || exec 3>&1 1>&2
if [ -n "$libvirt" ] && [ $emit_xml = 0 ]; then
	command -v virsh >/dev/null 2>&1 || die "--libvirt needs virsh (apt-get install libvirt-clients libvirt-daemon-driver-qemu)"
	timeout 20 virsh -c "$libvirt" version >/dev/null 2>&1 ||
		die "--libvirt: cannot connect to $libvirt (is libvirtd running? scripts/libvirt-daemons.sh start)"
fi
if [ $shell = 1 ]; then
	[ $exec_given = 0 ] || die "--shell and --exec exclude each other"
	{ [ -z "$replay_dir" ] && [ $record = 0 ]; } || die "--shell cannot be recorded or replayed"
	[ -z "$crash_check" ] || die "--shell and --crash-check exclude each other"
	[ -t 0 ] || [ -p /dev/stdin ] || [ -f /dev/stdin ] || die "--shell needs a terminal (or commands piped in) on stdin"
fi
is_pos "$stimeout" || die "--scenario-timeout must be a positive number of seconds, not '$stimeout'"
[[ "$pmem_size" =~ ^[0-9]+[MG]$ ]] || die "--pmem-size must look like 512M or 1G, not '$pmem_size'"
[[ "$mem" =~ ^[0-9]+[MG]$ ]] || die "--mem must look like 1G or 2048M, not '$mem'"
if [ -n "$kernel" ]; then
	[ -f "$kernel" ] || die "kernel image not found: $kernel"
	[ -r "$kernel" ] || die "kernel image not readable: $kernel"
	kernel=$(cd "$(dirname "$kernel")" && pwd)/$(basename "$kernel")
fi
if [ -n "$kvariant" ]; then
	[ -z "$kernel" ] || die "--kernel and --kernel-variant exclude each other"
	"$TOP/guest-kernel/build.sh" --list | cut -d' ' -f1 | grep -qxF -- "$kvariant" ||
		die "no such kernel variant: $kvariant (guest-kernel/build.sh --list)"
	[ -z "$widen" ] || die "--widen needs the kernel's module build tree: not available with --kernel-variant yet"
fi
if [ -n "$modules" ]; then
	[ -n "$kernel" ] || die "--modules needs --kernel"
	[ -d "$modules" ] || die "modules directory not found: $modules"
	modules=$(cd "$modules" && pwd)
fi

if [ -n "$image" ]; then
	case "$fs_list" in *" "*) die "--image keeps one filesystem: give a single --fs" ;; esac
	if [ -e "$image" ]; then
		[ -f "$image" ] || die "--image is not a regular file: $image"
		[ "$(stat -c %s "$image")" -eq $(($(to_mib "$pmem_size") * 1024 * 1024)) ] ||
			die "--image $image is $(stat -c %s "$image") bytes, not --pmem-size $pmem_size"
		[ -w "$image" ] || die "--image is not writable: $image"
	else
		truncate -s "$pmem_size" "$image" 2>/dev/null || die "cannot create --image $image"
	fi
	image=$(cd "$(dirname "$image")" && pwd)/$(basename "$image")
	# One run at a time on an image.
	exec 8<>"$image"
	flock -n 8 || die "--image $image is in use by another run"
fi
mkdir -p "$results" 2>/dev/null || die "cannot create results directory: $results"
results=$(cd "$results" && pwd)
probe=$(mktemp "$results/.write-test.XXXXXX" 2>/dev/null) || die "results directory is not writable: $results"
rm -f "$probe"
free_mib() { df -Pk "$1" 2>/dev/null | awk 'NR==2 {print int($4 / 1024)}'; }
free_at_start=$(free_mib "$results")
[ "${free_at_start:-0}" -ge 256 ] ||
	die "not enough free space in $results: ${free_at_start:-0} MiB free, need 256 MiB (NV-DIMM image and logs)"

# --latency's parameters, checked by the model's own parser (a small host
# tool): before anything is printed when a compiler is there, else once
# the dependencies are installed and it is built.
latency_checked=0
check_latency() {
	local err
	mkdir -p "$CACHE"
	(flock 9 && make -s -C "$TOP" CACHE="$CACHE" "$CACHE/build/emulator/daxlab-latency") \
		9>"$CACHE/.build.lock" >"$CACHE/make-latency.log" 2>&1 ||
		die "building daxlab-latency failed: see $CACHE/make-latency.log"
	err=$("$CACHE/build/emulator/daxlab-latency" check "$latency" 2>&1 >/dev/null) ||
		die "--latency: ${err:-daxlab-latency failed}"
	latency_checked=1
}
if [ -n "$latency" ] && command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1; then
	check_latency
fi

# ------------------------------------------------------------------ build
start_wall=$(date +%s)
step "dependencies"
"$TOP/scripts/install-deps.sh" || die "installing dependencies failed"

mkdir -p "$CACHE"
# One build at a time per cache: parallel runs share the cache.
exec 9>"$CACHE/.build.lock"
flock 9
step "guest programs and the NV-DIMM plugin"
targets=guest
[ "$plugin" = off ] || targets="guest plugin"
# shellcheck disable=SC2086 # two make targets
if ! make -s -C "$TOP" CACHE="$CACHE" $targets >"$CACHE/make.log" 2>&1; then
	cat "$CACHE/make.log" >&2
	die "building the guest programs or the plugin failed"
fi
[ -z "$latency" ] || [ $latency_checked = 1 ] || check_latency

step "guest kernel"
if [ -n "$replay_dir" ]; then
	# A replay boots exactly what was recorded.
	kdir=$replay_dir/replay
	kver=$(cat "$kdir/kver")
	kernel_desc="$(cat "$kdir/kernel.txt") (replay of ${replay_dir##*/})"
elif [ -n "$kernel" ]; then
	kdir=$(mktemp -d "${TMPDIR:-/tmp}/daxlab-kernel.XXXXXX")
	trap 'rm -rf "$kdir"' EXIT
	ln -s "$kernel" "$kdir/vmlinuz"
	if [ -n "$modules" ]; then
		kver=$(basename "$modules")
		mkdir -p "$kdir/lib/modules"
		ln -s "$modules" "$kdir/lib/modules/$kver"
		[ -f "$modules/modules.dep" ] || die "$modules has no modules.dep (run depmod for it)"
	else
		kver=builtin-$(sha256sum "$kernel" | cut -c1-12)
	fi
	echo "$kver" >"$kdir/kver"
	kernel_desc="custom $kernel"
elif [ -n "$kvariant" ]; then
	kdir=$("$TOP/guest-kernel/build.sh" --variant "$kvariant" --cache "$CACHE") ||
		die "building kernel variant $kvariant failed"
	kver=$(cat "$kdir/kver")
	kernel_desc="source $kvariant $kver ($(sed -n 's/^source=//p' "$kdir/variant.txt"))"
else
	kdir=$("$TOP/guest-kernel/fetch-debian.sh" --cache "$CACHE") || die "fetching the Debian kernel failed"
	kver=$(cat "$kdir/kver")
	kernel_desc="debian $kver"
fi
echo "    $kernel_desc"

extra=()
if [ -n "$widen" ] && [ -z "$replay_dir" ]; then
	step "daxlab-widen module"
	wargs=(--kver "$kver" --cache "$CACHE")
	[ -n "$kernel" ] && wargs+=(--build-dir "$modules/build")
	wdir=$("$TOP/guest-kernel/build-widen.sh" "${wargs[@]}") || die "building the daxlab-widen module failed"
	extra=(--extra "$wdir")
fi
step "initramfs"
if [ -n "$replay_dir" ]; then
	initrd=$replay_dir/replay/initrd.cpio.gz
else
	initrd=$("$TOP/images/build-initramfs.sh" --cache "$CACHE" --kernel-dir "$kdir" --bin-dir "$CACHE/build/guest" ${extra[@]+"${extra[@]}"}) ||
		die "building the initramfs failed"
fi
echo "    ${initrd#"$TOP"/}"
flock -u 9

# ---------------------------------------------------------------- run dir
fs_tag=$(echo "$fs_list" | tr ' ' '+')
while :; do
	run_id=$(date +%Y%m%d-%H%M%S)-$fs_tag-$(printf '%04x' $((RANDOM % 65536)))
	mkdir "$results/$run_id" 2>/dev/null && break
done
run=$results/$run_id
mkdir -p "$run/fs_dax" "$run/dmesg" "$run/expect"
ln -sfn "$run_id" "$results/.latest.$$"
mv -T "$results/.latest.$$" "$results/latest"

# ------------------------------------------------------------------- boot
# Where QEMU puts the NV-DIMM (pc machine): RAM below 4 GiB up to 3.5 GiB
# (3 GiB when more, gigabyte-aligned), the rest above 4 GiB; device memory
# starts at the next GiB after that, and the first DIMM at its start. The
# guest's /proc/iomem is checked against this after the run.
ram_mib=$(to_mib "$mem")
if [ "$ram_mib" -ge 3584 ]; then above_mib=$((ram_mib - 3072)); else above_mib=0; fi
pmem_base=$(printf '0x%x' $(((4096 + (above_mib + 1023) / 1024 * 1024) * 1024 * 1024)))
pmem_bytes=$(($(to_mib "$pmem_size") * 1024 * 1024))
PMEM1_MIB=384 # mkfs.xfs wants more than 300 MB
qemu_version=$(qemu-system-x86_64 --version | head -n1)
pmem_file=$run/pmem0.img
if [ -n "$replay_dir" ]; then
	# The NV-DIMM as it was when the recording started (never the live --image).
	cp --sparse=always "$replay_dir/replay/pmem-start.img" "$pmem_file"
	[ "$plugin" = persist ] && cp --sparse=always "$pmem_file" "$run/pmem-base.img"
elif [ -n "$image" ]; then
	pmem_file=$image
	# Crash states start from the image as it was at boot.
	[ "$plugin" = persist ] && cp --sparse=always "$image" "$run/pmem-base.img"
	ln -s "$image" "$run/pmem0.img"
else
	truncate -s "$pmem_size" "$pmem_file"
fi
# --exec: the command becomes a scenario, 000-payload, and --payload DIR
# /payload, in a cpio overlay after the initramfs (the kernel unpacks both).
if [ $exec_given = 1 ]; then
	scen_bins+=(000-payload)
	scen_names+=(payload)
	ov=$run/payload-root
	mkdir -p "$ov/scenarios" "$ov/payload"
	[ -z "$payload" ] || cp -a "$payload/." "$ov/payload/" || die "cannot copy --payload $payload"
	printf '%s\n' "$exec_cmd" >"$ov/payload.cmd"
	cat >"$ov/scenarios/000-payload" <<'PAYLOAD'
#!/bin/sh
# run.sh --exec: the user's command, in its directory on the DAX mount.
export PATH=/payload:$PATH DAXLAB_PAYLOAD=/payload
exec sh -c "$(cat /payload.cmd)"
PAYLOAD
	chmod +x "$ov/scenarios/000-payload"
	(cd "$ov" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -1 >"$run/payload.cpio.gz" ||
		die "cannot pack --payload into the initramfs overlay"
	cat "$initrd" "$run/payload.cpio.gz" >"$run/initrd-payload.cpio.gz"
	initrd=$run/initrd-payload.cpio.gz
	rm -rf "$ov"
fi
cmdline="console=ttyS0 panic=-1 loglevel=5 daxlab.fs=${fs_list// /,}"
cmdline="$cmdline daxlab.scenarios=$(
	IFS=,
	echo "${scen_bins[*]}"
) daxlab.dax=$dax daxlab.stimeout=$stimeout daxlab.seed=$seed"
[ -n "$iterations" ] && cmdline="$cmdline daxlab.iterations=$iterations"
[ $strict = 1 ] && cmdline="$cmdline daxlab.strict=1"
[ -n "$widen" ] && cmdline="$cmdline daxlab.widen=$widen"
[ $pmem1 = 1 ] && cmdline="$cmdline daxlab.pmem1=1"
# KASAN on 6.1 with 5-level paging (-cpu max has LA57) reports a wild
# access at boot now and then: identify_cpu() clears the LA57 bit for a
# moment, an interrupt's spin_lock on a direct-map address then looks
# out of range to KASAN, and the report turns lockdep off for the whole
# run. 4-level paging does not change what the scenarios exercise.
if [ -f "$kdir/config" ] && grep -q '^CONFIG_KASAN=y' "$kdir/config"; then
	cmdline="$cmdline no5lvl"
fi
cmdline="$cmdline daxlab.pmem_base=$pmem_base"
if [ -n "$replay_dir" ]; then
	cmdline=$(cat "$replay_dir/replay/guest-cmdline.txt")
elif [ $record = 1 ]; then
	# Everything a replay needs, kept with the run (the cache may change).
	step "record: keeping the kernel, initramfs and starting NV-DIMM image in replay/"
	mkdir -p "$run/replay"
	cp -L "$kdir/vmlinuz" "$run/replay/vmlinuz"
	cp "$initrd" "$run/replay/initrd.cpio.gz"
	cp --sparse=always "$pmem_file" "$run/replay/pmem-start.img"
	echo "$kver" >"$run/replay/kver"
	echo "$kernel_desc" >"$run/replay/kernel.txt"
	echo "$cmdline" >"$run/replay/guest-cmdline.txt"
	printf '%s\0' ${save_args[@]+"${save_args[@]}"} >"$run/replay/args"
fi
rr_opts=()
[ $record = 1 ] && rr_opts=(-icount "shift=auto,rr=record,rrfile=$run/replay/events.bin")
[ -n "$replay_dir" ] && rr_opts=(-icount "shift=auto,rr=replay,rrfile=$replay_dir/replay/events.bin")
[ -n "$write_cache" ] && cmdline="$cmdline daxlab.write_cache=$write_cache"
[ -n "$image" ] && cmdline="$cmdline daxlab.keep=1"
[ $shell = 1 ] && cmdline="$cmdline daxlab.shell=1"
[ $shell = 1 ] && [ $timeout_given = 0 ] && timeout=14400
# What every guest of this run shares (the recovery guests of --crash-check too).
qemu_common=(-accel tcg -cpu "$cpu_model" -smp "$cpus" -kernel "$kdir/vmlinuz" -initrd "$initrd"
	-display none -monitor none -no-reboot)
pmem1_opts=()
if [ $pmem1 = 1 ]; then
	# The second NV-DIMM: small, after the first, not watched by the plugin.
	# (Linux may number its region first: the agent finds the main one by
	# its address, daxlab.pmem_base.)
	truncate -s "${PMEM1_MIB}M" "$run/pmem1.img"
	# shellcheck disable=SC2054 # commas belong to QEMU's option syntax
	pmem1_opts=(-object "memory-backend-file,id=mem2,share=on,mem-path=$run/pmem1.img,size=${PMEM1_MIB}M"
		-device nvdimm,id=nv2,memdev=mem2)
fi
# The console: a file, or with --shell this terminal (and the file as its log).
# shellcheck disable=SC2054 # commas belong to QEMU's option syntax
console_opts=(-chardev "file,id=con,path=$run/console.log" -serial chardev:con)
# shellcheck disable=SC2054
[ $shell = 1 ] && console_opts=(-chardev "stdio,id=con,signal=off,logfile=$run/console.log" -serial chardev:con)
# shellcheck disable=SC2054 # commas belong to QEMU's option syntax
qemu=(qemu-system-x86_64 "${qemu_common[@]}" ${rr_opts[@]+"${rr_opts[@]}"}
	-machine "pc,nvdimm=on,nvdimm-persistence=$nvdimm_persistence"
	-m "$mem,slots=2,maxmem=$(($(to_mib "$mem") + $(to_mib "$pmem_size") + PMEM1_MIB + 1024))M"
	-object "memory-backend-file,id=mem1,share=on,mem-path=$pmem_file,size=$pmem_size"
	-device nvdimm,id=nv1,memdev=mem1 ${pmem1_opts[@]+"${pmem1_opts[@]}"} -append "$cmdline"
	"${console_opts[@]}"
	-chardev "file,id=tap,path=$run/tap.txt" -serial chardev:tap
	-chardev "file,id=files,path=$run/guest-files.raw" -serial chardev:files)
# The plugin watches guest accesses from the agent's marker when this kernel
# has the NV-DIMM drivers as modules (nothing can reach the NV-DIMM before
# they are loaded; the boot is then not watched: a third of the plugin's
# cost), else from the kernel's first instruction. --record/--replay keep to
# the latter: the marker flushes QEMU's translated code.
watch_from=kernel
if [ $record = 0 ] && [ -z "$replay_dir" ] && [ -f "$kdir/config" ] &&
	grep -qx 'CONFIG_ACPI_NFIT=m' "$kdir/config"; then
	watch_from=marker
fi
if [ "$plugin" != off ]; then
	popts="base=$pmem_base,size=$pmem_bytes,out=$run,persist=off"
	[ "$plugin" = persist ] && popts="base=$pmem_base,size=$pmem_bytes,out=$run,persist=$persist,image=$pmem_file"
	[ -n "$trace_opts" ] && popts="$popts,$trace_opts"
	[ -n "$crash_every" ] && popts="$popts,checkpoint_fences=$crash_every"
	popts="$popts,watch=$watch_from"
	# QEMU splits plugin options at commas: the model's own go joined by '+'.
	[ -n "$latency" ] && popts="$popts,latency=${latency//,/+},latency_mode=$latency_mode"
	# DAXLAB_PLUGIN_OPTS adds plugin options (e.g. verify=on, a self-check).
	[ -n "${DAXLAB_PLUGIN_OPTS:-}" ] && popts="$popts,$DAXLAB_PLUGIN_OPTS"
	qemu+=(-plugin "$CACHE/build/emulator/libdaxlab-pmem.so,$popts" -d plugin -D "$run/plugin.log")
fi
printf '%q ' "${qemu[@]}" >"$run/qemu-cmdline.txt"
echo >>"$run/qemu-cmdline.txt"

# The same machine as a libvirt domain (--libvirt, --emit-xml).
xml_esc() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e "s/'/\&apos;/g" <<<"$1"; }
domain_xml() {
	local name=daxlab-$run_id maxmem cpu_xml qargs a
	maxmem=$(($(to_mib "$mem") + $(to_mib "$pmem_size") + PMEM1_MIB + 1024))
	if [ "$cpu_model" = max ]; then
		cpu_xml="<cpu mode='maximum' check='none'>"
	else
		cpu_xml="<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>$(xml_esc "$cpu_model")</model>"
	fi
	qargs=(-machine "nvdimm-persistence=$nvdimm_persistence")
	[ "$plugin" = off ] || qargs+=(-plugin "$CACHE/build/emulator/libdaxlab-pmem.so,$popts" -d plugin -D "$run/plugin.log")
	cat <<XML
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$name</name>
  <description>daxlab run $run_id (run.sh --libvirt): TCG, the daxlab-pmem plugin on the NV-DIMM</description>
  <maxMemory slots='2' unit='MiB'>$maxmem</maxMemory>
  <memory unit='MiB'>$(($(to_mib "$mem") + $(to_mib "$pmem_size") + (pmem1 == 1 ? PMEM1_MIB : 0)))</memory>
  <vcpu>$cpus</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$(xml_esc "$kdir/vmlinuz")</kernel>
    <initrd>$(xml_esc "$initrd")</initrd>
    <cmdline>$(xml_esc "$cmdline")</cmdline>
  </os>
  <features><acpi/></features>
  $cpu_xml
    <numa><cell id='0' cpus='0-$((cpus - 1))' memory='$(to_mib "$mem")' unit='MiB'/></numa>
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <serial type='file'><source path='$(xml_esc "$run/console.log")'/><target port='0'/></serial>
    <serial type='file'><source path='$(xml_esc "$run/tap.txt")'/><target port='1'/></serial>
    <serial type='file'><source path='$(xml_esc "$run/guest-files.raw")'/><target port='2'/></serial>
    <memory model='nvdimm' access='shared'>
      <source><path>$(xml_esc "$pmem_file")</path></source>
      <target><size unit='MiB'>$(to_mib "$pmem_size")</size><node>0</node></target>
    </memory>
XML
	if [ $pmem1 = 1 ]; then
		cat <<XML
    <memory model='nvdimm' access='shared'>
      <source><path>$(xml_esc "$run/pmem1.img")</path></source>
      <target><size unit='MiB'>$PMEM1_MIB</size><node>0</node></target>
    </memory>
XML
	fi
	echo "    <memballoon model='none'/>"
	echo "  </devices>"
	echo "  <qemu:commandline>"
	for a in "${qargs[@]}"; do echo "    <qemu:arg value='$(xml_esc "$a")'/>"; done
	echo "  </qemu:commandline>"
	echo "</domain>"
}
if [ -n "$libvirt" ] || [ $emit_xml = 1 ]; then
	domain_xml >"$run/domain.xml"
	if [ $emit_xml = 1 ]; then
		cat "$run/domain.xml" >&3
		echo "$PROG: the domain's files are in ${run#"$TOP"/}; start it with virsh -c ${libvirt:-qemu:///system} create ${run#"$TOP"/}/domain.xml" >&2
		exit 0
	fi
fi

step "booting: TCG, $cpus vCPUs, -cpu $cpu_model, $pmem_size NV-DIMM at $pmem_base ($persist, plugin: $plugin$([ -n "$latency" ] && echo ", latency: $latency $latency_mode")), fs: $fs_list, dax: $([ $dax = 1 ] && echo on || echo off)"
echo "    run directory: ${run#"$TOP"/}"
# The images are sparse and grow as the guest writes; if the disk fills,
# QEMU dies of SIGBUS on the mapped image. Say so before, not only after.
copies=1
[ "$plugin" != persist ] || copies=2 # the live image and the durable one
need_mib=$(($(to_mib "$pmem_size") * copies + pmem1 * PMEM1_MIB + 64))
free_now=$(free_mib "$run")
[ "${free_now:-0}" -ge "$need_mib" ] ||
	echo "$PROG: warning: ${free_now:-0} MiB free in $run; the NV-DIMM images can grow to $need_mib MiB, and a full disk stops the guest" >&2
touch "$run/tap.txt"
# CPU seconds of this shell's children so far: the delta after the boot is
# QEMU's CPU time (steadier than wall time on a busy host).
# (times runs here, not in a $(...) subshell, which has no children of its own.)
children_cpu() { awk 'NR == 2 {gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4}' "$1"; }
times >"$run/.cpu-before"
cpu_before=$(children_cpu "$run/.cpu-before")
qemu_start=$(date +%s.%N)
# DAXLAB_QEMU_WRAPPER prefixes QEMU (e.g. "perf record -o FILE --").
read -r -a wrapper <<<"${DAXLAB_QEMU_WRAPPER:-}"
# While the guest runs: each scenario result as it arrives, one line each.
shown=0
show_results() {
	local n
	n=$(grep -c '^# daxlab-result:' "$run/tap.txt" || true)
	[ "$n" -gt "$shown" ] || return 0
	grep '^# daxlab-result:' "$run/tap.txt" | tail -n +$((shown + 1)) | head -n $((n - shown)) |
		sed -E 's/^# daxlab-result: scenario=([^ ]*) fs=([^ ]*) status=([^ ]*) dax=[^ ]* duration=([^ ]*) exit=[^ ]* reason=(.*)/    \2 \1: \3 (\4 s) \5/; s/ -$//'
	shown=$n
}
interrupted=0
if [ -n "$libvirt" ]; then
	# A transient domain: it goes away when the guest powers off.
	dom=daxlab-$run_id
	: >"$run/console.log"
	: >"$run/guest-files.raw"
	if ! virsh -c "$libvirt" create "$run/domain.xml" >"$run/qemu.log" 2>&1; then
		die "--libvirt: $libvirt did not start the domain: $(grep -v '^$' "$run/qemu.log" | tail -n1)"
	fi
	echo "    libvirt: domain $dom on $libvirt"
	trap 'interrupted=1; virsh -c "$libvirt" destroy "$dom" >/dev/null 2>&1 || true' INT TERM
	qrc=0
	deadline=$(($(date +%s) + timeout))
	while virsh -c "$libvirt" domstate "$dom" >/dev/null 2>&1; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			virsh -c "$libvirt" destroy "$dom" >>"$run/qemu.log" 2>&1 || true
			qrc=124
			break
		fi
		sleep 1
		show_results
	done
	# What QEMU itself said (libvirt keeps its log).
	[ ! -r "/var/log/libvirt/qemu/$dom.log" ] || cat "/var/log/libvirt/qemu/$dom.log" >>"$run/qemu.log"
elif [ $shell = 1 ]; then
	# In the foreground, on this terminal (a background job's stdin is /dev/null).
	echo "    the shell comes up on this terminal once the filesystem is mounted; exit it to power off"
	qrc=0
	timeout --foreground --kill-after=10 "$timeout" "${qemu[@]}" 2>"$run/qemu.log" || qrc=$?
else
	timeout --kill-after=10 "$timeout" ${wrapper[@]+"${wrapper[@]}"} "${qemu[@]}" >"$run/qemu.log" 2>&1 &
	qpid=$!
	trap 'interrupted=1; kill $qpid 2>/dev/null || true' INT TERM
	while kill -0 $qpid 2>/dev/null; do
		sleep 1
		show_results
	done
	qrc=0
	wait $qpid || qrc=$?
fi
qemu_seconds=$(awk -v a="$qemu_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
trap - INT TERM
end_wall=$(date +%s)
# The run's own NV-DIMM images back to sparse files (a user's --image is
# left as it is): libvirt preallocates an NV-DIMM's backing file, and the
# zeros a guest writes (mkfs) take blocks too. A run directory is kept, so
# it should cost the data, not 512 MiB per image.
for f in "$run/pmem0.img" "$run/pmem1.img" "$run/pmem-durable.img"; do
	if [ -f "$f" ] && [ ! -L "$f" ]; then fallocate --dig-holes "$f" 2>/dev/null || true; fi
done
# A full disk: QEMU dies of SIGBUS writing the mapped image (exit 135), and
# nothing more can be written here. Stop with what is there.
free_now=$(free_mib "$run")
if [ "${free_now:-0}" -lt 8 ]; then
	rm -f "$run/.cpu-before"
	die "the disk of the run directory is full (${free_now:-0} MiB free): the guest stopped (qemu exit $qrc$([ "$qrc" = 135 ] && echo ", SIGBUS on the NV-DIMM image")); its logs so far are in $run"
fi
times >"$run/.cpu-after"
qemu_cpu_seconds=$(awk -v a="$cpu_before" -v b="$(children_cpu "$run/.cpu-after")" 'BEGIN {printf "%.2f", b - a}')
rm -f "$run/.cpu-before" "$run/.cpu-after"

# ---------------------------------------------------------------- collect
# Split the guest's file channel into files of the run directory.
awk -v dir="$run" '
	/^@@daxlab-file / {
		# only plain relative names: letters, digits, . _ - and / (no "..")
		name = ($2 ~ /\.\./ || $2 !~ /^[A-Za-z0-9._+-][A-Za-z0-9._\/+-]*$/) ? "" : dir "/" $2
		if ($2 ~ /\//) { d = name; sub(/\/[^\/]*$/, "", d); system("mkdir -p \"" d "\"") }
		n = 0; next
	}
	/^@@daxlab-end$/ {
		if (name == "") next # a name with ".." is not written
		# the guest adds a newline after each file: drop it if blank
		for (i = 1; i <= n; i++) if (i < n || buf[i] != "") print buf[i] > name
		if (n == 0 || (n == 1 && buf[1] == "")) printf "" > name
		close(name); name = ""; next
	}
	name != "" { buf[++n] = $0 }
' "$run/guest-files.raw"

guest_status=completed
guest_reason=""
if [ $interrupted = 1 ]; then
	guest_status=interrupted guest_reason="interrupted by the user"
elif [ $qrc = 124 ] || [ $qrc = 137 ]; then
	guest_status=timeout guest_reason="guest killed after ${timeout}s"
fi
panic=$(grep -a -m1 -E 'Kernel panic|BUG:|Oops:|general protection fault' "$run/console.log" 2>/dev/null |
	sed -E 's/^\[[^]]*\] //' | tr -d '\r' || true)
if ! grep -q '^# daxlab-done' "$run/tap.txt"; then
	if [ -n "$panic" ]; then
		guest_status=panic guest_reason="guest kernel: $panic"
	elif [ $guest_status = completed ]; then
		guest_status=crashed guest_reason="guest stopped early (qemu exit $qrc): $(tail -n1 "$run/qemu.log" 2>/dev/null)"
		# SIGBUS (exit 135) is what a write to a mapped image on a full disk
		# gets (free_now: measured when the guest ended, holes dug)
		if [ $qrc = 135 ] || [ "${free_now:-0}" -lt 64 ]; then
			guest_reason="guest stopped early (qemu exit $qrc$([ $qrc = 135 ] && echo ", SIGBUS")): QEMU could not write the NV-DIMM image, is the disk full? (${free_now:-0} MiB free after the run)"
		fi
	fi
fi

# The plugin must have written its report, and its log in full.
if [ "$plugin" != off ] && [ "$guest_status" = completed ]; then
	if [ ! -s "$run/pmem-stats.json" ]; then
		guest_status="plugin-error"
		guest_reason="the plugin wrote no pmem-stats.json: $(tail -n1 "$run/qemu.log" 2>/dev/null)"
	elif grep -q '"log_failed": true' "$run/pmem-stats.json"; then
		guest_status="plugin-error"
		guest_reason="writing the persistence log failed (disk full?), or the model ran out of memory: crash states are incomplete"
	elif grep -q '"watch": {[^}]*"started": false' "$run/pmem-stats.json"; then
		guest_status="plugin-error"
		guest_reason="the plugin never started watching: no 'daxlab-mark watch' from the guest (watch=$watch_from)"
	fi
fi

# The window the plugin watched must be the one the guest reports.
iomem=$(head -n1 "$run/iomem-pmem.txt" 2>/dev/null | tr -d ' ')
if [ -n "$iomem" ]; then
	want=$(printf '%x-%x:PersistentMemory' "$pmem_base" $((pmem_base + pmem_bytes - 1)))
	if [ "${iomem%%(*}" != "$want" ] && [ "$iomem" != "$want" ]; then
		guest_status="window-mismatch"
		guest_reason="NV-DIMM window mismatch: run.sh computed $want, the guest reports $iomem"
	fi
fi

# Record/replay: the recording keeps its final NV-DIMM digest; a replay
# must end with the same TAP stream and the same NV-DIMM image.
rr_json=""
replay_ok=1
if [ $record = 1 ]; then
	sha256sum <"$pmem_file" | cut -d' ' -f1 >"$run/replay/pmem-final.sha256"
	rr_json="\"record\": {\"dir\": \"replay\", \"events_bytes\": $(stat -c %s "$run/replay/events.bin" 2>/dev/null || echo 0), \"pmem_final_sha256\": \"$(cat "$run/replay/pmem-final.sha256")\"},"
elif [ -n "$replay_dir" ]; then
	want_sha=$(cat "$replay_dir/replay/pmem-final.sha256" 2>/dev/null || true)
	got_sha=$(sha256sum <"$pmem_file" | cut -d' ' -f1)
	tap_same=false image_same=false
	cmp -s "$replay_dir/tap.txt" "$run/tap.txt" && tap_same=true
	[ "$want_sha" = "$got_sha" ] && image_same=true
	[ $tap_same = true ] && [ $image_same = true ] || replay_ok=0
	rr_json="\"replay\": {\"of\": \"$replay_dir\", \"tap_identical\": $tap_same, \"pmem_image_identical\": $image_same, \"pmem_final_sha256\": \"$got_sha\"},"
	if [ $replay_ok = 0 ] && [ "$guest_status" = completed ]; then
		guest_status=replay-diverged
		guest_reason="replay diverged: TAP identical: $tap_same, NV-DIMM image identical: $image_same"
		diff "$replay_dir/tap.txt" "$run/tap.txt" >"$run/replay-tap.diff" 2>&1 || true
	fi
fi

json_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=$(printf '%s' "$s" | tr -d '\000-\037')
	printf '"%s"' "$s"
}
# Lines of one scenario's own TAP (its subtest, de-indented).
subtest() { # NAME FS
	awk -v hdr="# Subtest: $1 $2" '
		$0 == hdr { on = 1; next }
		on && /^    / { print substr($0, 5); next }
		on { exit }
	' "$run/tap.txt"
}

# The NV-DIMM offset where the block device's data starts (fsdax info block
# before it), from the pfn device the guest reported.
data_res=$(sed -n 's/.* resource=\(0x[0-9a-f]*\).*/\1/p' "$run/pmem-data.txt" 2>/dev/null | head -n1)
data_off=$((${data_res:-$pmem_base} - pmem_base))

# Filesystem-level crash states: materialise each (checkpoint, sample) as an
# NV-DIMM image, boot recovery guests with up to 8 of them attached, and let
# the agent mount each (journal/log replay), run "SCENARIO --recover" and
# fsck. Writes crash/NAME-FS.txt like daxlab-crash check does.
RECOVER_BATCH=8
recover_check() { # NAME FS BIN EXPECTFILE OUT
	local name=$1 fs=$2 bin=$3 expect=$4 out=$5 states=() cp k i t0 batch=0 fails=0 checked=0
	local sdir=$run/crash/states
	mkdir -p "$sdir"
	t0=$(date +%s.%N)
	while read -r cp _; do
		for k in $(seq 0 "$crash_samples"); do states+=("$cp:$k"); done
	done <"$expect"
	: >"$out"
	for ((i = 0; i < ${#states[@]}; i += RECOVER_BATCH)); do
		local group=("${states[@]:i:RECOVER_BATCH}") args=() s j=0 img
		batch=$((batch + 1))
		for s in "${group[@]}"; do
			img=$sdir/cp${s%:*}-s${s#*:}.img
			rm -f "$img"
			"$CACHE/build/emulator/daxlab-crash" image "$run/pmem-log.bin" --checkpoint "${s%:*}" \
				--sample "${s#*:}" --seed "$seed" ${crash_base[@]+"${crash_base[@]}"} -o "$img" >>"$out" 2>&1 ||
				echo "FAIL checkpoint=${s%:*} sample=${s#*:}: cannot make its image" >>"$out"
			args+=(-object "memory-backend-file,id=r$j,share=on,mem-path=$img,size=$pmem_size"
				-device "nvdimm,id=rn$j,memdev=r$j")
			j=$((j + 1))
		done
		# shellcheck disable=SC2054 # commas belong to QEMU's option syntax
				timeout --kill-after=10 300 qemu-system-x86_64 "${qemu_common[@]}" -machine pc,nvdimm=on \
			-m "$mem,slots=$((j + 1)),maxmem=$(($(to_mib "$mem") + j * $(to_mib "$pmem_size") + 1024))M" "${args[@]}" \
			-append "console=ttyS0 panic=-1 loglevel=5 daxlab.mode=recover daxlab.recover=$bin daxlab.fs=$fs daxlab.disks=$j" \
			-chardev "file,id=con,path=$run/crash/recover-$name-$fs-$batch.console" -serial chardev:con \
			-chardev "file,id=tap,path=$run/crash/recover-$name-$fs-$batch.tap" -serial chardev:tap \
			-serial null >/dev/null 2>&1 || true
		j=0
		for s in "${group[@]}"; do
			local base res line ver mounted fsck allowed
						# The agent names each image by its data start (fsdax device).
			base=$((pmem_base + j * pmem_bytes + data_off))
			res=$(printf '0x%x' "$base")
			line=$(grep -m1 "^# daxlab-recover: resource=$res " "$run/crash/recover-$name-$fs-$batch.tap" 2>/dev/null || true)
			allowed=$(awk -v c="${s%:*}" '$1 == c {print $2}' "$expect")
			checked=$((checked + 1))
			if [ -z "$line" ]; then
				echo "FAIL checkpoint=${s%:*} sample=${s#*:}: the recovery guest did not report this image (see crash/recover-$name-$fs-$batch.console)" >>"$out"
				fails=$((fails + 1))
			else
				mounted=$(sed -E 's/.* mount=([^ ]*).*/\1/' <<<"$line")
				ver=$(sed -E 's/.* version=([^ ]*).*/\1/' <<<"$line")
				fsck=$(sed -E 's/.* fsck=([^ ]*).*/\1/' <<<"$line")
				if [ "$mounted" != ok ] || [ "$fsck" != 0 ] || [[ ",$allowed," != *",$ver,"* ]]; then
					echo "FAIL checkpoint=${s%:*} sample=${s#*:}: mount $mounted, fsck exit $fsck, data is version $ver, expected version $allowed (image kept: crash/states/cp${s%:*}-s${s#*:}.img)" >>"$out"
					fails=$((fails + 1))
				else
					rm -f "$sdir/cp${s%:*}-s${s#*:}.img"
				fi
			fi
			j=$((j + 1))
		done
	done
	awk -v n="$checked" -v f="$fails" -v c="$(wc -l <"$expect")" -v t0="$t0" -v t1="$(date +%s.%N)" \
		'BEGIN {s = t1 - t0; printf "checkpoints=%d states_generated=%d states_checked=%d expectations=%d failures=%d seconds=%.3f states_per_second=%.2f\n", c, n, n, c, f, s, n / s}' >>"$out"
	[ "$fails" = 0 ]
}

crash_check_one() { # NAME FS: sets status, reason, crash_json
	local spec=$run/crash/$1-$2.spec out=$run/crash/$1-$2.txt line dev crc=0
	mkdir -p "$run/crash"
	# Filesystem scenarios declare what recovery must find instead.
	if grep -q '^# daxlab-recover-expect:' "$run/expect/$1-$2.out"* 2>/dev/null; then
		grep -h '^# daxlab-recover-expect:' "$run/expect/$1-$2.out"* |
			sed -E 's/.*checkpoint=([0-9]+) versions=([0-9,]+).*/\1 \2/' >"$spec"
		local b
		b=$(basename "$(scenario_file "$1")" .c)
		recover_check "$1" "$2" "$b" "$spec" "$out" || crc=1
		crash_report "$1" "$2" "$out" "$crc"
		return
	fi
	grep -h '^# daxlab-crash-expect:' "$run/expect/$1-$2.out"* 2>/dev/null |
		sed 's/^# daxlab-crash-expect: //' | while read -r line; do
		dev=$(sed -E 's/.*devoffset=([0-9]+).*/\1/' <<<"$line")
		echo "${line/devoffset=$dev/offset=$((data_off + dev))}"
	done >"$spec"
	if [ ! -s "$spec" ]; then
		status=fail reason="--crash-check: the scenario declared no crash expectations"
		return
	fi
			"$CACHE/build/emulator/daxlab-crash" check "$run/pmem-log.bin" "$spec" \
		--samples "$crash_samples" --seed "$seed" ${crash_base[@]+"${crash_base[@]}"} >"$out" 2>&1 || crc=$?
	crash_report "$1" "$2" "$out" "$crc"
}

crash_report() { # NAME FS OUT RC: the crash-check's summary line into status, reason, crash_json
	local out=$3 crc=$4 last
	last=$(tail -n1 "$out")
	crash_get() { sed -E "s/.*\b$1=([0-9.]+).*/\1/" <<<"$last"; }
	if [[ "$last" != checkpoints=* ]]; then
		status=fail reason="crash-check did not run: $last"
		return
	fi
	crash_json=", \"crash_check\": {\"checkpoints\": $(crash_get checkpoints), \"states_generated\": $(crash_get states_generated), \"states_checked\": $(crash_get states_checked), \"failures\": $(crash_get failures), \"states_per_second\": $(crash_get states_per_second), \"samples\": $crash_samples, \"seed\": $seed, \"report\": $(json_str "crash/$1-$2.txt")}"
	echo "    crash-check $2 $1: $(crash_get states_checked) states checked, $(crash_get failures) failing"
	if [ "$crc" != 0 ]; then
		status=fail
		reason="crash-check: $(crash_get failures) failing (see crash/$1-$2.txt): $(grep -m1 '^FAIL' "$out" | cut -c6-)"
	fi
}

# A hit's time line: the scenario's witness, the fs_dax events (guest ftrace,
# trace_clock=mono) and the plugin's pmem events (host clock, mapped to the
# guest's through the hit marker, which carries the guest time) within
# TIMELINE_SPAN_MS of the hit, merged in guest-time order.
TIMELINE_SPAN_MS=5
hit_timeline() { # WITNESS OUT FS_DAX_TRACE
	local hit_ns
	hit_ns=$(sed -n 's/^guest_monotonic_ns: //p' "$1")
	[ -n "$hit_ns" ] || return 0
	{
		echo "# time line of $(sed -n 's/^scenario: //p' "$1") hit $(sed -n 's/^hit: //p' "$1"): ms from the hit (guest CLOCK_MONOTONIC)"
		echo "# sources: fs_dax = guest ftrace; pmem = daxlab-pmem trace (run.sh --trace; host clock mapped through the hit marker)"
		sed 's/^/# witness: /' "$1"
		{
			awk -v hit="$hit_ns" -v span="$TIMELINE_SPAN_MS" '
				match($0, / [0-9]+\.[0-9]+: /) {
					t = substr($0, RSTART + 1, RLENGTH - 3) * 1000 - hit / 1e6
					if (t >= -span && t <= span) printf "%+12.3f fs_dax %s\n", t, $0
				}' "$3" 2>/dev/null
			if [ -f "$run/pmem-trace.bin" ]; then
				"$CACHE/build/emulator/daxlab-trace" --csv "$run/pmem-trace.bin" 2>/dev/null |
					awk -F, -v hit="$hit_ns" -v span="$TIMELINE_SPAN_MS" '
						NR == 1 { next }
						{ n++; host[n] = $3; line[n] = "cpu" $1 " " $4 " off=" $5 " size=" $6 }
						$4 == "hit" && $5 == hit { shift = $3 - hit }
						END {
							if (shift == "") exit
							for (i = 1; i <= n; i++) {
								t = (host[i] - shift - hit) / 1e6
								if (t >= -span && t <= span) printf "%+12.3f pmem   %s\n", t, line[i]
							}
						}'
			fi
		} | sort -g
	} >"$2"
}

crash_base=()
[ -f "$run/pmem-base.img" ] && crash_base=(--base "$run/pmem-base.img")
passed=0 failed=0 skipped=0 timedout=0
entries=""
summary_lines=""
guest_fact() { # NAME: a value from the agent's "# daxlab-guest:" line
	sed -n "s/^# daxlab-guest: .*\b$1=\([^ ]*\).*/\1/p" "$run/tap.txt" | head -n1
}
kernel_release=$(guest_fact kernel)
for fs in $fs_list; do
	for i in "${!scen_names[@]}"; do
		name=${scen_names[$i]}
		bin=${scen_bins[$i]}
		line=$(grep -m1 "^# daxlab-result: scenario=$name fs=$fs " "$run/tap.txt" || true)
		if [ -n "$line" ]; then
			status=$(sed -E 's/.* status=([^ ]*).*/\1/' <<<"$line")
			sdax=$(sed -E 's/.* dax=([^ ]*).*/\1/' <<<"$line")
			dur=$(sed -E 's/.* duration=([^ ]*).*/\1/' <<<"$line")
			reason=$(sed -E 's/.* reason=(.*)/\1/' <<<"$line")
			[ "$reason" = - ] && reason=""
		else
			sdax=0 dur=0
			case "$guest_status" in
			timeout) status=timeout ;;
			*) status=fail ;;
			esac
			reason=${guest_reason:-no result from the guest}
			if [ -n "$panic" ] && grep -q "^# Subtest: $name $fs\$" "$run/tap.txt"; then
				reason="guest kernel: $panic"
			fi
		fi
		# fstests-style expectation: the scenario's TAP points must equal
		# scenarios/NNN-NAME.out; keep the .bad output when they do not.
		subtest "$name" "$fs" >"$run/expect/$name-$fs.out"
		# --exec: its output as it came, and no golden file to compare with.
		if [ "$bin" = 000-payload ]; then
			cp "$run/expect/$name-$fs.out" "$run/payload-$fs.txt"
		elif [ "$status" = pass ] || [ "$status" = fail ]; then
			# A point skipped on this fs (" # SKIP reason") matches its ok line.
			if ! grep -E '^(not )?ok |^1\.\.' "$run/expect/$name-$fs.out" | sed 's/ # SKIP .*//' |
				diff -u "$TOP/scenarios/$bin.out" - >"$run/expect/$name-$fs.diff" 2>&1; then
				mv "$run/expect/$name-$fs.out" "$run/expect/$name-$fs.out.bad"
				if [ "$status" = pass ]; then
					status=fail
					reason="output differs from scenarios/$bin.out (see expect/$name-$fs.diff)"
				fi
			else
				rm -f "$run/expect/$name-$fs.diff"
			fi
		fi
		# Plugin windows a scenario declared ("daxlab-expect-window: id=N k=v ...")
		# must match the plugin's counts exactly.
		if [ "$plugin" != off ] && [ "$status" = pass ]; then
			while read -r _ _ idkv kvs; do
				wid=${idkv#id=}
				got=$(grep -m1 "^window $wid " "$run/pmem-windows.txt" 2>/dev/null || true)
				if [ -z "$got" ]; then
					status=fail reason="the plugin recorded no window $wid"
					break
				fi
				for kv in $kvs; do
					if [ "${got#* "${kv%%=*}"=}" = "$got" ] || [ "$(sed -E "s/.* ${kv%%=*}=([0-9]+).*/\1/" <<<"$got")" != "${kv#*=}" ]; then
						status=fail
						reason="plugin window $wid: ${kv%%=*} is $(sed -E "s/.* ${kv%%=*}=([0-9]+).*/\1/" <<<"$got"), the scenario issued ${kv#*=}"
						break 2
					fi
				done
			done < <(grep '^# daxlab-expect-window:' "$run/expect/$name-$fs.out"* 2>/dev/null | sed 's/^[^#]*//')
		fi
		# Racing scenarios: their campaign line, and a time line for each hit.
		camp_json=""
		camp=$(grep -h -m1 '# daxlab-campaign:' "$run/expect/$name-$fs.out"* 2>/dev/null | sed 's/^[^#]*# daxlab-campaign: //' || true)
		if [ -n "$camp" ]; then
			cget() { sed -n -E "s/(^|.* )$1=([^ ]*).*/\2/p" <<<"$camp" | head -n1; }
			c_it=$(cget iterations) c_s=$(cget seconds) c_hits=$(cget hits) c_known=$(cget known)
			c_rate=$(awk -v i="$c_it" -v s="$c_s" 'BEGIN {printf "%.2f", (s > 0 ? i / s : 0)}')
			camp_json=", \"campaign\": {\"iterations\": ${c_it:-0}, \"seconds\": ${c_s:-0}, \"iterations_per_second\": $c_rate, \"hits\": ${c_hits:-0}, \"known_kernel_windows\": ${c_known:-0}, \"seed\": $seed"
			if [ "${c_hits:-0}" -gt 0 ]; then
				camp_json="$camp_json, \"first_hit_round\": $(cget first_hit_round), \"first_hit_seconds\": $(cget first_hit_seconds), \"witnesses\": $(json_str "hits/$name-$fs")"
				for w in "$run/hits/$name-$fs"/hit-*.txt; do
					[ -f "$w" ] && hit_timeline "$w" "${w%/hit-*}/timeline-${w##*/hit-}" "$run/fs_dax/$name-$fs.txt"
				done
			fi
			wpoints=$(grep "^# daxlab-widen: scenario=$name fs=$fs " "$run/tap.txt" |
				sed -E 's/.* point=([^ ]*) delays=([0-9]*) us=([0-9]*).*/{"name": "\1", "delays": \2, "us": \3}/' | paste -sd, - || true)
			[ -n "$widen" ] && camp_json="$camp_json, \"widen\": {\"delay_us\": $widen, \"points\": [$wpoints]}"
			camp_json="$camp_json}"
			echo "    campaign $fs $name: ${c_it:-0} rounds in ${c_s:-0} s ($c_rate/s), ${c_hits:-0} hits$([ "${c_known:-0}" -gt 0 ] && echo " (+${c_known} known kernel windows, see --strict)")$([ "${c_hits:-0}" -gt 0 ] && echo ", first after $(cget first_hit_seconds) s (hits/$name-$fs/)")"
			if [ "${c_hits:-0}" -gt 0 ] && [ "$status" = pass ]; then
				status=fail reason="${c_hits} race hits (see hits/$name-$fs/)"
			fi
		fi
		# --crash-check: every crash state at the scenario's checkpoints must
		# hold what it declared ("daxlab-crash-expect: ...", device offsets).
		crash_json=""
		if [ "$name" = "$crash_check_name" ] && [ "$status" = pass ]; then
			crash_check_one "$name" "$fs"
		fi
		case "$status" in
		pass) passed=$((passed + 1)) ;;
		skip) skipped=$((skipped + 1)) ;;
		timeout) timedout=$((timedout + 1)) ;;
		*) failed=$((failed + 1)) ;;
		esac
		[ "$sdax" = 1 ] && sdax=true || sdax=false
		entries="$entries${entries:+,
}    {\"name\": $(json_str "$name"), \"fs\": $(json_str "$fs"), \"status\": $(json_str "$status"), \"dax\": $sdax, \"duration\": ${dur:-0}, \"reason\": $(json_str "$reason"), \"fs_dax_trace\": $(json_str "fs_dax/$name-$fs.txt"), \"dmesg\": $(json_str "dmesg/$name-$fs.txt")$camp_json$crash_json}"
		summary_lines="$summary_lines$(printf '  %-8s %-6s %-24s %s' "$status" "$fs" "$name" "$reason")
"
	done
done

# ---------------------------------------------------------- latency model
# pmem-perf's own figures (its "# pmem-perf:" TAP diagnostics, each run
# under the filesystem whose result line follows them) -> pmem-perf.json.
perf_json() { # TAP_FILE
	awk '
		/^ *# pmem-perf: / {
			line = ""
			for (i = 3; i <= NF; i++) {
				split($i, kv, "=")
				v = substr($i, length(kv[1]) + 2)
				line = line (line == "" ? "" : ", ") "\"" kv[1] "\": " (kv[1] == "phase" ? "\"" v "\"" : v)
			}
			pending[++np] = line
			next
		}
		/^# daxlab-result: scenario=pmem-perf / {
			split($4, f, "=")
			for (i = 1; i <= np; i++)
				out[++no] = "    {\"fs\": \"" f[2] "\", " pending[i] "}"
			np = 0
		}
		END {
			print "{\n  \"phases\": ["
			for (i = 1; i <= no; i++)
				print out[i] (i < no ? "," : "")
			print "  ]\n}"
		}' "$1"
}
# The modelled figures of pmem-perf's first run, preset vs dram: latency per
# access and bandwidth per phase, as data files and pmem-perf.svg (gnuplot).
plot_perf() {
	awk -v lat="$run/pmem-perf-latency.dat" -v bw="$run/pmem-perf-bandwidth.dat" '
		FNR == NR {
			if ($1 == "window" && !($2 in ns)) {
				for (i = 3; i <= NF; i++) {
					split($i, kv, "=")
					if (kv[1] == "modelled_ns") ns[$2] = kv[2]
					if (kv[1] == "dram_ns") dram[$2] = kv[2]
				}
			}
			next
		}
		/^ *# pmem-perf: / {
			delete f
			for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
			if (seen[f["phase"]]++ || !(f["window"] in ns)) next
			if (f["phase"] == "chase" || f["phase"] == "persist")
				printf "%s %.3f %.3f\n", f["phase"], ns[f["window"]] / f["ops"], dram[f["window"]] / f["ops"] >lat
			else
				printf "%s %.4f %.4f\n", f["phase"], f["bytes"] / ns[f["window"]], f["bytes"] / dram[f["window"]] >bw
		}' "$run/pmem-model.txt" "$run/tap.txt"
	[ -s "$run/pmem-perf-latency.dat" ] && [ -s "$run/pmem-perf-bandwidth.dat" ] || return 0
	if ! command -v gnuplot >/dev/null 2>&1; then
		echo "    (no gnuplot: pmem-perf.svg not drawn; the data is in pmem-perf-*.dat)"
		return 0
	fi
	(cd "$run" && gnuplot 2>"$run/gnuplot.log" <<GNUPLOT) || echo "    gnuplot failed: see gnuplot.log"
set terminal svg size 1000,460 dynamic font "sans,11" background rgb "white"
set output "pmem-perf.svg"
set multiplot title "daxlab latency model: $lat_name vs dram, modelled (pmem-perf windows)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key top left
set xtics rotate by -40 scale 0 nomirror
set grid ytics
set yrange [0:*]
set bmargin 7
set rmargin 5
set size 0.3, 0.92
set origin 0, 0
set title "latency per access (ns)"
plot "pmem-perf-latency.dat" using 2:xtic(1) title "$lat_name" lc rgb "#c0504d", "" using 3 title "dram" lc rgb "#4f81bd"
set size 0.7, 0.92
set origin 0.3, 0
set title "bandwidth (GB/s)"
plot "pmem-perf-bandwidth.dat" using 2:xtic(1) title "$lat_name" lc rgb "#c0504d", "" using 3 title "dram" lc rgb "#4f81bd"
unset multiplot
GNUPLOT
}
latency_json=""
if grep -q '^ *# pmem-perf: ' "$run/tap.txt"; then
	perf_json "$run/tap.txt" >"$run/pmem-perf.json"
fi
if [ -n "$latency" ]; then
	lat_name=${latency%%:*}
	[ -f "$run/pmem-model.txt" ] && [ -f "$run/pmem-perf.json" ] && plot_perf
	stalled_ns=$(sed -n 's/.*"latency": {.*"stalled_ns": \([0-9]*\).*/\1/p' "$run/pmem-stats.json" 2>/dev/null | head -n1)
	stall_s=$(awk -v n="${stalled_ns:-0}" 'BEGIN {printf "%.2f", n / 1e9}')
	stall_share=$(awk -v n="${stalled_ns:-0}" -v w="$qemu_seconds" -v c="$cpus" 'BEGIN {printf "%.3f", (w > 0 ? n / 1e9 / (w * c) : 0)}')
	latency_json="\"latency\": {\"spec\": $(json_str "$latency"), \"mode\": $(json_str "$latency_mode"), \"model\": $(json_str "$([ -f "$run/pmem-model.json" ] && echo pmem-model.json)"), \"perf\": $(json_str "$([ -f "$run/pmem-perf.json" ] && echo pmem-perf.json)"), \"plot\": $(json_str "$([ -f "$run/pmem-perf.svg" ] && echo pmem-perf.svg)"), \"stalled_vcpu_seconds\": $stall_s, \"stalled_share\": $stall_share},"
fi

cat >"$run/summary.json" <<JSON
{
  "run_id": $(json_str "$run_id"),
  "started": $(json_str "$(date -u -d "@$start_wall" +%Y-%m-%dT%H:%M:%SZ)"),
  "wall_seconds": $((end_wall - start_wall)),
  "qemu_seconds": $qemu_seconds,
  "qemu_cpu_seconds": $qemu_cpu_seconds,
  "kernel": $(json_str "$kernel_desc"),
  "kernel_variant": $(json_str "${kvariant:-}"),
  "kernel_release": $(json_str "${kernel_release:-unknown}"),
  "fs": [$(for f in $fs_list; do printf '%s' "$(json_str "$f"), "; done | sed 's/, $//')],
  "dax_requested": $([ $dax = 1 ] && echo true || echo false),
  "qemu_version": $(json_str "$qemu_version"),
  "cpu_model": $(json_str "$cpu_model"),
  "cpu_flush_instructions": $(json_str "$(guest_fact flush)"),
  "persist": $(json_str "$persist"),
  "nvdimm_persistence": $(json_str "$nvdimm_persistence"),
  "guest_persistence_domain": $(json_str "$(guest_fact persistence_domain)"),
  "guest_dax_write_cache": $(json_str "$(guest_fact write_cache)"),
  "plugin": $(json_str "$plugin"),
  "plugin_watch_from": $(json_str "$([ "$plugin" = off ] && echo "" || echo "$watch_from")"),
  "backend": $(json_str "${libvirt:-direct}"),
  "pmem_window": {"base": $(json_str "$pmem_base"), "size": $pmem_bytes, "guest_iomem": $(json_str "$iomem")},
  "pmem_stats": $(json_str "$([ -f "$run/pmem-stats.json" ] && echo pmem-stats.json)"),
  "pmem_trace": $(json_str "$([ -f "$run/pmem-trace.bin" ] && echo pmem-trace.bin)"),
  $latency_json
  "cpus": $cpus,
  $rr_json
  "pmem_size": $(json_str "$pmem_size"),
  "image": $(json_str "$image"),
  "image_boots": $(sed -n 's/^# daxlab-image: .*boots=\([0-9]*\).*/\1/p' "$run/tap.txt" | head -n1 | grep . || echo null),
  "guest_status": $(json_str "$guest_status"),
  "guest_reason": $(json_str "$guest_reason"),
  "scenarios": [
$entries
  ],
  "totals": {"passed": $passed, "failed": $failed, "skipped": $skipped, "timeout": $timedout}
}
JSON

"$TOP/scripts/report.sh" "$run" || echo "$PROG: writing report.html failed" >&2

echo
echo "daxlab run $run_id: $passed passed, $failed failed, $skipped skipped, $timedout timeout (guest $guest_status, $((end_wall - start_wall)) s)"
printf '%s' "$summary_lines"
[ -n "$guest_reason" ] && echo "  guest: $guest_reason"
if [ -n "$latency" ]; then
	echo "  latency model: $latency ($latency_mode)$([ -f "$run/pmem-model.json" ] && echo ", modelled windows in pmem-model.json")$([ -f "$run/pmem-perf.svg" ] && echo ", plot pmem-perf.svg")"
	[ "$latency_mode" = stall ] && echo "  stalls: $stall_s vCPU-seconds, $(awk -v s="$stall_share" 'BEGIN {printf "%.1f", s * 100}')% of the vCPUs' wall time ($cpus x $qemu_seconds s)"
fi
[ $record = 1 ] && echo "  recorded: replay it with ./run.sh --replay ${run#"$TOP"/}"
[ -n "$replay_dir" ] && [ $replay_ok = 1 ] && echo "  replay of ${replay_dir##*/}: TAP stream and NV-DIMM image identical (sha256 ${got_sha:0:16}...)"
echo "  results: ${run#"$TOP"/} (report.html)"
[ $((failed + timedout)) -eq 0 ] && [ "$guest_status" = completed ]
