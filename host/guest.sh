# shellcheck shell=bash
# Running a machine (host/machine.sh) to its end: directly or through
# libvirt, bounded in time and in what its channels may write, taken down
# with run.sh whatever stops run.sh (QEMU gets SIGKILL when its parent dies:
# PR_SET_PDEATHSIG through setpriv). Nothing here reads what the guest
# wrote; the sizes of its files are all it looks at.
#
# After guest_run: G_EXIT (QEMU's exit status), G_SIGNAL (a signal that
# killed QEMU and that run.sh did not send), G_DEADLINE (1: killed at the
# time limit), G_FLOOD (a channel that outgrew its cap), G_INTERRUPTED
# (run.sh got SIGINT/SIGTERM/SIGHUP), G_SECONDS (wall time).

# Caps of the guest's channels (protocol/daxlab-protocol.h).
CAP_CONSOLE=$((64 << 20))
CAP_TAP=$((16 << 20))
CAP_FILES=$((256 << 20))

# From the first guest on, SIGINT, SIGTERM and SIGHUP stop the guest and
# let run.sh keep what it has (before, they simply end run.sh).
G_INTERRUPTED=0
G_KILL=() # what to stop on an interrupt
on_interrupt() {
	G_INTERRUPTED=1
	[ ${#G_KILL[@]} -eq 0 ] || "${G_KILL[@]}" >/dev/null 2>&1 || true
}

size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }

# The first channel of the machine M over its cap, or nothing.
flooded() {
	if [ "$(size_of "${M[tap]}")" -gt $CAP_TAP ]; then
		echo tap
	elif [ -n "${M[files]:-}" ] && [ "$(size_of "${M[files]}")" -gt $CAP_FILES ]; then
		echo files
	elif [ "$(size_of "${M[console]}")" -gt $CAP_CONSOLE ]; then
		echo console
	fi
}

# guest_wait PID DEADLINE_SECS [EACH_SECOND_CMD...]: wait for QEMU (our
# child), killing it at the deadline, when a channel floods or when the
# each-second command returns 3.
guest_wait() {
	local pid=$1 limit=$2 end now fl hook
	shift 2
	end=$(($(date +%s) + limit))
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1
		hook=0
		[ $# -eq 0 ] || "$@" || hook=$?
		now=$(date +%s)
		fl=$(flooded)
		if [ -n "$fl" ] || [ "$now" -ge "$end" ] || [ "$G_INTERRUPTED" = 1 ] || [ "$hook" = 3 ]; then
			[ -z "$fl" ] || G_FLOOD=$fl
			[ "$hook" != 3 ] || G_STOPPED=1
			[ -n "$fl" ] || [ "$G_INTERRUPTED" = 1 ] || [ "$hook" = 3 ] || G_DEADLINE=1
			kill -TERM "$pid" 2>/dev/null || true
			for _ in 1 2 3 4 5 6 7 8 9 10; do
				kill -0 "$pid" 2>/dev/null || break
				sleep 1
			done
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
	done
	G_EXIT=0
	wait "$pid" || G_EXIT=$?
	# A signal nobody here sent: somebody killed QEMU.
	if [ "$G_EXIT" -gt 128 ] && [ "$G_DEADLINE" = 0 ] && [ -z "$G_FLOOD" ] && [ "$G_INTERRUPTED" = 0 ] &&
		[ "$G_STOPPED" = 0 ]; then
		G_SIGNAL=$(kill -l $((G_EXIT - 128)) 2>/dev/null || echo $((G_EXIT - 128)))
	fi
}

# guest_run LOG LIMIT [EACH_SECOND_CMD...]: the machine M, directly.
guest_run() {
	local log=$1 limit=$2 t0 wrapper=()
	shift 2
	trap on_interrupt INT TERM HUP
	G_EXIT=0 G_SIGNAL="" G_DEADLINE=0 G_FLOOD="" G_STOPPED=0
	machine_qemu_argv
	read -r -a wrapper <<<"${DAXLAB_QEMU_WRAPPER:-}"
	t0=$(date +%s.%N)
	if [ "${M[console_stdio]:-0}" = 1 ]; then
		# on this terminal, in the foreground (a background job's stdin is /dev/null)
		timeout --foreground --kill-after=10 "$limit" setpriv --pdeathsig KILL -- "${QEMU_ARGV[@]}" 2>"$log" || G_EXIT=$?
		[ "$G_EXIT" != 124 ] || G_DEADLINE=1
	else
		setpriv --pdeathsig KILL -- ${wrapper[@]+"${wrapper[@]}"} "${QEMU_ARGV[@]}" >"$log" 2>&1 &
		local pid=$!
		G_KILL=(kill -TERM "$pid")
		guest_wait "$pid" "$limit" "$@"
		G_KILL=()
	fi
	G_SECONDS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
}

# guest_run_libvirt URI DOMAIN_NAME XML LOG LIMIT [EACH_SECOND_CMD...]: the
# machine as a transient libvirt domain. A reaper outside run.sh's process
# group destroys it if run.sh dies without doing so.
guest_run_libvirt() {
	local uri=$1 dom=$2 xml=$3 log=$4 limit=$5 t0 end reaper
	shift 5
	trap on_interrupt INT TERM HUP
	G_EXIT=0 G_SIGNAL="" G_DEADLINE=0 G_FLOOD="" G_STOPPED=0
	: >"${M[console]}"
	: >"${M[files]}"
	virsh -c "$uri" create "$xml" >"$log" 2>&1 ||
		die "--libvirt: $uri did not start the domain: $(grep -v '^$' "$log" | tail -n1)"
	echo "    libvirt: domain $dom on $uri"
	setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 2; done; virsh -c "$2" destroy "$3" >/dev/null 2>&1' \
		reaper "$$" "$uri" "$dom" </dev/null >/dev/null 2>&1 &
	reaper=$!
	G_KILL=(virsh -c "$uri" destroy "$dom")
	t0=$(date +%s.%N)
	end=$(($(date +%s) + limit))
	while virsh -c "$uri" domstate "$dom" >/dev/null 2>&1; do
		G_FLOOD=$(flooded)
		if [ -n "$G_FLOOD" ] || [ "$(date +%s)" -ge "$end" ] || [ "$G_INTERRUPTED" = 1 ]; then
			[ -n "$G_FLOOD" ] || [ "$G_INTERRUPTED" = 1 ] || G_DEADLINE=1
			virsh -c "$uri" destroy "$dom" >>"$log" 2>&1 || true
			break
		fi
		sleep 1
		[ $# -eq 0 ] || "$@" || true
	done
	G_KILL=()
	kill "$reaper" 2>/dev/null || true
	# What QEMU itself said (libvirt keeps its log).
	[ ! -r "/var/log/libvirt/qemu/$dom.log" ] || cat "/var/log/libvirt/qemu/$dom.log" >>"$log"
	G_SECONDS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
}
