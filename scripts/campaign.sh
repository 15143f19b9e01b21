#!/usr/bin/env bash
# run.sh --campaign FILE: many guests from one small declarative file, up to
# -j at once, spread over one or more places to run them (direct QEMU, or
# libvirt URIs), each job its own run directory, merged into one campaign
# summary (campaign.json, scenarios.txt) and report.html.
set -eu

PROG=run.sh
TOP=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${DAXLAB_CACHE:-$TOP/.cache}

usage() {
	cat <<'USAGE'
usage: ./run.sh --campaign FILE [-j N] [--results DIR]

FILE holds "key: value" lines (# starts a comment; lists are comma lists):
  scenarios:        names (default: the default set)
  fs:               ext4, xfs, ext2 (default: ext4)
  kernels:          debian-6.1 (the default), debian-6.12, src:/path/to/tree
                    (your own Linux tree, built with daxlab's fragments), or a
                    variant of guest-kernel/build.sh --list (slim, m1-...)
  kernel-variants:  the older spelling: debian (= debian-6.1) and variants
  persist:          adr, eadr (default: adr; NV-DIMMs only)
  pmem-kind:        nvdimm, virtio-pmem (default: nvdimm)
  mode:             fsdax, devdax (default: fsdax; devdax has no fs axis)
  latency:          none, dram, optane, custom:key=value+key=value (the
                    parameters joined by '+'; default: none)
  latency-mode:     model or stall (default: model)
  iterations:       rounds of racing scenarios (default: their own)
  seeds:            1-8 or 1,5,9 (default: 1)
  uris:             direct (QEMU spawned here) and/or libvirt URIs such as
                    qemu:///system or qemu+ssh://host/system (default: direct)
  jobs:             guests at once (default: the number of cores; -j wins)
  timeout:          seconds per guest (default: run.sh's)
  keep-images:      failed (default: the NV-DIMM images, *.img, of a job
                    that passed are deleted when it ends; its logs, traces
                    and results stay) or all
Every combination of kind, mode, fs, kernel variant, persistence, latency
and seed is one job: one guest running all the scenarios (a virtio-pmem
job takes no persist value, a devdax job no fs). Jobs go to the URIs in turn.
Results: DIR/campaign-<time>/ (DIR: --results, default results/) with
job-NNN/ per job, campaign.json, scenarios.txt and report.html.
USAGE
}

die() {
	echo "$PROG: $*" >&2
	exit 2
}

for a in "$@"; do
	case "$a" in -h | --help)
		usage
		exit 0
		;;
	esac
done
file="" jobs_arg="" results=${DAXLAB_RESULTS:-$TOP/results}
while [ $# -gt 0 ]; do
	case "$1" in
	-h | --help)
		usage
		exit 0
		;;
	--campaign)
		{ [ $# -ge 2 ] && [ -n "$2" ]; } || die "--campaign needs a file (try --help)"
		file=$2
		shift
		;;
	-j | --jobs)
		{ [ $# -ge 2 ] && [ -n "$2" ]; } || die "-j needs a number"
		jobs_arg=$2
		shift
		;;
	--results)
		{ [ $# -ge 2 ] && [ -n "$2" ]; } || die "--results needs a directory"
		results=$2
		shift
		;;
	*) die "--campaign takes only -j N and --results DIR, not $1" ;;
	esac
	shift
done
[ -n "$file" ] || die "--campaign needs a file (try --help)"
{ [ -f "$file" ] && [ -r "$file" ]; } || die "campaign file not found: $file"

# ------------------------------------------------------------ the file
declare -A conf=()
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
	lineno=$((lineno + 1))
	line=${line%%#*}
	[[ "$line" =~ ^[[:space:]]*$ ]] && continue
	[[ "$line" =~ ^[[:space:]]*([a-z-]+)[[:space:]]*:[[:space:]]*(.*[^[:space:]])[[:space:]]*$ ]] ||
		die "$file:$lineno: not a 'key: value' line: $line"
	key=${BASH_REMATCH[1]} val=${BASH_REMATCH[2]}
	case "$key" in
	scenarios | fs | kernels | kernel-variants | persist | pmem-kind | mode | latency | latency-mode | iterations | seeds | uris | jobs | timeout | keep-images) ;;
	*) die "$file:$lineno: unknown key '$key' (scenarios fs kernels kernel-variants persist pmem-kind mode latency latency-mode iterations seeds uris jobs timeout keep-images)" ;;
	esac
	[ -z "${conf[$key]:-}" ] || die "$file:$lineno: '$key' given twice"
	conf[$key]=$val
done <"$file"

list() { # VALUE -> one item per line, trimmed
	tr ',' '\n' <<<"$1" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//' | sed '/^$/d'
}
mapfile -t L_FS < <(list "${conf[fs]:-ext4}")
# The kernel axis: kernels and kernel-variants together (debian-6.1 alone
# when neither is given).
mapfile -t L_K < <(list "${conf[kernels]:-}${conf[kernels]:+,}${conf[kernel-variants]:-}")
[ ${#L_K[@]} -gt 0 ] || L_K=(debian-6.1)
mapfile -t L_PERSIST < <(list "${conf[persist]:-adr}")
mapfile -t L_KIND < <(list "${conf[pmem-kind]:-nvdimm}")
mapfile -t L_MODE < <(list "${conf[mode]:-fsdax}")
mapfile -t L_LAT < <(list "${conf[latency]:-none}")
mapfile -t L_URI < <(list "${conf[uris]:-direct}")
mapfile -t L_SCEN < <(list "${conf[scenarios]:-}")
lmode=${conf[latency-mode]:-model}
iterations=${conf[iterations]:-}
timeout=${conf[timeout]:-}
keep_images=${conf[keep-images]:-failed}
case "$keep_images" in failed | all) ;; *) die "$file: keep-images: '$keep_images' is not failed or all" ;; esac
seeds=()
mapfile -t L_SEEDS < <(list "${conf[seeds]:-1}")
for s in "${L_SEEDS[@]}"; do
	if [[ "$s" =~ ^([0-9]+)-([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -le "${BASH_REMATCH[2]}" ]; then
		mapfile -t -O "${#seeds[@]}" seeds < <(seq "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}")
	elif [[ "$s" =~ ^[0-9]+$ ]]; then
		seeds+=("$s")
	else
		die "$file: seeds: '$s' is not a number or a range like 1-8"
	fi
done
njobs=${jobs_arg:-${conf[jobs]:-$(nproc)}}
{ [[ "$njobs" =~ ^[0-9]+$ ]] && [ "$njobs" -ge 1 ]; } || die "jobs must be a positive number, not '$njobs'"

for f in "${L_FS[@]}"; do
	case "$f" in ext4 | xfs | ext2) ;; *) die "$file: fs: unknown filesystem '$f' (ext4, xfs, ext2)" ;; esac
done
for p in "${L_PERSIST[@]}"; do
	case "$p" in adr | eadr) ;; *) die "$file: persist: '$p' is not adr or eadr" ;; esac
done
for k in "${L_KIND[@]}"; do
	case "$k" in nvdimm | virtio-pmem) ;; *) die "$file: pmem-kind: '$k' is not nvdimm or virtio-pmem" ;; esac
