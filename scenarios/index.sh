#!/usr/bin/env bash
# The scenario index, generated from each scenario's own header (the one
# place a scenario is declared):
#
#   /*
#    * NAME - what it checks              (line 2)
#    ...
#    * daxlab-groups: default series      (the sets it belongs to)
#    * daxlab-needs: pmem1                (what the machine must have)
#    * daxlab-widen: fn,fn                (kernel functions --widen delays)
#    * daxlab-crash: lines|recover        (what --crash-check checks)
#    */
#
# Prints one line per scenario, tab-separated: name, binary (NNN-name),
# groups (comma list), needs, crash, description. --names GROUP prints
# the names in GROUP only, one a line.
set -eu

usage() {
	cat <<'USAGE'
usage: scenarios/index.sh [--names GROUP]

Without options: every scenario, one line each, tab-separated:
name, binary, groups, needs, crash, description.
--names GROUP: the names of the scenarios in GROUP (default, series, devdax,
litmus, crash, perf, selftest, pmdk), one a line.
USAGE
}

group=""
case "${1:-}" in
"") ;;
-h | --help)
	usage
	exit 0
	;;
--names)
	group=${2:?--names needs a group}
	;;
*)
	echo "index.sh: unknown option: $1 (try --help)" >&2
	exit 2
	;;
esac

dir=$(cd "$(dirname "$0")" && pwd)
# The sources are ours (trusted): awk reads their header comment only.
for f in "$dir"/[0-9][0-9][0-9]-*.c; do
	awk -v bin="$(basename "$f" .c)" '
		NR == 2 { desc = $0; sub(/^ \* [^ ]* - /, "", desc); next }
		/^ \*\/$/ { exit }
		/^ \* daxlab-groups: / { sub(/^ \* daxlab-groups: /, ""); groups = $0; gsub(/ +/, ",", groups) }
		/^ \* daxlab-needs: / { sub(/^ \* daxlab-needs: /, ""); needs = $0 }
		/^ \* daxlab-crash: / { sub(/^ \* daxlab-crash: /, ""); crash = $0 }
		END {
			name = substr(bin, 5)
			printf "%s\t%s\t%s\t%s\t%s\t%s\n", name, bin, groups, (needs == "" ? "-" : needs),
				(crash == "" ? "-" : crash), desc
		}' "$f"
done | if [ -n "$group" ]; then
	awk -F'\t' -v g="$group" '("," $3 ",") ~ ("," g ",") { print $1 }'
else
	cat
fi
