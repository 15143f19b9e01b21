# shellcheck shell=bash
# run.sh's options: parsing, and every check that can be made before
# anything is installed or booted (the help text is host/usage.txt). Sourced by run.sh; sets the option
# variables (lower case) it documents in usage. Scenarios come from their
# own headers through scenarios/index.sh.

usage() { cat "$TOP/host/usage.txt"; }

die() {
	echo "$PROG: $*" >&2
	exit 2
}

# ------------------------------------------------------------- scenarios
# The index (scenarios/index.sh): name, binary, groups, needs, crash, description.
scenario_index() { "$TOP/scenarios/index.sh"; }
# NAME (or NNN-NAME) -> its index line, or nothing.
scenario_line() {
	local name bin rest
	while IFS=$'\t' read -r name bin rest; do
		if [ "$name" = "$1" ] || [ "$bin" = "$1" ]; then
			printf '%s\t%s\t%s\n' "$name" "$bin" "$rest"
			return 0
		fi
	done < <(scenario_index)
	return 1
}
list_scenarios() {
	local name bin groups needs crash desc tag
	while IFS=$'\t' read -r name bin groups needs crash desc; do
		tag=""
		case ",$groups," in *,default,*) tag=" [default]" ;; esac
		printf '%-24s %s%s\n' "$name" "$desc" "$tag"
	done < <(scenario_index)
}

# ------------------------------------------------------------- parsing
scenarios=() fs_arg=ext4 dax=1 kernel="" kvariant="" ksrc="" kseries="" modules="" cpu_model=max cpus=2
mem=1G pmem_size=512M timeout=900 stimeout=300 results=${DAXLAB_RESULTS:-$TOP/results}
persist="" pmem_kind=nvdimm pmem_mode=fsdax fs_given=0 plugin=persist crash_check="" image="" image_format=0 trace="" trace_filter=""
crash_samples=8 crash_point_samples=1 crash_max_states=256 seed=1 iterations="" strict=0 widen="" write_cache="" latency=""
latency_mode="" libvirt="" emit_xml=0 crash_every="" payload="" exec_cmd="" exec_given=0
shell=0 timeout_given=0 record=0 cpus_given="" replay_dir="" LIBVIRT_ENSURE=0

