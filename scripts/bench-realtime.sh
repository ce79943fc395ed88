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

WORK=$(mktemp -d "${TMPDIR:-/tmp}/handoff-bench.XXXXXX")
BIN="$WORK/handoff"
SERVER_PID=""
REDIS_PID=""
REDIS_PORT=""
# Throwaway credentials, valid only for these servers.
JWT_SECRET="bench-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
API_KEY="bench:$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

stop_pid() { # pid name: TERM, wait up to 20 s, then KILL
	local pid=$1 name=$2 i
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name ($pid) did not stop in 20s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

stop_server() { stop_pid "$SERVER_PID" "handoff serve"; SERVER_PID=""; }
stop_redis() { stop_pid "$REDIS_PID" "redis-server"; REDIS_PID=""; }

cleanup() {
	stop_server
	stop_redis
	if [[ -n ${OUT:-} ]]; then
		mkdir -p "$OUT"
		cp "$WORK"/*.json "$WORK"/*.txt "$WORK"/*.log "$OUT"/ 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port picks a port below the ephemeral range (32768+), so the
# bench's own client sockets can never be handed it, and checks that
# nothing listens there.
free_port() {
	local p i
	for i in $(seq 1 100); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	log "no free port found"
	exit 1
}

start_redis() {
	local dir="$WORK/redis" i
	command -v redis-server >/dev/null || { log "redis-server not found (apt-get install -y redis-server)"; exit 1; }
	rm -rf "$dir" && mkdir -p "$dir"
	REDIS_PORT=$(free_port)
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
		--protected-mode no --daemonize no --loglevel warning --maxclients 1000 >"$WORK/redis.log" 2>&1 &
	REDIS_PID=$!
	for i in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && return
		sleep 0.1
	done
	log "redis-server did not start"; cat "$WORK/redis.log" >&2; exit 1
}

publish_wired() { # a request without credentials: 401 when the route exists
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/channels/probe/messages" || true)
	[[ $code == 401 ]]
}

# start_server backend label: a fresh node on a free port; sets PORT.
start_server() {
	local backend=$1 label=$2 i
	PORT=$(free_port)
	local args=(serve --addr "127.0.0.1:$PORT" --log-level warn --log-format json
		--data-dir "$WORK/data-$label" --jwt-secret "$JWT_SECRET" --api-keys "$API_KEY"
		--shutdown-timeout 5s
		# every bench socket comes from 127.0.0.1: lift the per-address caps
		--max-conns-per-addr 0 --max-unauth-sockets-per-addr 100000
		# case 2 opens one capture session per channel (1,000); the default cap is 200
		--max-open-sessions-per-facility 10000)
	if [[ $backend == redis ]]; then
		start_redis
		args+=(--redis-addrs "127.0.0.1:$REDIS_PORT" --redis-prefix "bench$RANDOM")
	fi
	"$BIN" "${args[@]}" >"$WORK/server-$label.log" 2>&1 &
	SERVER_PID=$!
	for i in $(seq 1 150); do
		if curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then
			publish_wired && return
			log "handoff serve does not answer POST /channels/{channel}/messages"; exit 1
		fi
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	log "handoff serve did not become ready:"; cat "$WORK/server-$label.log" >&2; exit 1
}

# busy_cores prints the machine's CPU use over one second, in hundredths
# of a core (from /proc/stat; every process, not just ours).
busy_cores() {
	local u n s i w q sq st b1 t1
	read -r _ u n s i w q sq st _ </proc/stat
	b1=$((u + n + s + q + sq + st)) t1=$((u + n + s + i + w + q + sq + st))
	sleep 1
	read -r _ u n s i w q sq st _ </proc/stat
	echo $(((u + n + s + q + sq + st - b1) * 100 * $(nproc) / (u + n + s + i + w + q + sq + st - t1)))
}

# quiet_wait waits (at most QUIET_WAIT seconds) for the machine to be
# nearly idle, so other people's work disturbs a run less. It never fails.
quiet_wait() {
	local max waited=0 busy
	max=$(awk -v q="$QUIET_MAX" 'BEGIN { printf "%d", q * 100 }')
	while ((waited < QUIET_WAIT)); do
		busy=$(busy_cores)
		((busy <= max)) && return 0
		waited=$((waited + 1))
	done
	log "the machine is still busy ($busy/100 cores of other work) after ${QUIET_WAIT}s; running anyway (noisy)"
}

seconds() { # "20s" -> 20 (whole seconds; the bench takes Go durations)
	local d=$1
	case $d in *ms) echo 1 ;; *m) echo $((${d%m} * 60)) ;; *s) echo "${d%s}" ;; *) echo "$d" ;; esac
}

# run_bench label args...: one bench process, bounded in time; its text
# goes to the terminal and $WORK/label.txt, its RESULT line to results.
run_bench() {
	local label=$1 limit=$2; shift 2
	local status=0
	quiet_wait
	local shown="$*"
	shown=${shown//$JWT_SECRET/<jwt-secret>}
	log "run $label: handoff bench ${shown//$API_KEY/<api-key>}"
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
log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3)"
: >"$WORK/results.txt"

for backend in $BACKENDS; do
	for run in $(seq 1 "$RUNS"); do
		for scenario in $SCENARIOS; do
			label="$backend-$scenario-run$run"
			start_server "$backend" "$label"
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
