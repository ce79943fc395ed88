#!/usr/bin/env bash
# bench-ably.sh — the same fan-out load through handoff's three subscriber
# transports, one fresh memory-backend server per run: the native socket
# (/realtime), the Ably socket at / in JSON, and in msgpack (issue 11,
# item 7). Publishes are the same HTTP POST /channels/{ch}/messages in
# every run, so only the subscriber transport differs. The transports
# alternate, RUNS times, so slow drift on a shared machine hits all three,
# and the order rotates by one each run (native json msgpack, then json
# msgpack native, ...): a run's place in the triple (the one after a server
# stopped, the last before the next) falls on every transport alike. With
# RUNS a multiple of 3, each transport runs in each place equally often.
#
#   scripts/bench-ably.sh                                  # case B, twice each
#   SOCKETS=1000 CHANNELS=100 RATE=1000 RUNS=1 scripts/bench-ably.sh
#
# Environment (defaults in brackets):
#   RUNS [2]  TRANSPORTS [native ably-json ably-msgpack] (the first run's order)
#   ROTATE [1] rotate the order each run; 0: the same order every run
#   SOCKETS [2000]  CHANNELS [200]  RATE [2000] msgs/s (× SOCKETS/CHANNELS deliveries each)
#   PUBLISHERS [32]  WARMUP [3s]  DURATION [20s]
#   IDLE [1] also run `bench idle` (SOCKETS sockets, HOLD) per transport and run
#   HOLD [5s]  OUT [unset] directory to keep every run's text and server log
#   HANDOFF_BIN [unset] a prebuilt handoff binary to measure (e.g. an older
#     commit's) instead of building this tree
#   BENCH_BIN [unset] a prebuilt handoff binary to run the load generator
#     (`handoff bench`) from; default: the one under test
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-2}
TRANSPORTS=${TRANSPORTS:-native ably-json ably-msgpack}
ROTATE=${ROTATE:-1}
SOCKETS=${SOCKETS:-2000}
CHANNELS=${CHANNELS:-200}
RATE=${RATE:-2000}
PUBLISHERS=${PUBLISHERS:-32}
WARMUP=${WARMUP:-3s}
DURATION=${DURATION:-20s}
IDLE=${IDLE:-1}
HOLD=${HOLD:-5s}
LIMIT=300 # seconds one bench process may take, at most

# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh
bench_init handoff-bench-ably
GEN="$WORK/handoff-bench"

transport_flags() { # transport -> the bench's --server/--format flags
	case $1 in
	native) echo "--server handoff" ;;
	ably-json) echo "--server ably --format json" ;;
	ably-msgpack) echo "--server ably --format msgpack" ;;
	*) log "unknown transport $1"; exit 2 ;;
	esac
}

run_bench() { # label args...
	local label=$1; shift
	local status=0 load
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	log "run $label (loadavg $load): handoff bench $(redacted "$@")"
	timeout --signal=TERM --kill-after=15 "$LIMIT" "$GEN" bench "$@" --pid "$SERVER_PID" \
		>"$WORK/$label.txt" 2>"$WORK/$label.err" || status=$?
	cat "$WORK/$label.txt"
	local line
	line=$(grep '^RESULT ' "$WORK/$label.txt" || echo "RESULT failed")
	echo "$label $line loadavg=${load%% *} exit=$status" >>"$WORK/results.txt"
}

if [[ -n ${HANDOFF_BIN:-} ]]; then
	cp "$HANDOFF_BIN" "$BIN"
else
	log "building handoff"
	go build -o "$BIN" ./cmd/handoff
fi
cp "${BENCH_BIN:-$BIN}" "$GEN"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log_machine
: >"$WORK/results.txt"

read -r -a order <<<"$TRANSPORTS"
for run in $(seq 1 "$RUNS"); do
	for tr in "${order[@]}"; do
		# shellcheck disable=SC2046
		flags=($(transport_flags "$tr"))
		label="$tr-run$run"
		start_handoff memory "$label"
		run_bench "$label" fanout "${flags[@]}" --target "http://127.0.0.1:$PORT" --jwt-secret "$JWT_SECRET" \
			--api-key "$API_KEY" --sockets "$SOCKETS" --channels "$CHANNELS" --rate "$RATE" \
			--publishers "$PUBLISHERS" --warmup "$WARMUP" --duration "$DURATION"
		stop_server
		if [[ $IDLE == 1 ]]; then
			start_handoff memory "$label-idle"
			run_bench "$label-idle" idle "${flags[@]}" --target "http://127.0.0.1:$PORT" --jwt-secret "$JWT_SECRET" \
				--api-key "$API_KEY" --sockets "$SOCKETS" --channels "$CHANNELS" --hold "$HOLD"
			stop_server
		fi
	done
	if [[ $ROTATE == 1 ]]; then order=("${order[@]:1}" "${order[0]}"); fi
done

# One row per run. CPU-s per 100k deliveries is the server's cores over
# the measured window ÷ deliveries/s × 100,000; RSS/socket (fanout) is the
# server's whole RSS at the end of the run ÷ sockets; idle KiB/socket is
# the RSS growth per idle subscribed socket (`bench idle`). Then each
# transport's medians over its fanout runs, against native's.
echo
echo "== results ($(nproc) cores, load generator on the same machine, memory backend) =="
awk '
function field(k,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "-" }
function median(list,   a, n, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
function vs(m, tr) { return ("native" in m && m["native"] > 0) ? sprintf("%+.1f%%", (m[tr] / m["native"] - 1) * 100) : "-" }
BEGIN { f = "%-24s %6s %8s %9s %8s %8s %8s %10s %9s %8s %5s %5s %4s\n"
	printf f, "run", "load", "msgs/s", "deliv/s", "p50 ms", "p99 ms", "srv cores", "CPU-s/100k", "KiB/sock", "gen", "lost", "errs", "ok" }
$3 == "idle" { printf f, $1, field("loadavg"), "-", "-", "-", "-", "-", "-", field("kib_per_socket") " idle", "-", "-", field("dropped"), field("ok"); next }
$3 == "fanout" { d = field("deliveries_per_s"); c = field("server_cores")
	cpu = (d > 0 && c >= 0) ? sprintf("%.2f", c / d * 100000) : "-"
	rss = field("rss_mib"); kib = (rss > 0) ? sprintf("%.1f", rss * 1024 / field("sockets")) : "-"
	printf f, $1, field("loadavg"), field("msgs_per_s"), d, field("p50_ms"), field("p99_ms"), c, cpu, kib, field("gen_cores"), field("lost"), field("errors"), field("ok")
	tr = $1; sub(/-run[0-9]+$/, "", tr)
	if (!(tr in p99)) order[++n] = tr
	p99[tr] = p99[tr] " " field("p99_ms"); runs[tr]++
	if (cpu != "-") cpus[tr] = cpus[tr] " " c / d * 100000
	next }
{ print "  " $0 }
END {
	print ""
	print "== medians per transport (fanout runs) =="
	printf "%-14s %5s %12s %10s %14s %10s\n", "transport", "runs", "p99 ms", "vs native", "CPU-s/100k", "vs native"
	for (i = 1; i <= n; i++) { tr = order[i]; mp[tr] = median(p99[tr]); mc[tr] = median(cpus[tr]) }
	for (i = 1; i <= n; i++) { tr = order[i]
		printf "%-14s %5d %12.2f %10s %14.2f %10s\n", tr, runs[tr], mp[tr], vs(mp, tr), mc[tr], vs(mc, tr) }
}
' "$WORK/results.txt"