need_arg() { if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (try --help)"; fi; }
# SIZE (digits and M or G, checked first by check_options) in MiB.
to_mib() {
	case "$1" in
	*[!0-9MG]* | [MG]* | *[MG]?*) die "not a size: '$1'" ;;
	*G) echo $((10#${1%G} * 1024)) ;;
	*M) echo $((10#${1%M})) ;;
	*) die "not a size: '$1'" ;;
	esac
}
is_uint() { case "$1" in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac }
is_pos() { is_uint "$1" && [ "${#1}" -le 9 ] && [ "$1" -ge 1 ]; }

# --replay RUN_DIR: the recorded run's own arguments (replay/args, written
# by run.sh), then the few a replay may add.
replay_args() {
	local i j a args=("$@") extra=() rec=()
	for ((i = 0; i < ${#args[@]}; i++)); do
		[ "${args[$i]}" = --replay ] || continue
		replay_dir=${args[$((i + 1))]:-}
		[ -n "$replay_dir" ] || die "--replay needs a run directory (try --help)"
		[ -f "$replay_dir/replay/args" ] || die "not a recorded run (no replay/args): $replay_dir"
		for a in vmlinuz initrd.cpio.gz pmem-start.img events.bin guest-cmdline.txt; do
			[ -f "$replay_dir/replay/$a" ] || die "recorded run is incomplete (no replay/$a): $replay_dir"
		done
		replay_dir=$(cd "$replay_dir" && pwd)
		for ((j = 0; j < ${#args[@]}; j++)); do
			[ $j = "$i" ] || [ $j = $((i + 1)) ] && continue
			a=${args[$j]}
			case "$a" in
			--trace | --plugin | --timeout | --results) extra+=("$a") ;;
			-*) die "--replay takes only --trace, --plugin, --timeout and --results, not $a" ;;
			*) extra+=("$a") ;;
			esac
		done
		mapfile -d '' -t rec <"$replay_dir/replay/args"
		REPLAY_ARGV=(${rec[@]+"${rec[@]}"} ${extra[@]+"${extra[@]}"})
		return 0
	done
	return 1
}

parse_options() {
	ORIG_ARGS=("$@")
	if replay_args "$@"; then
		set -- ${REPLAY_ARGV[@]+"${REPLAY_ARGV[@]}"}
	fi
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
		--scenario) need_arg "$@" && scenarios+=("$2") && shift ;;
		--fs) need_arg "$@" && fs_arg=$2 && fs_given=1 && shift ;;
		--mode) need_arg "$@" && pmem_mode=$2 && shift ;;
		--no-dax) dax=0 ;;
		--persist) need_arg "$@" && persist=$2 && shift ;;
		--pmem-kind) need_arg "$@" && pmem_kind=$2 && shift ;;
		--plugin) need_arg "$@" && plugin=$2 && shift ;;
		--crash-check) need_arg "$@" && crash_check=$2 && scenarios+=("$2") && shift ;;
		--crash-every) need_arg "$@" && crash_every=$2 && shift ;;
		--crash-samples) need_arg "$@" && crash_samples=$2 && shift ;;
		--crash-point-samples) need_arg "$@" && crash_point_samples=$2 && shift ;;
		--crash-max-states) need_arg "$@" && crash_max_states=$2 && shift ;;
		--seed) need_arg "$@" && seed=$2 && shift ;;
		--iterations) need_arg "$@" && iterations=$2 && shift ;;
		--strict) strict=1 ;;
		--widen)
			widen=200
			if [ $# -ge 2 ] && [ "${2#-}" = "$2" ]; then widen=$2 && shift; fi
			;;
		--payload) need_arg "$@" && payload=$2 && shift ;;
		--exec) need_arg "$@" && exec_cmd=$2 && exec_given=1 && shift ;;
		--shell) shell=1 ;;
		--libvirt)
			libvirt=qemu:///system
			if [ $# -ge 2 ] && [ "${2#-}" = "$2" ]; then libvirt=$2 && shift; fi
			;;
		--emit-xml) emit_xml=1 ;;
		--latency) need_arg "$@" && latency=$2 && shift ;;
		--latency-mode) need_arg "$@" && latency_mode=$2 && shift ;;
		--guest-write-cache) need_arg "$@" && write_cache=$2 && shift ;;
		--image) need_arg "$@" && image=$2 && shift ;;
		--image-format) image_format=1 ;;
		--trace)
			trace=on
			if [ $# -ge 2 ] && [ "${2#-}" = "$2" ]; then trace_filter=$2 && shift; fi
			;;
		--kernel) need_arg "$@" && kernel=$2 && shift ;;
		--kernel-variant) need_arg "$@" && kvariant=$2 && shift ;;
		--kernel-src) need_arg "$@" && ksrc=$2 && shift ;;
		--modules) need_arg "$@" && modules=$2 && shift ;;
		--cpu) need_arg "$@" && cpu_model=$2 && shift ;;
		--cpus) need_arg "$@" && cpus=$2 && cpus_given=1 && shift ;;
		--record) record=1 ;;
		--mem) need_arg "$@" && mem=$2 && shift ;;
		--pmem-size) need_arg "$@" && pmem_size=$2 && shift ;;
		--timeout) need_arg "$@" && timeout=$2 && timeout_given=1 && shift ;;
		--scenario-timeout) need_arg "$@" && stimeout=$2 && shift ;;
		--results) need_arg "$@" && results=$2 && shift ;;
		*) die "unknown option: $1 (try --help)" ;;
		esac
		shift
	done
}

