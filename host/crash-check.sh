# shellcheck shell=bash
# --crash-check: the crash states of a scenario's checkpoints, made from
# the plugin's persistence log (emulator/daxlab-crash). What to check comes
# from `daxlab-collect guest` (one line per filesystem where the scenario
# passed: MODE NAME FS BIN); what the states must hold was written by it
# into crash/NAME-FS.spec. The verdicts are the judge's (daxlab-collect
# judge); this only makes the states and runs what checks them:
#   lines    daxlab-crash check: each declared 64-byte line, every state
#   recover  daxlab-crash plan: the states of the marked checkpoints and of
#            the crash points between them, folded by their bytes; then one
#            recovery guest checks them all: daxlab-crash feed rewrites its
#            NV-DIMM in place, state after state, and talks with it on its
#            control port (ttyS1). The recovery guests of the filesystems
#            run side by side. A guest that dies or hangs on a state is
#            booted again from the state after it.

# Boots one check may take: the first, and one more per state a guest died on.
RECOVER_BOOTS=8
# A feeder that ended: the guest has this long to power off.
RECOVER_GRACE=15

crash_stage() { # < plan lines
	local mode name fs bin pids=() p
	while read -r mode name fs bin; do
		case "$mode" in
		lines) crash_lines "$name" "$fs" ;;
		# one recovery guest per filesystem, side by side (each is one
		# TCG guest mostly on one host CPU)
		recover)
			crash_recover "$name" "$fs" "$bin" &
			pids+=($!)
			;;
		*) ;; # none, error: the judge says why
		esac
	done
	[ ${#pids[@]} -gt 0 ] || return 0
	G_KILL=(kill -TERM "${pids[@]}")
	for p in "${pids[@]}"; do
		# an interrupt ends wait early: wait again until the check is gone
		while kill -0 "$p" 2>/dev/null; do wait "$p" || true; done
	done
	G_KILL=()
}

crash_base_args() {
	CRASH_BASE=()
	[ ! -f "$RUN/pmem-base.img" ] || CRASH_BASE=(--base "$RUN/pmem-base.img")
}

crash_lines() { # NAME FS
	crash_base_args
	"$CACHE/build/emulator/daxlab-crash" check "$RUN/pmem-log.bin" "$RUN/crash/$1-$2.spec" \
		--samples "$crash_samples" --seed "$seed" ${CRASH_BASE[@]+"${CRASH_BASE[@]}"} \
		>"$RUN/crash/$1-$2.txt" 2>&1 || true
}

# Whether process PID (a child: a zombie once it exited) has ended.
ended() {
	local state=Z
	[ -r "/proc/$1/stat" ] && read -r _ _ state _ <"/proc/$1/stat"
	[ "$state" = Z ]
}

# guest_run's each-second hook: 3 (stop the guest) once the feeder has been
# gone for RECOVER_GRACE seconds.
feeder_watch() {
	ended "$FEEDER" || return 0
	FEEDER_GONE=$((FEEDER_GONE + 1))
	[ "$FEEDER_GONE" -lt $RECOVER_GRACE ] || return 3
}

crash_recover() { # NAME FS BIN
	local name=$1 fs=$2 bin=$3 ids plan ctl live boot=0 from=0 t0 base prog
	local tool=$CACHE/build/emulator/daxlab-crash boots planned limit ended inflight last
	crash_base_args
	plan=crash/plan-$name-$fs.txt
	boots=$RUN/crash/recover-$name-$fs.jsonl
	: >"$boots"
	ids=$(jq -r --arg s "$name" --arg f "$fs" \
		'[.crash[] | select(.scenario == $s and .fs == $f) | .checkpoints[]] | map(tostring) | join(",")' \
		"$RUN/collect.json")
	t0=$(date +%s.%N)
	if [ -z "$ids" ] || ! "$tool" plan "$RUN/pmem-log.bin" --ids "$ids" --samples "$crash_samples" \
		--point-samples "$crash_point_samples" --max-states "$crash_max_states" --seed "$seed" \
		${CRASH_BASE[@]+"${CRASH_BASE[@]}"} -o "$RUN/$plan" >"$RUN/crash/plan-$name-$fs.log" 2>&1; then
		jq -n '{error: "no plan"}' >"$RUN/crash/recover-$name-$fs.json"
		rm -f "$boots"
		return 0
	fi
	echo "    crash states of $name on $fs: $(tail -n1 "$RUN/crash/plan-$name-$fs.log")"
	planned=$(wc -l <"$RUN/$plan")
	limit=$((600 + 130 * planned))
	[ $limit -le 14400 ] || limit=14400
	live=$RUN/crash/live-$name-$fs.img
	ctl=$(mktemp -d "${TMPDIR:-/tmp}/daxlab-ctl.XXXXXX")
	mkfifo "$ctl/c.in" "$ctl/c.out"
	while [ $boot -lt $RECOVER_BOOTS ] && [ "$G_INTERRUPTED" = 0 ]; do
		boot=$((boot + 1))
		base=crash/recover-$name-$fs-$boot
		prog=$RUN/$base.progress.json
		FEEDER_GONE=0
		rm -f "$ctl/ready" "$prog"
		# the feeder dies with this shell (pdeathsig): nothing is left blocked on its FIFOs
		setpriv --pdeathsig KILL -- "$tool" feed "$RUN/pmem-log.bin" --plan "$RUN/$plan" --live "$live" \
			--ctl "$ctl/c" --ready "$ctl/ready" --progress "$prog" --from "$from" \
			${CRASH_BASE[@]+"${CRASH_BASE[@]}"} >"$RUN/$base.feed.log" 2>&1 &
		FEEDER=$!
		# the first state in place (or the feeder ended: no state left, or an error)
		while [ ! -e "$ctl/ready" ] && ! ended "$FEEDER"; do sleep 0.1; done
		if [ ! -e "$ctl/ready" ]; then
			wait "$FEEDER" || true
			[ "$(jq -r '.ended // ""' "$prog" 2>/dev/null)" = none ] ||
				echo "$PROG: --crash-check $name on $fs: the feeder failed: $(tail -n1 "$RUN/$base.feed.log")" >&2
			break
		fi
		declare -A M=([cpus]=1 [cpu]=$cpu_model [mem]=512M [kernel]=$KDIR/vmlinuz
			[initrd]=$INITRD [console]=$RUN/$base.console [tap]=$RUN/$base.tap [files]=""
			[ctl]=$ctl/c
			[cmdline]="console=ttyS0 panic=-1 loglevel=5 daxlab.mode=recover daxlab.recover=$bin daxlab.fs=$fs")
		M_DIMMS=("$live:$(to_mib "$pmem_size")")
		guest_run "$RUN/$base.qemu.log" "$limit" feeder_watch
		kill "$FEEDER" 2>/dev/null || true
		wait "$FEEDER" 2>/dev/null || true
		[ -s "$prog" ] || jq -n --argjson f "$from" '{from: $f, done: 0, last_done: -1, in_flight: -1, ended: "killed"}' >"$prog"
		jq -c --argjson b "$boot" --arg tap "$base.tap" --arg con "$base.console" \
			--argjson secs "$G_SECONDS" '{boot: $b, tap: $tap, console: $con, seconds: $secs} + .' \
			"$prog" >>"$boots"
		ended=$(jq -r .ended "$prog")
		[ "$ended" != end ] || break
		# The guest died or hung on the state in flight (a finding: the
		# judge reports it), or before it got that far: go on after it.
		inflight=$(jq -r .in_flight "$prog")
		last=$(jq -r .last_done "$prog")
		if [ "$inflight" -ge 0 ]; then
			from=$((inflight + 1))
		elif [ "$last" -ge 0 ]; then
			from=$((last + 1))
		else
			break # it never got ready: booting it again will not help
		fi
	done
	rm -rf "$ctl" "$live"
	jq -s --argjson secs "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.3f", b - a}')" \
		--arg plan "$plan" '{seconds: $secs, plan: $plan, boots: .}' "$boots" >"$RUN/crash/recover-$name-$fs.json"
	rm -f "$boots"
}

# After the judge: the images of the states it found failing
# (crash/NAME-FS.keep, one state number per line), made from the plan.
crash_keep_images() {
	local keep name seq plan n
	crash_base_args
	for keep in "$RUN"/crash/*.keep; do
		[ -f "$keep" ] || continue
		name=${keep##*/}
		name=${name%.keep}
		plan=$RUN/crash/plan-$name.txt
		mkdir -p "$RUN/crash/states"
		n=0
		while read -r seq; do
			case "$seq" in '' | *[!0-9]*) continue ;; esac
			n=$((n + 1))
			[ $n -le 16 ] || break
			rm -f "$RUN/crash/states/$name-$seq.img"
			"$CACHE/build/emulator/daxlab-crash" image "$RUN/pmem-log.bin" --plan "$plan" \
				--state "$seq" ${CRASH_BASE[@]+"${CRASH_BASE[@]}"} -o "$RUN/crash/states/$name-$seq.img" \
				>>"$RUN/crash/states/images.log" 2>&1 || true
		done <"$keep"
		rm -f "$keep"
	done
}
