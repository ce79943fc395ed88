#!/usr/bin/env bash
# bench-realtime.sh — build handoff, run the realtime benchmarks against
# fresh local servers (memory backend, then Redis), stop everything, print
# a table. Every run gets a fresh server (and a fresh redis-server), so no
# run inherits another's heap, history or sessions.
#
#   scripts/bench-realtime.sh             # everything, twice (about 15 minutes)
#   RUNS=1 BACKENDS=memory scripts/bench-realtime.sh
#
# Scenarios (docs/benchmarks-realtime.md):
#   case1  2,000 sockets on 200 channels, 2,000 publishes/s (20,000 deliveries/s)
#   case2  1,000 sockets on 1,000 channels, 30,000 publishes/s
#   idle   10,000 idle subscribed sockets: server RSS per socket
#
# Environment (defaults in brackets):
#   RUNS [2]  BACKENDS [memory redis]  SCENARIOS [case1 case2 idle]
#   WARMUP [3s]  DURATION [20s]  HOLD [20s]  IDLE_SOCKETS [10000]
#   CASE2_RATE [30000]  CASE2_BATCH [1]  PUBLISHERS1 [32]  PUBLISHERS2 [256]
#   QUIET_MAX [0.3]  QUIET_WAIT [60]  before each run, wait up to QUIET_WAIT
#     seconds for other work on the machine to use at most QUIET_MAX cores
#   OUT [unset]  directory to keep every run's text and server log
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-2}
BACKENDS=${BACKENDS:-memory redis}
SCENARIOS=${SCENARIOS:-case1 case2 idle}
WARMUP=${WARMUP:-3s}
DURATION=${DURATION:-20s}
HOLD=${HOLD:-20s}
IDLE_SOCKETS=${IDLE_SOCKETS:-10000}
CASE2_RATE=${CASE2_RATE:-30000}
CASE2_BATCH=${CASE2_BATCH:-1}
PUBLISHERS1=${PUBLISHERS1:-32}
PUBLISHERS2=${PUBLISHERS2:-256}
QUIET_MAX=${QUIET_MAX:-0.3}
QUIET_WAIT=${QUIET_WAIT:-60}
# A bench run may take this long beyond its warmup+duration (setup, drain).
RUN_SLACK=180

# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh
bench_init handoff-bench

# run_bench label args...: one bench process, bounded in time; its text
# goes to the terminal and $WORK/label.txt, its RESULT line to results.
run_bench() {
	local label=$1 limit=$2; shift 2
	local status=0
	quiet_wait
	log "run $label: handoff bench $(redacted "$@")"
	local aux=()
	[[ -n $REDIS_PID && $1 == fanout ]] && aux=(--aux-pid "$REDIS_PID")
	timeout --signal=TERM --kill-after=15 "$limit" "$BIN" bench "$@" --pid "$SERVER_PID" "${aux[@]}" \
		>"$WORK/$label.txt" 2>"$WORK/$label.err" || status=$?
	cat "$WORK/$label.txt"
	grep -v '^  *[0-9]* sockets opening' "$WORK/$label.err" | sed 's/^/    /' >&2 || true
	local line
	line=$(grep '^RESULT ' "$WORK/$label.txt" || echo "RESULT failed exit=$status")
	echo "$label $line exit=$status" >>"$WORK/results.txt"
}

target() { echo "http://127.0.0.1:$PORT"; }

log "building handoff"
go build -o "$BIN" ./cmd/handoff
log_machine
: >"$WORK/results.txt"

for backend in $BACKENDS; do
	for run in $(seq 1 "$RUNS"); do
		for scenario in $SCENARIOS; do
			label="$backend-$scenario-run$run"
			start_handoff "$backend" "$label"
			common=(--target "$(target)" --jwt-secret "$JWT_SECRET")
			case $scenario in
			case1)
				run_bench "$label" $(($(seconds "$WARMUP") + $(seconds "$DURATION") + RUN_SLACK)) fanout "${common[@]}" \
					--api-key "$API_KEY" --sockets 2000 --channels 200 --rate 2000 --publishers "$PUBLISHERS1" \
					--warmup "$WARMUP" --duration "$DURATION"
				;;
			case2)
				run_bench "$label" $(($(seconds "$WARMUP") + $(seconds "$DURATION") + RUN_SLACK)) fanout "${common[@]}" \
					--api-key "$API_KEY" --sockets 1000 --channels 1000 --rate "$CASE2_RATE" --batch "$CASE2_BATCH" \
					--publishers "$PUBLISHERS2" --warmup "$WARMUP" --duration "$DURATION"
				;;
			idle)
				run_bench "$label" $(($(seconds "$HOLD") + RUN_SLACK)) idle "${common[@]}" \
					--sockets "$IDLE_SOCKETS" --channels 100 --hold "$HOLD"
				;;
			*)
				log "unknown scenario $scenario"; exit 2
				;;
			esac
			stop_server
			stop_redis
		done
	done
done

# The table: one row per run, the RESULT fields that matter. Latency is
# from each message's scheduled send time; "req p99" from the start of its
# HTTP request. "bg" is other processes' CPU use (cores) in the quiet
# second before publishing: other work sharing the cores, i.e. noise.
echo
echo "== results ($(nproc) cores, load generator on the same machine) =="
awk '
function field(k,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "-" }
BEGIN { f = "%-22s %8s %9s %7s %7s %8s %8s %8s %7s %5s %5s %5s %5s %4s\n"
	printf f, "run", "msgs/s", "deliv/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "req p99", "KiB/so", "lost", "errs", "bg", "ok", "exit" }
$3 == "idle" { printf f, $1, "-", "-", "-", "-", "-", "-", "-", field("kib_per_socket"), "-", field("dropped"), "-", field("ok"), field("exit"); next }
{ printf f, $1, field("msgs_per_s"), field("deliveries_per_s"), field("p50_ms"), field("p99_ms"), field("p99_9_ms"), field("max_ms"), field("req_p99_ms"), "-", field("lost"), field("errors"), field("bg_cores"), field("ok"), field("exit") }
' "$WORK/results.txt"
echo
echo "CPU during each fanout run's measured window (cores): handoff / redis-server (-1: none) / generator / other processes"
awk '$3 == "fanout" { s = ""; for (i = 1; i <= NF; i++) if ($i ~ /^(server|aux|gen|others)_cores=/) s = s " " $i; print "  " $1 s }' "$WORK/results.txt"