# ------------------------------------------------------------ validation
# --trace FILTER -> the plugin's trace_* options in TRACE_OPTS.
check_trace() {
	local t parts=()
	TRACE_OPTS=""
	[ -n "$trace" ] || return 0
	[ "$plugin" != off ] || die "--trace needs the plugin (not --plugin off)"
	TRACE_OPTS="trace=on"
	IFS=, read -r -a parts <<<"${trace_filter:-}"
	for t in ${parts[@]+"${parts[@]}"}; do
		case "$t" in
		types=*)
			[[ "${t#types=}" =~ ^(load|store|nt|flush|fence|locked|marker)(\+(load|store|nt|flush|fence|locked|marker))*$ ]] ||
				die "--trace: unknown event type in '$t' (load store nt flush fence locked marker, joined by +)"
			TRACE_OPTS="$TRACE_OPTS,trace_types=${t#types=}"
			;;
		range=*)
			[[ "${t#range=}" =~ ^[0-9a-fA-Fx]+[KMG]?-[0-9a-fA-Fx]+[KMG]?$ ]] ||
				die "--trace: range must look like 0x1000-0x200000, not '${t#range=}'"
			TRACE_OPTS="$TRACE_OPTS,trace_range=${t#range=}"
			;;
		windows) TRACE_OPTS="$TRACE_OPTS,trace_windows=on" ;;
		time=*)
			[[ "${t#time=}" =~ ^[0-9]+(\.[0-9]+)?-[0-9]+(\.[0-9]+)?$ ]] ||
				die "--trace: time must look like 10-20.5 (seconds after QEMU starts), not '${t#time=}'"
			TRACE_OPTS="$TRACE_OPTS,trace_time=${t#time=}"
			;;
		*) die "--trace: unknown filter '$t' (types=, range=, time=, windows)" ;;
		esac
	done
}

