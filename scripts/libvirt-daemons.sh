#!/usr/bin/env bash
# Start or stop the libvirt daemons run.sh --libvirt talks to, on a machine
# with no init system (containers, CI). Starting also makes the QEMU driver
# run QEMU as root without relabelling files (a daxlab block in
# /etc/libvirt/qemu.conf): the run directories, the cache and the plugin's
# output then need no permission changes. Stopping kills only the daemons
# this script started (their pids are kept in STATE_DIR).
set -eu

usage() {
	cat <<'USAGE'
usage: scripts/libvirt-daemons.sh start|stop|status [--state DIR]
       scripts/libvirt-daemons.sh ensure URI [--state DIR]

  start    configure the QEMU driver for daxlab (once), start virtlogd and
           libvirtd unless they run, wait for qemu:///system to answer
  ensure   what run.sh --libvirt URI needs before it boots: libvirt
           installed (scripts/install-deps.sh --libvirt) when virsh is
           missing, the daemons started (as start) when URI is
           qemu:///system and does not answer; then URI must answer
  stop     stop the daemons that start started (by pid), nothing else
  status   say whether qemu:///system answers
  --state DIR   where the pids go (default: /run/daxlab-libvirt)
USAGE
}

cmd=${1:-}
[ $# -gt 0 ] && shift
uri_arg=""
if [ "$cmd" = ensure ]; then
	uri_arg=${1:-}
	[ -n "$uri_arg" ] || {
		echo "libvirt-daemons: ensure needs a URI (try --help)" >&2
		exit 2
	}
	shift
fi
state=/run/daxlab-libvirt
while [ $# -gt 0 ]; do
	case "$1" in
	--state)
		state=${2:?--state needs a directory}
		shift
		;;
	*)
		echo "libvirt-daemons: unknown option: $1 (try --help)" >&2
		exit 2
		;;
	esac
	shift
done
CONF=/etc/libvirt/qemu.conf
URI=qemu:///system

answers() { timeout 10 virsh -c "${1:-$URI}" version >/dev/null 2>&1; }

case "$cmd" in
-h | --help)
	usage
	exit 0
	;;
ensure)
	if ! command -v virsh >/dev/null || { [ "$uri_arg" = "$URI" ] && ! command -v libvirtd >/dev/null; }; then
		echo "libvirt-daemons: libvirt is not installed: installing it"
		"$(dirname "$0")/install-deps.sh" --libvirt || exit 1
	fi
	if [ "$uri_arg" = "$URI" ] && ! answers; then
		"$0" start --state "$state" || exit 1
	fi
	answers "$uri_arg" || {
		echo "libvirt-daemons: cannot connect to $uri_arg" >&2
		exit 1
	}
	;;
start)
	if ! command -v libvirtd >/dev/null || ! command -v virsh >/dev/null; then
		echo "libvirt-daemons: libvirt is not installed (scripts/install-deps.sh --tests installs it)" >&2
		exit 1
	fi
	if ! grep -q '^# daxlab: begin' "$CONF" 2>/dev/null; then
		cat >>"$CONF" <<'CONF'
# daxlab: begin (scripts/libvirt-daemons.sh): QEMU runs as root and files
# keep their owners, like QEMU started by run.sh itself.
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
# daxlab: end
CONF
		echo "libvirt-daemons: $CONF: QEMU runs as root, no relabelling"
	fi
	mkdir -p "$state"
	if ! pgrep -x virtlogd >/dev/null; then
		virtlogd -d -p "$state/virtlogd.pid"
		echo "libvirt-daemons: started virtlogd ($(cat "$state/virtlogd.pid" 2>/dev/null || echo ?))"
	fi
	if ! pgrep -x libvirtd >/dev/null; then
		libvirtd -d -p "$state/libvirtd.pid"
		echo "libvirt-daemons: started libvirtd ($(cat "$state/libvirtd.pid" 2>/dev/null || echo ?))"
	fi
	for _ in $(seq 1 60); do
		answers && exit 0
		sleep 0.5
	done
	echo "libvirt-daemons: $URI does not answer after 30 s" >&2
	exit 1
	;;
stop)
	for d in libvirtd virtlogd; do
		f=$state/$d.pid
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		if kill "$pid" 2>/dev/null; then
			for _ in $(seq 1 50); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			echo "libvirt-daemons: stopped $d ($pid)"
		fi
		rm -f "$f"
	done
	;;
status)
	if answers; then
		echo "libvirt-daemons: $URI answers"
	else
		echo "libvirt-daemons: $URI does not answer"
		exit 1
	fi
	;;
*)
	usage >&2
	exit 2
	;;
esac