done
for m in "${L_MODE[@]}"; do
	case "$m" in fsdax | devdax) ;; *) die "$file: mode: '$m' is not fsdax or devdax" ;; esac
done
case " ${L_KIND[*]} | ${L_MODE[*]} " in *virtio-pmem*devdax*)
	die "$file: pmem-kind virtio-pmem with mode devdax: not supported yet (give them in separate campaigns)"
	;;
esac
case "$lmode" in model | stall) ;; *) die "$file: latency-mode: '$lmode' is not model or stall" ;; esac
# Every value goes into one job's arguments, split at spaces: each must be
# one word of what run.sh takes (a custom latency joins its parameters with
# '+' here, since ',' separates the list; run.sh gets them with commas).
[ -z "$iterations" ] || [[ "$iterations" =~ ^[1-9][0-9]{0,8}$ ]] ||
	die "$file: iterations: '$iterations' is not a positive number"
[ -z "$timeout" ] || [[ "$timeout" =~ ^[1-9][0-9]{0,8}$ ]] ||
	die "$file: timeout: '$timeout' is not a positive number of seconds"
for l in "${L_LAT[@]}"; do
	[[ "$l" =~ ^(none|dram|optane|custom(:[A-Za-z0-9_.=/+]+)?)$ ]] ||
		die "$file: latency: '$l' is not none, dram, optane or custom:key=value+key=value"