# SCEN_NAMES, SCEN_BINS (parallel) and NEEDS_PMEM1 from --scenario (or the default group).
check_scenarios() {
	local s line name bin groups needs crash desc seen=" "
	SCEN_NAMES=() SCEN_BINS=() NEEDS_PMEM1=0
	if [ $shell = 1 ]; then
		[ ${#scenarios[@]} -eq 0 ] || die "--shell runs no scenarios: drop --scenario"
	elif [ ${#scenarios[@]} -eq 0 ] && [ $exec_given = 0 ]; then
		mapfile -t scenarios < <("$TOP/scenarios/index.sh" --names "$([ "$pmem_mode" = devdax ] && echo devdax || echo default)")
	fi
	for s in ${scenarios[@]+"${scenarios[@]}"}; do
		line=$(scenario_line "$s") || die "no such scenario: $s (see --list)"
		IFS=$'\t' read -r name bin groups needs crash desc <<<"$line"
		case "$seen" in *" $name "*) continue ;; esac
		if [ "$pmem_mode" = devdax ]; then
			case ",$groups," in *,devdax,*) ;; *) die "--mode devdax: $name needs a filesystem (the devdax group: ./run.sh --list)" ;; esac
		fi
		seen="$seen$name "
		SCEN_NAMES+=("$name")
		SCEN_BINS+=("$bin")
		[ "$needs" != pmem1 ] || NEEDS_PMEM1=1
		if [ "$s" = "$crash_check" ] || [ "$name" = "$crash_check" ]; then
			[ "$crash" != - ] || die "--crash-check: $name declares no crash expectations (daxlab-crash: in its header)"
			[ "$pmem_mode" = fsdax ] || [ "$crash" = lines ] || die "--crash-check $name recovers a filesystem: not with --mode devdax"
			[ "$pmem_kind" != cxl ] || [ "$crash" = lines ] || die "--crash-check $name boots recovery guests on NV-DIMMs: not with --pmem-kind cxl yet"
			crash_check=$name
		fi
	done
}

check_options() {
	local fs fs_words=()
	# Sizes first: later checks compute with them.
	[[ "$pmem_size" =~ ^[0-9]{1,5}[MG]$ ]] || die "--pmem-size must look like 512M or 1G, not '$pmem_size'"
	[[ "$mem" =~ ^[0-9]{1,6}[MG]$ ]] || die "--mem must look like 1G or 2048M, not '$mem'"
	FS_LIST=()
	case "$pmem_mode" in
	fsdax) ;;
	devdax)
		# no filesystem: the scenarios map the device itself
		[ $fs_given = 0 ] || die "--mode devdax has no filesystem: drop --fs"
		[ $dax = 1 ] || die "--mode devdax is DAX by construction: drop --no-dax"
		[ -z "$image" ] || die "--mode devdax: not with --image yet"
		fs_arg=devdax
		;;
	*) die "unknown --mode: $pmem_mode (choose fsdax or devdax)" ;;
	esac
	IFS=, read -r -a fs_words <<<"$fs_arg"
	for fs in ${fs_words[@]+"${fs_words[@]}"}; do
		case "$fs" in
		all) FS_LIST+=(ext4 xfs ext2) ;;
		ext4 | xfs | ext2) FS_LIST+=("$fs") ;;
		devdax)
			[ "$pmem_mode" = devdax ] || die "unknown filesystem: devdax (that is --mode devdax)"
			FS_LIST+=("$fs")
			;;
		*) die "unknown filesystem: $fs (choose ext4, xfs, ext2 or all)" ;;
		esac
	done
	[ ${#FS_LIST[@]} -gt 0 ] || die "--fs is empty"
	mapfile -t FS_LIST < <(printf '%s\n' "${FS_LIST[@]}" | awk '!seen[$0]++')
	check_scenarios
	check_pmem_kind
	case "$plugin" in persist | counters | off) ;; *) die "unknown --plugin mode: $plugin (choose persist, counters or off)" ;; esac
	check_trace
	[ -z "$crash_check" ] || [ "$plugin" = persist ] || die "--crash-check needs --plugin persist"
	is_uint "$crash_samples" || die "--crash-samples must be a number, not '$crash_samples'"
	{ [ "${#crash_samples}" -le 4 ] && [ "$crash_samples" -le 1000 ]; } ||
		die "--crash-samples must be at most 1000, not '$crash_samples'"
	{ is_uint "$crash_point_samples" && [ "${#crash_point_samples}" -le 4 ] && [ "$crash_point_samples" -le 1000 ]; } ||
		die "--crash-point-samples must be a number up to 1000, not '$crash_point_samples'"
	{ is_pos "$crash_max_states" && [ "${#crash_max_states}" -le 6 ] && [ "$crash_max_states" -le 100000 ]; } ||
		die "--crash-max-states must be a number from 1 to 100000, not '$crash_max_states'"
	if [ -n "$crash_every" ]; then
		is_pos "$crash_every" || die "--crash-every must be a positive number of fences, not '$crash_every'"
		[ "$plugin" = persist ] || die "--crash-every needs --plugin persist"
	fi
	{ is_uint "$seed" && [ "${#seed}" -le 15 ]; } || die "--seed must be a number, not '$seed'"
	[ -z "$iterations" ] || is_pos "$iterations" || die "--iterations must be a positive number, not '$iterations'"
	if [ -n "$widen" ]; then
		{ is_pos "$widen" && [ "$widen" -le 100000 ]; } || die "--widen takes microseconds, 1 to 100000, not '$widen'"
		case "$kernel" in "" | debian-6.1 | debian-6.12) ;; *)
			[ -d "$modules/build" ] ||
				die "--widen with --kernel PATH needs --modules DIR with DIR/build (the kernel's build tree)"
			;;
		esac
	fi
	case "$write_cache" in "" | 0 | 1) ;; *) die "--guest-write-cache must be 0 or 1, not '$write_cache'" ;; esac
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
	{ is_pos "$cpus" && [ "$cpus" -le 64 ]; } || die "--cpus must be a positive integer (at most 64), not '$cpus'"
	if [ $record = 1 ]; then
		[ -z "$replay_dir" ] || die "--record and --replay exclude each other"
		[ -z "$cpus_given" ] || [ "$cpus" = 1 ] ||
			die "--record needs one vCPU (QEMU refuses record/replay with more): drop --cpus $cpus"
		cpus=1
	fi
	[ -z "$replay_dir" ] || cpus=1
	is_pos "$timeout" || die "--timeout must be a positive number of seconds, not '$timeout'"
	check_backend
	check_workload
	is_pos "$stimeout" || die "--scenario-timeout must be a positive number of seconds, not '$stimeout'"
	[[ "$cpu_model" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--cpu must be a QEMU CPU model name, not '$cpu_model'"
	check_kernel
	check_image
	check_results
}

# --pmem-kind and --persist: the device, and its persistence domain told to
# the guest (NVDIMM_PERSISTENCE) and to the plugin's model (persist).
check_pmem_kind() {
	case "$pmem_kind" in
	nvdimm)
		case "${persist:=adr}" in
		adr) NVDIMM_PERSISTENCE="mem-ctrl" ;;
		eadr) NVDIMM_PERSISTENCE=cpu ;;
		*) die "unknown --persist mode: $persist (choose adr or eadr)" ;;
		esac
		;;
	virtio-pmem)
		# Durable when the host flushes its file: no persistence domain.
		[ "$pmem_mode" = fsdax ] || die "--pmem-kind virtio-pmem: not with --mode devdax yet"
		[ -z "$persist" ] || [ "$persist" = virtio ] ||
			die "--persist $persist is for NV-DIMMs: virtio-pmem persists on the host's flush (its model is --persist virtio)"
		persist=virtio NVDIMM_PERSISTENCE=""
		{ [ -z "$libvirt" ] && [ $emit_xml = 0 ]; } || die "--pmem-kind virtio-pmem: not with --libvirt or --emit-xml yet (the domain XML has NV-DIMMs only)"
		[ -z "$image" ] || die "--pmem-kind virtio-pmem: not with --image yet"
		;;
	cxl)
		# a CXL pmem region: the memory controller is its persistence domain
		case "${persist:=adr}" in
		adr) NVDIMM_PERSISTENCE="" ;;
		*) die "--pmem-kind cxl: the region's persistence domain is the memory controller: --persist adr only" ;;
		esac
		[ $(($(to_mib "$pmem_size") % 256)) = 0 ] || die "--pmem-kind cxl: --pmem-size must be a multiple of 256M (QEMU's CXL granularity)"
		{ [ -z "$libvirt" ] && [ $emit_xml = 0 ]; } || die "--pmem-kind cxl: not with --libvirt or --emit-xml yet (the domain XML has NV-DIMMs only)"
		[ -z "$image" ] || die "--pmem-kind cxl: not with --image yet (a region comes back disabled after a reboot)"
		[ "$pmem_mode" = fsdax ] || die "--pmem-kind cxl: not with --mode devdax yet"
		{ [ $record = 0 ] && [ -z "$replay_dir" ]; } || die "--pmem-kind cxl: not with --record or --replay yet"
		;;
	*) die "unknown --pmem-kind: $pmem_kind (choose nvdimm, virtio-pmem or cxl)" ;;
	esac
}

