#!/usr/bin/env bash
# Write RUN_DIR/report.html: one self-contained page (no network, no
# scripts) from what run.sh left in a run directory: the summary table,
# per scenario its TAP and a kernel-log excerpt, race hits with their seeds
# and time lines, persistence counters, crash-check results, and the
# latency model's plot and windows. For a campaign directory (campaign.json),
# the table of its runs instead.
set -eu

usage() {
	cat <<'USAGE'
usage: scripts/report.sh RUN_DIR

Writes RUN_DIR/report.html from RUN_DIR/summary.json and the files next
to it (run.sh calls it at the end of every run), or, for a campaign
directory (RUN_DIR/campaign.json), from the campaign's runs.
USAGE
}
case "${1:-}" in
-h | --help)
	usage
	exit 0
	;;
"")
	usage >&2
	exit 2
	;;
esac
dir=$1
[ -d "$dir" ] || {
	echo "report: no such run directory: $dir" >&2
	exit 2
}

# HTML-escape stdin.
esc() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g'; }
# The string value of "KEY" on the first line of FILE that has it.
jstr() { sed -n "s/.*\"$1\": \"\\([^\"]*\\)\".*/\\1/p" "$2" | head -n1; }
# The string value of "KEY" in $line (one JSON object on one line).
lstr() { sed -n "s/.*\"$1\": \"\([^\"]*\)\".*/\1/p" <<<"$line"; }
# A number (or literal) value.
jnum() { sed -n "s/.*\"$1\": \\([0-9.a-z]*\\).*/\\1/p" "$2" | head -n1; }
# <pre> of at most N lines of FILE (with a note when cut).
pre() { # FILE N
	[ -s "$1" ] || return 0
	local total
	total=$(wc -l <"$1")
	echo "<pre>"
	head -n "$2" "$1" | esc
	[ "$total" -le "$2" ] || echo "... ($((total - $2)) more lines in ${1#"$dir"/})"
	echo "</pre>"
}

