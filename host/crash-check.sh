# shellcheck shell=bash
# --crash-check: the crash states of a scenario's checkpoints, made from
# the plugin's persistence log (emulator/daxlab-crash). What to check comes
# from `daxlab-collect guest` (one line per filesystem where the scenario
# passed: MODE NAME FS BIN); what the states must hold was written by it
# into crash/NAME-FS.spec. The verdicts are the judge's (daxlab-collect
# judge); this only makes the states and runs what checks them:
#   lines    daxlab-crash check: each declared 64-byte line, every state
#   recover  recovery guests: each state as an NV-DIMM image, mounted
#            (journal/log replay), the scenario's --recover and fsck run on
#            it; RECOVER_BATCH images per guest. A checkpoint with no line
#            pending has one state whatever the sample (every sample is the
#            durable content): it is checked once, the other samples are
#            counted as folded into it.

RECOVER_BATCH=8
RECOVER_TIMEOUT=300

crash_stage() { # < plan lines
	local mode name fs bin
	while read -r mode name fs bin; do
		case "$mode" in
		lines) crash_lines "$name" "$fs" ;;
		recover) crash_recover "$name" "$fs" "$bin" ;;
		*) ;; # none, error: the judge says why
		esac
	done
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

crash_recover() { # NAME FS BIN
	local name=$1 fs=$2 bin=$3 cps states=() batch=0 i s cp k img made t0 lines
	local sdir=$RUN/crash/states folded=0 id changed np
	local -A pending=()
	crash_base_args
	mkdir -p "$sdir"
	lines=$RUN/crash/recover-$name-$fs.jsonl
	: >"$lines"
	mapfile -t cps < <(jq -r --arg s "$name" --arg f "$fs" \
		'.crash[] | select(.scenario == $s and .fs == $f) | .checkpoints[]' "$RUN/collect.json")
	# lines pending per checkpoint (daxlab-crash list: "ID CHANGED PENDING")
	while read -r id changed np; do
		case "$id$changed$np" in '' | *[!0-9]*) continue ;; esac
		pending[$id]=$np
	done < <("$CACHE/build/emulator/daxlab-crash" list "$RUN/pmem-log.bin" 2>/dev/null)
	for cp in ${cps[@]+"${cps[@]}"}; do
		if [ "${pending[$cp]:-}" = 0 ]; then
			states+=("$cp:0")
			folded=$((folded + crash_samples))
			continue
		fi
		for ((k = 0; k <= crash_samples; k++)); do states+=("$cp:$k"); done
	done
	[ ${#states[@]} -le 512 ] || {
		echo "$PROG: --crash-check $name: ${#states[@]} states, over the 512 one check takes: the rest fail it; lower --crash-samples" >&2
		states=("${states[@]:0:512}")
	}
	t0=$(date +%s.%N)
	for ((i = 0; i < ${#states[@]}; i += RECOVER_BATCH)); do
		batch=$((batch + 1))
		local base=crash/recover-$name-$fs-$batch
		declare -A M=([cpus]=$cpus [cpu]=$cpu_model [mem]=$mem [kernel]=$KDIR/vmlinuz
			[initrd]=$INITRD [console]=$RUN/$base.console [tap]=$RUN/$base.tap [files]=""
			[cmdline]="console=ttyS0 panic=-1 loglevel=5 daxlab.mode=recover daxlab.recover=$bin daxlab.fs=$fs daxlab.disks=$(( ${#states[@]} - i < RECOVER_BATCH ? ${#states[@]} - i : RECOVER_BATCH ))")
		M_DIMMS=()
		for s in "${states[@]:i:RECOVER_BATCH}"; do
			cp=${s%:*} k=${s#*:}
			img=crash/states/cp$cp-s$k.img
			rm -f "$RUN/$img"
			made=true
			"$CACHE/build/emulator/daxlab-crash" image "$RUN/pmem-log.bin" --checkpoint "$cp" \
				--sample "$k" --seed "$seed" ${CRASH_BASE[@]+"${CRASH_BASE[@]}"} -o "$RUN/$img" \
				>>"$RUN/crash/$name-$fs.images.log" 2>&1 || made=false
			# a state that could not be made still takes its slot (the judge
			# maps slots to states by position)
			[ "$made" = true ] || truncate -s "$pmem_size" "$RUN/$img"
			M_DIMMS+=("$RUN/$img:$(to_mib "$pmem_size")")
			jq -n -c --argjson b "$batch" --arg tap "$base.tap" --arg con "$base.console" \
				--argjson cp "$cp" --argjson k "$k" --arg img "$img" --argjson made "$made" \
				'{batch: $b, tap: $tap, console: $con, checkpoint: $cp, sample: $k, image: $img, made: $made}' >>"$lines"
		done
		guest_run "$RUN/$base.qemu.log" "$RECOVER_TIMEOUT"
		[ "$G_INTERRUPTED" = 0 ] || break
	done
	jq -s --argjson secs "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.3f", b - a}')" \
		--argjson folded "$folded" \
		'{seconds: $secs, folded: $folded, batches: (group_by(.batch) | map({tap: .[0].tap, console: .[0].console,
		  states: map({checkpoint, sample, image, made})}))}' "$lines" >"$RUN/crash/recover-$name-$fs.json"
	rm -f "$lines"
}