check_workload() {
	if [ -n "$payload" ]; then
		[ $exec_given = 1 ] || die "--payload needs --exec 'CMD' (what to run in the guest)"
		[ -d "$payload" ] || die "--payload is not a directory: $payload"
		{ [ -r "$payload" ] && [ -x "$payload" ]; } || die "--payload directory is not readable: $payload"
		payload=$(cd "$payload" && pwd)
		local mib=$(($(du -sk "$payload" | cut -f1) / 1024))
		[ "$mib" -le $(($(to_mib "$mem") / 4)) ] ||
			die "--payload is $mib MiB: more than a quarter of the guest's --mem $mem (it lives in the initramfs)"
	fi
	if [ $shell = 1 ]; then
		[ $exec_given = 0 ] || die "--shell and --exec exclude each other"
		{ [ -z "$replay_dir" ] && [ $record = 0 ]; } || die "--shell cannot be recorded or replayed"
		[ -z "$crash_check" ] || die "--shell and --crash-check exclude each other"
		[ -t 0 ] || [ -p /dev/stdin ] || [ -f /dev/stdin ] || die "--shell needs a terminal (or commands piped in) on stdin"
		[ $timeout_given = 1 ] || timeout=14400
	fi
}

check_backend() {
	[ -n "$libvirt" ] || [ $emit_xml = 1 ] || return 0
	case "${libvirt:-qemu:///system}" in qemu:///* | qemu+*://*) ;; *) die "--libvirt: '$libvirt' is not a QEMU libvirt URI (qemu:///system, qemu+ssh://host/system)" ;; esac
	[ $shell = 0 ] || die "--shell runs QEMU on this terminal: not with --libvirt"
	{ [ -z "$replay_dir" ] && [ $record = 0 ]; } || die "--record and --replay run QEMU directly: not with --libvirt"
	[ -z "${DAXLAB_QEMU_WRAPPER:-}" ] || die "DAXLAB_QEMU_WRAPPER does not apply to --libvirt"
	# Missing libvirt, or the local daemons not running: run.sh installs
	# and starts them after the other dependencies (LIBVIRT_ENSURE). A URI
	# that does not answer otherwise is an error now, before anything runs.
	if [ -n "$libvirt" ] && [ $emit_xml = 0 ]; then
		if ! command -v virsh >/dev/null 2>&1 || { [ "$libvirt" = qemu:///system ] && ! command -v libvirtd >/dev/null 2>&1; }; then
			LIBVIRT_ENSURE=1
		elif ! timeout 20 virsh -c "$libvirt" version >/dev/null 2>&1; then
			[ "$libvirt" = qemu:///system ] ||
				die "--libvirt: cannot connect to $libvirt (is libvirtd running there?)"
			LIBVIRT_ENSURE=1
		fi
	fi
}

# The kernel: Debian's by name (--kernel debian-6.1|debian-6.12), an image
# of the user's (--kernel PATH [--modules DIR]), a variant built from
# linux-source-6.1 or from the user's tree (--kernel-variant, --kernel-src).
check_kernel() {
	case "$kernel" in
	"") ;;
	debian-6.1 | debian-6.12) kseries=${kernel#debian-} ;;
	debian-*) die "no Debian kernel '$kernel' (debian-6.1 or debian-6.12)" ;;
	*)
		[ -f "$kernel" ] || die "kernel image not found: $kernel"
		[ -r "$kernel" ] || die "kernel image not readable: $kernel"
		kernel=$(cd "$(dirname "$kernel")" && pwd)/$(basename "$kernel")
		;;
	esac
	if [ -n "$ksrc" ]; then
		[ -z "$kernel" ] || die "--kernel and --kernel-src exclude each other"
		[ -d "$ksrc" ] || die "--kernel-src: no such directory: $ksrc"
		ksrc=$(cd "$ksrc" && pwd)
		grep -q '^VERSION = ' "$ksrc/Makefile" 2>/dev/null ||
			die "--kernel-src: $ksrc is not a Linux source tree (no top-level Makefile with VERSION)"
	fi
	if [ -n "$kvariant" ]; then
		[ -z "$kernel" ] || die "--kernel and --kernel-variant exclude each other"
		kvariant=$("$TOP/guest-kernel/build.sh" --resolve "$kvariant" 2>&1) || die "${kvariant#build-kernel: }"
	fi
	if [ -n "$modules" ]; then
		{ [ -n "$kernel" ] && [ -z "$kseries" ]; } || die "--modules needs --kernel PATH"
		[ -d "$modules" ] || die "modules directory not found: $modules"
		modules=$(cd "$modules" && pwd)
	fi
}