done
# kernel_args ITEM: run.sh's arguments for one item of the kernel axis.
kernel_args() {
	case "$1" in
	debian | debian-6.1) echo "--kernel debian-6.1" ;;
	debian-6.12) echo "--kernel debian-6.12" ;;
	src:/*) echo "--kernel-src ${1#src:}" ;;
	*) echo "--kernel-variant $1" ;;
	esac
}
for k in "${L_K[@]}"; do
	case "$k" in
	debian | debian-6.1 | debian-6.12) ;;
	src:/*)
		[[ "${k#src:}" =~ ^/[A-Za-z0-9_.+/-]+$ ]] || die "$file: kernels: '$k': the path must be absolute, of [A-Za-z0-9_.+/-]"
		[ -f "${k#src:}/Makefile" ] || die "$file: kernels: '$k' is not a Linux source tree"
		;;
	*)
		"$TOP/guest-kernel/build.sh" --list | cut -d' ' -f1 | grep -qxF -- "$k" ||
			die "$file: kernels: no such kernel '$k' (debian-6.1, debian-6.12, src:/path, or guest-kernel/build.sh --list)"
		;;
	esac
done
for u in "${L_URI[@]}"; do
	[[ "$u" =~ ^(direct|qemu(\+[a-z]+)?://[^[:space:]]*)$ ]] || die "$file: uris: '$u' is not direct or a qemu libvirt URI"
done
for s in ${L_SCEN[@]+"${L_SCEN[@]}"}; do
	"$TOP/run.sh" --list | cut -d' ' -f1 | grep -qxF -- "$s" || die "$file: scenarios: no such scenario: $s (see --list)"
done

# ------------------------------------------------------------ the jobs
jobargs=()
jobkernel=()
# The device axis, as run.sh's words: kind x mode x fs (devdax has no fs),
# times the persistence domains for an NV-DIMM (virtio-pmem has one model).
L_DEV=()
for kind in "${L_KIND[@]}"; do
	for m in "${L_MODE[@]}"; do
		wheres=()
		for fs in "${L_FS[@]}"; do wheres+=("--fs $fs"); done
		[ "$m" = fsdax ] || wheres=("--mode devdax")
		for where in "${wheres[@]}"; do
			if [ "$kind" = nvdimm ]; then
				for p in "${L_PERSIST[@]}"; do L_DEV+=("$where --persist $p"); done
			else
				L_DEV+=("$where --pmem-kind $kind")
			fi
		done
	done
done
for k in "${L_K[@]}"; do
	for dev in "${L_DEV[@]}"; do
		for lat in "${L_LAT[@]}"; do
			for seed in "${seeds[@]}"; do
				a="--seed $seed $dev $(kernel_args "$k")"
				[ "$lat" = none ] || a="$a --latency ${lat//+/,} --latency-mode $lmode"
				[ -z "$iterations" ] || a="$a --iterations $iterations"
				[ -z "$timeout" ] || a="$a --timeout $timeout"
				for s in ${L_SCEN[@]+"${L_SCEN[@]}"}; do a="$a --scenario $s"; done
				jobargs+=("$a")
				jobkernel+=("$k")
			done
		done
	done
done
total=${#jobargs[@]}
mkdir -p "$results" 2>/dev/null || die "cannot create the results directory $results"
camp_id=campaign-$(date +%Y%m%d-%H%M%S)-$$
camp=$(cd "$results" && pwd)/$camp_id
mkdir -p "$camp"
cp "$file" "$camp/campaign.conf"
echo "==> campaign $camp_id: $total jobs, $njobs at once, on ${L_URI[*]}"
echo "    campaign directory: $camp"
[ "$keep_images" = all ] || echo "    NV-DIMM images are kept for failed jobs only (keep-images: all keeps every job's)"
start=$(date +%s)
# libvirt installed and its daemons up once, here, not by jobs side by side.
for u in "${L_URI[@]}"; do
	[ "$u" = direct ] || "$TOP/scripts/libvirt-daemons.sh" ensure "$u" >"$camp/libvirt-$(printf '%s' "$u" | tr -c 'A-Za-z0-9' _).log" 2>&1 ||
		die "libvirt for $u: could not be installed or started, or it does not answer (see $camp/libvirt-*.log)"
done

run_job() { # N URI ARGS
	local n=$1 uri=$2 dir rc=0 t0 args=()
	dir=$camp/$(printf 'job-%03d' "$n")
	t0=$(date +%s)
	read -r -a args <<<"$3" # words made above (split, never globbed)
	[ "$uri" = direct ] || args+=(--libvirt "$uri")
	"$TOP/run.sh" "${args[@]}" --results "$dir" >"$dir.log" 2>&1 </dev/null || rc=$?
	echo "$rc $(($(date +%s) - t0))" >"$dir.rc"
	# Each image is up to the NV-DIMM's size: a campaign of many guests
	# would fill the disk with images nobody needs to look at.
	[ "$rc" != 0 ] || [ "$keep_images" = all ] || find "$dir" -name '*.img' -type f -delete
	echo "    job $n/$total ($uri): $([ $rc = 0 ] && echo pass || echo "fail, exit $rc") in $(($(date +%s) - t0)) s: $3"
}

trap 'echo "$PROG: campaign interrupted; jobs so far are in $camp" >&2; kill 0' INT TERM
for ((i = 0; i < total; i++)); do
	while [ "$(jobs -rp | wc -l)" -ge "$njobs" ]; do
		wait -n || true
	done
	uri=${L_URI[$((i % ${#L_URI[@]}))]}
	n=$((i + 1))
	mkdir -p "$camp/$(printf 'job-%03d' "$n")"
	echo "    job $n/$total started on $uri: ${jobargs[$i]}"
	run_job "$n" "$uri" "${jobargs[$i]}" &
done
wait
trap - INT TERM

# ------------------------------------------------------------ merge
# Each job's summary.json, read with jq; campaign.json written with jq.
passed=0 failed=0
: >"$camp/scenarios.txt.tmp"
: >"$camp/jobs.jsonl"
for ((i = 0; i < total; i++)); do
	n=$((i + 1))
	dir=$camp/$(printf 'job-%03d' "$n")
	read -r rc secs <"$dir.rc" || rc=255 secs=0
	uri=${L_URI[$((i % ${#L_URI[@]}))]}
	sum=$(readlink -f "$dir/latest/summary.json" 2>/dev/null || true)
	totals=null rdir="" job_results="[]"
	if [ -n "$sum" ] && [ -f "$sum" ] && totals=$(jq -c '.totals' "$sum" 2>/dev/null); then
		rdir=${sum%/summary.json}
		job_results=$(jq -c '[.scenarios[] | {name, fs, status}]' "$sum")
		# one line per scenario result: the job's settings, then the result
		jq -r --arg job "job-$(printf '%03d' "$n")" --arg args "${jobargs[$i]}" \
			'.scenarios[] | "\(.name) \(.fs) \(.status) \($job) \($args)"' "$sum" >>"$camp/scenarios.txt.tmp"
	else
		totals=null
	fi
	if [ "$rc" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
	jq -n -c --argjson job "$n" --arg uri "$uri" --arg args "${jobargs[$i]}" --argjson exit "$rc" \
		--argjson secs "$secs" --arg rdir "${rdir#"$camp"/}" --argjson totals "$totals" \
		--arg kernel "${jobkernel[$i]}" --argjson results "$job_results" \
		'{job: $job, uri: $uri, kernel: $kernel, args: $args, exit: $exit, seconds: $secs,
		  run_dir: $rdir, totals: $totals, results: $results}' >>"$camp/jobs.jsonl"
done
{
	echo "# scenario fs result job arguments"
	sort "$camp/scenarios.txt.tmp"
	echo
	echo "# per scenario and fs: results over all jobs"
	awk '{k = $1 " " $2; n[k]++; c[k, $3]++} END {for (k in n) printf "%s: %d runs, %d pass, %d fail, %d skip, %d timeout\n", k, n[k], c[k, "pass"], c[k, "fail"], c[k, "skip"], c[k, "timeout"]}' "$camp/scenarios.txt.tmp" | sort
} >"$camp/scenarios.txt"
rm -f "$camp/scenarios.txt.tmp"
wall=$(($(date +%s) - start))
jq -s --arg id "$camp_id" --arg file "$(basename "$file")" --argjson jobs "$njobs" --arg uris "${L_URI[*]}" \
	--argjson runs "$total" --arg keep "$keep_images" --argjson passed "$passed" --argjson failed "$failed" \
	--argjson wall "$wall" \
	'{campaign_id: $id, file: $file, jobs: $jobs, uris: $uris, runs: $runs, keep_images: $keep,
	  passed: $passed, failed: $failed, wall_seconds: $wall, job_list: .}' "$camp/jobs.jsonl" >"$camp/campaign.json"
rm -f "$camp/jobs.jsonl"
"$CACHE/build/host/daxlab-report" "$camp" || echo "$PROG: writing the campaign's report.html failed" >&2
ln -sfn "$camp_id" "$results/latest-campaign"
echo
echo "daxlab campaign $camp_id: $total jobs, $passed passed, $failed failed, in $wall s"
sed -n '/^# per scenario/,$p' "$camp/scenarios.txt" | tail -n +2 | sed 's/^/  /'
echo "  results: $camp (report.html)"
[ "$failed" = 0 ]