style='<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}.pass{background:#dff0d8}.fail,.timeout{background:#f2dede}.skip{background:#fcf8e3}
pre{background:#f7f7f7;border:1px solid #ddd;padding:6px;overflow-x:auto;font-size:12px;max-height:420px}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}.facts td:first-child{font-weight:600}
.plot svg{max-width:100%;height:auto}
</style>'

# ------------------------------------------------------------ campaign
if [ -f "$dir/campaign.json" ]; then
	c=$dir/campaign.json
	{
		echo "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>daxlab campaign $(jstr campaign_id "$c" | esc)</title>$style</head><body>"
		echo "<h1>daxlab campaign $(jstr campaign_id "$c" | esc)</h1>"
		echo "<table class=\"facts\"><tr><td>file</td><td>$(jstr file "$c" | esc)</td></tr>"
		echo "<tr><td>jobs</td><td>$(jnum jobs "$c") at once over $(jstr uris "$c" | esc)</td></tr>"
		echo "<tr><td>runs</td><td>$(jnum runs "$c"): $(jnum passed "$c") passed, $(jnum failed "$c") failed</td></tr>"
		echo "<tr><td>wall time</td><td>$(jnum wall_seconds "$c") s</td></tr></table>"
		echo "<h2>Summary</h2><table><tr><th>job</th><th>where</th><th>arguments</th><th>result</th><th>scenarios</th><th>run directory</th></tr>"
		sed -n 's/^    {"job": \(.*\)}[,]*$/\1/p' "$c" | while IFS= read -r line; do
			job=${line%%,*}
			uri=$(lstr uri) args=$(lstr args) rdir=$(lstr run_dir) totals=$(lstr totals)
			rc=$(sed -n 's/.*"exit": \([0-9]*\).*/\1/p' <<<"$line")
			cls=pass
			[ "$rc" = 0 ] || cls=fail
			echo "<tr class=\"$cls\"><td>$job</td><td>$(echo "$uri" | esc)</td><td><code>$(echo "$args" | esc)</code></td><td>$([ "$rc" = 0 ] && echo pass || echo "fail (exit $rc)")</td><td>$(echo "$totals" | esc)</td><td>$(echo "$rdir" | esc)</td></tr>"
		done
		echo "</table>"
		echo "<h2>Scenarios over all runs</h2>"
		pre "$dir/scenarios.txt" 400
		echo "</body></html>"
	} >"$dir/report.html.tmp"
	mv "$dir/report.html.tmp" "$dir/report.html"
	exit 0
fi

# ------------------------------------------------------------ one run
s=$dir/summary.json
[ -f "$s" ] || {
	echo "report: $dir has no summary.json (not a run directory)" >&2
	exit 2
}
run_id=$(jstr run_id "$s")
{
	echo "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>daxlab run $(echo "$run_id" | esc)</title>$style</head><body>"
	echo "<h1>daxlab run $(echo "$run_id" | esc)</h1>"
	echo "<table class=\"facts\">"
	for k in started kernel qemu_version cpu_model cpu_flush_instructions persist guest_persistence_domain plugin guest_status guest_reason; do
		echo "<tr><td>${k//_/ }</td><td>$(jstr "$k" "$s" | esc)</td></tr>"
	done
	echo "<tr><td>filesystems</td><td>$(sed -n 's/^  "fs": \[\(.*\)\],$/\1/p' "$s" | tr -d '"' | esc)</td></tr>"
	echo "<tr><td>QEMU time</td><td>$(jnum qemu_seconds "$s") s wall, $(jnum qemu_cpu_seconds "$s") s CPU; $(jnum cpus "$s") vCPUs, $(jstr pmem_size "$s" | esc) NV-DIMM</td></tr>"
	echo "<tr><td>totals</td><td>$(sed -n 's/.*"totals": {\(.*\)}.*/\1/p' "$s" | tr -d '"' | esc)</td></tr>"
	echo "</table>"

	echo "<h2>Summary</h2><table><tr><th>scenario</th><th>fs</th><th>result</th><th>DAX</th><th>seconds</th><th>reason</th></tr>"
	grep '^    {"name": ' "$s" | while IFS= read -r line; do
		name=$(lstr name) fs=$(lstr fs) st=$(lstr status)
		dax=$(echo "$line" | sed -n 's/.*"dax": \([a-z]*\).*/\1/p')
		dur=$(echo "$line" | sed -n 's/.*"duration": \([0-9.]*\).*/\1/p')
		reason=$(echo "$line" | sed -n 's/.*"reason": "\(\([^"\\]\|\\.\)*\)".*/\1/p')
		echo "<tr class=\"$st\"><td><a href=\"#s-$name-$fs\">$name</a></td><td>$fs</td><td>$st</td><td>$dax</td><td>$dur</td><td>$(echo "$reason" | esc)</td></tr>"
	done
	echo "</table>"

	echo "<h2>Scenarios</h2>"
	grep '^    {"name": ' "$s" | while IFS= read -r line; do
		name=$(lstr name) fs=$(lstr fs) st=$(lstr status)
		echo "<details id=\"s-$name-$fs\"$([ "$st" = pass ] || echo " open")><summary>$name on $fs: $st</summary>"
		tap=$dir/expect/$name-$fs.out
		[ -f "$tap.bad" ] && tap=$tap.bad
		echo "<p>TAP</p>"
		pre "$tap" 60
		[ -f "$dir/expect/$name-$fs.diff" ] && echo "<p>difference to scenarios/*-$name.out</p>" && pre "$dir/expect/$name-$fs.diff" 40
		if [ -s "$dir/dmesg/$name-$fs.txt" ]; then
			echo "<p>kernel log during the scenario</p>"
			pre "$dir/dmesg/$name-$fs.txt" 40
		fi
		camp=$(echo "$line" | sed -n 's/.*"campaign": {\([^}]*\)}.*/\1/p')
		[ -n "$camp" ] && echo "<p>race campaign: $(echo "$camp" | tr -d '"' | esc)</p>"
		crash=$(echo "$line" | sed -n 's/.*"crash_check": {\([^}]*\)}.*/\1/p')
		if [ -n "$crash" ]; then
			echo "<p>crash check: $(echo "$crash" | tr -d '"' | esc)</p>"
			creport=$(sed -n 's/.*"report": "\([^"]*\)".*/\1/p' <<<"$crash")
			[ -z "$creport" ] || pre "$dir/$creport" 40
		fi
		for h in "$dir/hits/$name-$fs"/hit-*.txt; do
			[ -f "$h" ] || continue
			n=${h##*/hit-}
			n=${n%.txt}
			echo "<p>race hit $n (seed: $(sed -n 's/^seed: //p' "$h" | esc))</p>"
			pre "$h" 20
			if [ -f "$dir/hits/$name-$fs/timeline-$n.txt" ]; then
				echo "<p>time line around hit $n: fs_dax events and pmem flush/fence events</p>"
				pre "$dir/hits/$name-$fs/timeline-$n.txt" 80
			fi
		done
		echo "</details>"
	done

	if [ -f "$dir/pmem-stats.json" ]; then
		echo "<h2>NV-DIMM: persistence and counters</h2><table><tr><th>counter</th><th>whole run</th></tr>"
		sed -n '/^  "counters": {/,/^  },/p' "$dir/pmem-stats.json" | sed -n 's/^ *"\([a-z_]*\)": \([0-9]*\),*$/<tr><td>\1<\/td><td>\2<\/td><\/tr>/p'
		echo "</table>"
		p=$(sed -n 's/^  "persistence": {\(.*\)},$/\1/p' "$dir/pmem-stats.json")
		[ -n "$p" ] && echo "<p>persistence model ($(jstr persist "$dir/pmem-stats.json")): $(echo "$p" | tr -d '"' | esc)</p>"
	fi

	if [ -f "$dir/pmem-model.json" ]; then
		echo "<h2>Latency and bandwidth model</h2>"
		echo "<p>$(sed -n 's/.*"latency": {\([^}]*\)}.*/\1/p' "$s" | tr -d '"' | esc)</p>"
		if [ -f "$dir/pmem-perf.svg" ]; then
			echo "<div class=\"plot\">"
			sed '/^<?xml/d; /^<!DOCTYPE/d; /^ *"http:\/\/www.w3.org\/Graphics\/SVG/d' "$dir/pmem-perf.svg"
			echo "</div>"
		fi
		echo "<table><tr><th>window</th><th>modelled ns</th><th>dram ns</th><th>loads</th><th>flushes</th><th>bytes read</th><th>bytes written</th></tr>"
		awk '$1 == "window" {
			printf "<tr><td>%s</td>", $2
			for (i = 3; i <= NF; i++) { split($i, kv, "="); printf "<td>%s</td>", kv[2] }
			print "</tr>"
		}' "$dir/pmem-model.txt"
		echo "</table>"
	fi
	echo "<h2>Files</h2><p>Everything above comes from the run directory: summary.json, tap.txt, expect/, dmesg/, hits/, pmem-stats.json, pmem-model.json, console.log.</p>"
	echo "</body></html>"
} >"$dir/report.html.tmp"
mv "$dir/report.html.tmp" "$dir/report.html"