# What an NV-DIMM image file holds: empty (all zeros), daxlab (the fsdax
# info block a daxlab guest writes 4 KiB in), or other.
image_kind() {
	if cmp -s -n 16 -i 4096:0 "$1" <(printf 'NVDIMM_PFN_INFO\0'); then
		echo daxlab
	elif cmp -s -n "$(stat -c %s "$1")" "$1" /dev/zero; then
		echo empty
	else
		echo other
	fi
}

# A path that goes into a comma-separated QEMU option (mem-path=, path=,
# -initrd) must have no comma.
no_comma() { # WHAT PATH
	case "$2" in *,*) die "$1 must not contain a comma (QEMU options are comma-separated): $2" ;; esac
}

check_image() {
	[ $image_format = 0 ] || [ -n "$image" ] || die "--image-format needs --image PATH"
	[ -n "$image" ] || return 0
	no_comma --image "$image"
	[ ${#FS_LIST[@]} = 1 ] || die "--image keeps one filesystem: give a single --fs"
	if [ -e "$image" ]; then
		[ -f "$image" ] || die "--image is not a regular file: $image"
		[ -w "$image" ] || die "--image is not writable: $image"
		[ "$(stat -c %s "$image")" -eq $(($(to_mib "$pmem_size") * 1024 * 1024)) ] ||
			die "--image $image is $(stat -c %s "$image") bytes, not --pmem-size $pmem_size"
		[ $image_format = 1 ] || [ "$(image_kind "$image")" != other ] ||
			die "--image $image is not a daxlab NV-DIMM image (not empty, no fsdax info block): give --image-format to wipe it"
	else
		(umask 077 && truncate -s "$pmem_size" "$image") 2>/dev/null || die "cannot create --image $image"
	fi
	image=$(cd "$(dirname "$image")" && pwd)/$(basename "$image")
	# One run at a time on an image.
	exec 8<>"$image"
	flock -n 8 || die "--image $image is in use by another run"
}

free_mib() { df -Pk "$1" 2>/dev/null | awk 'NR==2 {print int($4 / 1024)}'; }
check_results() {
	local probe free
	no_comma "the results directory" "$results"
	no_comma "the cache directory (DAXLAB_CACHE)" "$CACHE"
	mkdir -p "$results" 2>/dev/null || die "cannot create results directory: $results"
	results=$(cd "$results" && pwd)
	no_comma "the results directory" "$results"
	probe=$(mktemp "$results/.write-test.XXXXXX" 2>/dev/null) || die "results directory is not writable: $results"
	rm -f "$probe"
	free=$(free_mib "$results")
	[ "${free:-0}" -ge 256 ] ||
		die "not enough free space in $results: ${free:-0} MiB free, need 256 MiB (NV-DIMM image and logs)"
}

# What a replay needs of this run's arguments (replay/args): those that
# shape the guest and the host-side view of it. The kernel, initramfs,
# image and guest command line are kept as files instead.
replay_save_args() {
	local i a args=(${ORIG_ARGS[@]+"${ORIG_ARGS[@]}"})
	SAVE_ARGS=()
	for ((i = 0; i < ${#args[@]}; i++)); do
		a=${args[$i]}
		case "$a" in
		--record | --image-format) ;;
		--no-dax | --widen | --strict) SAVE_ARGS+=("$a") ;;
		--trace) [ "${args[$((i + 1))]:--}" = "${args[$((i + 1))]#-}" ] && i=$((i + 1)) ;;
		--results | --plugin | --timeout | --kernel | --kernel-variant | --kernel-src | --modules | --image | --crash-samples | --crash-point-samples | --crash-max-states) i=$((i + 1)) ;;
		--crash-check) SAVE_ARGS+=(--scenario "${args[$((i + 1))]}") && i=$((i + 1)) ;;
		*) SAVE_ARGS+=("$a") ;;
		esac
	done
}
