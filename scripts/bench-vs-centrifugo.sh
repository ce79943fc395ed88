#!/usr/bin/env bash
# bench-vs-centrifugo.sh — handoff and Centrifugo v6.9.1 side by side, one
# after the other, driven by the same load generator (`handoff bench`, its
# --server centrifugo target speaks Centrifugo's JSON client protocol and
# HTTP API). Prints the ratio table of issue 14 as markdown.
#
#   scripts/bench-vs-centrifugo.sh                 # the full run (not timed here: each run is about
#                                                  # 30-60 s with setup and the quiet wait)
#   # a smoke run (under 2 minutes once Centrifugo is installed):
#   A_SOCKETS=500 A_HOLD=2s B_SOCKETS=200 B_CHANNELS=20 B_RATE=500 \
#     C_SOCKETS=100 C_CHANNELS=100 C_RATES="500 1000" WARMUP=1s DURATION=2s QUIET_WAIT=0 \
#     scripts/bench-vs-centrifugo.sh
#
# Cases (issue 14), each on the memory engine and on Redis (+ history):
#   A  idle RSS per socket: A_SOCKETS subscribed sockets on 100 channels
#   B  B_SOCKETS sockets on B_CHANNELS channels, B_RATE HTTP publishes/s
#      (20,000 deliveries/s by default): p99 publish→delivery and server
#      CPU-seconds per 100k deliveries
#   C  C_SOCKETS sockets on C_CHANNELS channels, one HTTP publish per
#      message, at each rate of C_RATES in turn (both servers at one rate
#      before the next) until one fails: the highest
#      rate with p99 < C_P99_MS, nothing lost, no error and at least
#      C_MIN_ACHIEVED of the target rate achieved; plus CPU-seconds per 100k
#      deliveries at the highest rate both servers passed
#   Cb (C′) as C, but each HTTP request carries CB_BATCH messages to CB_BATCH
#      distinct channels (handoff: Ably batch publish, POST /messages with
#      one {channels, messages} spec per message; Centrifugo: /api/batch
#      with one publish command per channel), at each rate of CB_RATES
#      (messages/s); the same pass bar, per message. Not in the default
#      CASES: CASES="A B C Cb" or CASES=Cb
#
# Every run gets a fresh server (and a fresh redis-server on a free loopback
# port), so no run inherits another's heap or history. Everything listens on
# 127.0.0.1, every run is bounded by `timeout`, and the script stops what it
# started when it ends (or is interrupted).
#
# Environment (defaults in brackets):
#   BACKENDS [memory redis]  SERVERS [centrifugo handoff]  CASES [A B C]
#   WARMUP [3s]  DURATION [15s] (B and C, each run)  A_HOLD [15s]
#   A_SOCKETS [10000]  B_SOCKETS [2000]  B_CHANNELS [200]  B_RATE [2000]
#   B_PUBLISHERS [32]  C_SOCKETS [1000]  C_CHANNELS [1000]  C_PUBLISHERS [256]
#   C_RATES [2000 4000 6000 8000 10000 12000 14000 16000 18000 20000 24000 28000]
#   C_P99_MS [50]  C_MIN_ACHIEVED [0.98]  C_RETRIES [1]  a failed C (or Cb)
#     rate is run again this many times (on a fresh server) before the
#     ladder stops
#   CB_BATCH [20]  CB_PUBLISHERS [32]
#   CB_RATES [8000 12000 16000 20000 24000 28000 32000 40000 48000 56000]
#   CF_MEMORY_HISTORY [0]  1 turns Centrifugo's history on for the memory
#     engine too (it is always on for Redis: the "Redis + history" case)
#   CF_HISTORY_SIZE [100]  CF_HISTORY_TTL [300s]
#   QUIET_MAX [0.3]  QUIET_WAIT [30]  before each run, wait up to QUIET_WAIT
#     seconds for other work on the machine to use at most QUIET_MAX cores
#   CENTRIFUGO_DIR [~/.cache/handoff-bench/centrifugo-v6.9.1]  where the
#     pinned binary is installed (go install, only when missing)
#   OUT [unset]  directory to keep every run's text, configs and logs
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/centrifugo.sh
. scripts/lib/centrifugo.sh
BACKENDS=${BACKENDS:-memory redis}
SERVERS=${SERVERS:-centrifugo handoff}
CASES=${CASES:-A B C}
WARMUP=${WARMUP:-3s}
DURATION=${DURATION:-15s}
A_HOLD=${A_HOLD:-15s}
A_SOCKETS=${A_SOCKETS:-10000}
A_CHANNELS=${A_CHANNELS:-100}
B_SOCKETS=${B_SOCKETS:-2000}
B_CHANNELS=${B_CHANNELS:-200}
B_RATE=${B_RATE:-2000}
B_PUBLISHERS=${B_PUBLISHERS:-32}
C_SOCKETS=${C_SOCKETS:-1000}
C_CHANNELS=${C_CHANNELS:-1000}
C_PUBLISHERS=${C_PUBLISHERS:-256}
C_RATES=${C_RATES:-2000 4000 6000 8000 10000 12000 14000 16000 18000 20000 24000 28000}
C_P99_MS=${C_P99_MS:-50}
C_MIN_ACHIEVED=${C_MIN_ACHIEVED:-0.98}
C_RETRIES=${C_RETRIES:-1}
CB_BATCH=${CB_BATCH:-20}
CB_PUBLISHERS=${CB_PUBLISHERS:-32}
CB_RATES=${CB_RATES:-8000 12000 16000 20000 24000 28000 32000 40000 48000 56000}
CF_MEMORY_HISTORY=${CF_MEMORY_HISTORY:-0}
CF_HISTORY_SIZE=${CF_HISTORY_SIZE:-100}
CF_HISTORY_TTL=${CF_HISTORY_TTL:-300s}
QUIET_MAX=${QUIET_MAX:-0.3}
QUIET_WAIT=${QUIET_WAIT:-30}
# A bench run may take this long beyond its warmup+duration (setup, drain).
RUN_SLACK=180

# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh

for b in $BACKENDS; do [[ $b == memory || $b == redis ]] || { log "BACKENDS: unknown backend $b"; exit 2; }; done
for s in $SERVERS; do [[ $s == centrifugo || $s == handoff ]] || { log "SERVERS: unknown server $s"; exit 2; }; done
for c in $CASES; do [[ $c == A || $c == B || $c == C || $c == Cb ]] || { log "CASES: unknown case $c"; exit 2; }; done

# 10k sockets need 10k descriptors in the generator and in the server: lift
# the soft limit to the hard one (the children inherit it).
ulimit -n "$(ulimit -Hn)"
need=$((A_SOCKETS + 1024))
if (($(ulimit -n) < need)); then
	log "the open-file hard limit is $(ulimit -Hn) but case A needs about $need: raise it (ulimit -Hn / limits.conf) or lower A_SOCKETS"
	exit 1
fi

bench_init handoff-vs-cf
CF_BIN="$CENTRIFUGO_DIR/centrifugo"
CF_API_KEY="cf$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"

# centrifugo_config backend: the config of one Centrifugo run, on stdout.
# Loopback only, usage stats off, an HTTP API key, HS256 connection tokens,
# clients may subscribe in the "bench" namespace; history there on Redis
# (and on memory with CF_MEMORY_HISTORY=1).
centrifugo_config() {
	local backend=$1 history=""
	if [[ $backend == redis || $CF_MEMORY_HISTORY == 1 ]]; then
		history=", \"history_size\": $CF_HISTORY_SIZE, \"history_ttl\": \"$CF_HISTORY_TTL\""
	fi
	local engine='"engine": {"type": "memory"},'
	if [[ $backend == redis ]]; then
		engine="\"engine\": {\"type\": \"redis\", \"redis\": {\"address\": [\"redis://127.0.0.1:$REDIS_PORT\"], \"prefix\": \"cfbench$RANDOM\"}},"
	fi
	cat <<EOF
{
  "http_server": {"address": "127.0.0.1", "port": $PORT},
  "log": {"level": "warn"},
  "usage_stats": {"disabled": true},
  "health": {"enabled": true},
  "http_api": {"key": "$CF_API_KEY"},
  "client": {"token": {"hmac_secret_key": "$JWT_SECRET"}},
  $engine
  "channel": {"namespaces": [{"name": "bench", "allow_subscribe_for_client": true$history}]}
}
EOF
}

# start_centrifugo backend label: a fresh Centrifugo on a free port.
start_centrifugo() {
	local backend=$1 label=$2 i
	PORT=$(free_port)
	[[ $backend == redis ]] && start_redis "$label"
	centrifugo_config "$backend" >"$WORK/centrifugo-$label.json"
	"$CF_BIN" --config "$WORK/centrifugo-$label.json" >"$WORK/server-$label.log" 2>&1 &
	SERVER_PID=$!
	for i in $(seq 1 150); do
		curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	log "centrifugo did not become ready:"; cat "$WORK/server-$label.log" >&2; exit 1
}

# run_bench key limit scenario args...: one bench process against the
# running server, bounded in time. Its text goes to $WORK/<label>.txt, and
# "<key> RESULT ... exit=N" to results.txt.
run_bench() {
	local key=$1 limit=$2 scenario=$3; shift 3
	local label=${key// /-} status=0 aux=() n=1
	# A retried run keeps its own files.
	while [[ -e $WORK/$label.txt ]]; do n=$((n + 1)) label="${key// /-}-try$n"; done
	quiet_wait
	log "run $key"
	[[ -n $REDIS_PID && $scenario == fanout ]] && aux=(--aux-pid "$REDIS_PID")
	timeout --signal=TERM --kill-after=15 "$limit" "$BIN" bench "$scenario" "$@" --pid "$SERVER_PID" "${aux[@]}" \
		>"$WORK/$label.txt" 2>"$WORK/$label.err" || status=$?
	grep -E '^(  (publishes|deliveries|latency from sch|integrity|order|CPU|per socket))' "$WORK/$label.txt" | sed 's/^/    /' >&2 || true
	grep -v -E '^  *[0-9]* sockets opening|^(creating|opening|publishing)|sockets subscribed in' "$WORK/$label.err" | sed 's/^/    /' >&2 || true
	local line
	line=$(grep '^RESULT ' "$WORK/$label.txt" || echo "RESULT failed")
	echo "$key $line exit=$status" >>"$WORK/results.txt"
}

# target_args server: how the bench reaches the running server.
target_args() {
	if [[ $1 == centrifugo ]]; then
		echo --server centrifugo --target "http://127.0.0.1:$PORT" --jwt-secret "$JWT_SECRET"
	else
		echo --server handoff --target "http://127.0.0.1:$PORT" --jwt-secret "$JWT_SECRET"
	fi
}
api_key() { if [[ $1 == centrifugo ]]; then echo "$CF_API_KEY"; else echo "$API_KEY"; fi; }

start() { # server backend label
	if [[ $1 == centrifugo ]]; then start_centrifugo "$2" "$3"; else start_handoff "$2" "$3"; fi
}
stop() { stop_server; stop_redis; }

# c_passed key: whether the last C run met the bar.
c_passed() {
	awk -v key="$1" -v p99max="$C_P99_MS" -v achieved="$C_MIN_ACHIEVED" '
	function field(k,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
	index($0, key " RESULT fanout ") == 1 { last = $0 }
	END {
		$0 = last
		ok = field("ok") == "true" && field("exit") == "0" && field("lost") == "0" && field("errors") == "0" &&
			field("p99_ms") + 0 < p99max && field("msgs_per_s") + 0 >= achieved * field("rate")
		exit ok ? 0 : 1
	}' "$WORK/results.txt"
}

install_centrifugo
log "building handoff"
go build -o "$BIN" ./cmd/handoff
log_machine
: >"$WORK/results.txt"
fanout_limit=$(($(seconds "$WARMUP") + $(seconds "$DURATION") + RUN_SLACK))

# run_c case server backend rate attempt: one C (or Cb) run on a fresh
# server; true if it passed.
run_c() {
	local case=$1 server=$2 backend=$3 rate=$4 attempt=$5 shape
	shape=(--publishers "$C_PUBLISHERS")
	[[ $case == Cb ]] && shape=(--publishers "$CB_PUBLISHERS" --batch "$CB_BATCH" --batch-spread)
	start "$server" "$backend" "$backend-$case-$server-$rate-$attempt"
	# shellcheck disable=SC2046
	run_bench "$backend $case $server $rate" "$fanout_limit" fanout $(target_args "$server") --api-key "$(api_key "$server")" \
		--sockets "$C_SOCKETS" --channels "$C_CHANNELS" --rate "$rate" "${shape[@]}" \
		--warmup "$WARMUP" --duration "$DURATION"
	stop
	c_passed "$backend $case $server $rate"
}

# climb case backend rates: the servers climb the ladder together, rate by
# rate, so other work on the machine falls on both alike. A failed rate is
# tried again C_RETRIES times (noise) before that server's ladder stops;
# the last attempt is the one counted.
climb() {
	local case=$1 backend=$2 rates=$3 climbing=" $SERVERS " rate server attempt
	for rate in $rates; do
		[[ -n ${climbing// /} ]] || break
		for server in $climbing; do
			attempt=0
			until run_c "$case" "$server" "$backend" "$rate" "$attempt"; do
				if ((attempt >= C_RETRIES)); then
					log "  $server on $backend did not pass $case at $rate/s: its ladder stops"
					climbing=${climbing/ $server / }
					break
				fi
				attempt=$((attempt + 1))
				log "  $server on $backend did not pass $case at $rate/s: trying once more"
			done
		done
	done
}

for backend in $BACKENDS; do
	for case in $CASES; do
		case $case in
		A | B)
			for server in $SERVERS; do
				start "$server" "$backend" "$backend-$case-$server"
				if [[ $case == A ]]; then
					# shellcheck disable=SC2046
					run_bench "$backend A $server" $(($(seconds "$A_HOLD") + RUN_SLACK)) idle $(target_args "$server") \
						--sockets "$A_SOCKETS" --channels "$A_CHANNELS" --hold "$A_HOLD"
				else
					# shellcheck disable=SC2046
					run_bench "$backend B $server" "$fanout_limit" fanout $(target_args "$server") --api-key "$(api_key "$server")" \
						--sockets "$B_SOCKETS" --channels "$B_CHANNELS" --rate "$B_RATE" --publishers "$B_PUBLISHERS" \
						--warmup "$WARMUP" --duration "$DURATION"
				fi
				stop
			done
			;;
		C) climb C "$backend" "$C_RATES" ;;
		Cb) climb Cb "$backend" "$CB_RATES" ;;
		esac
	done
done

# The table. Ratios say how many times better handoff is (above 1: handoff
# better), so lower-is-better figures are Centrifugo / handoff and the
# highest C rate is handoff / Centrifugo.
awk -v p99max="$C_P99_MS" -v achieved="$C_MIN_ACHIEVED" -v crates="$C_RATES" -v cbrates="$CB_RATES" -v cases=" $CASES " -v backends="$BACKENDS" \
	-v asock="$A_SOCKETS" -v bsock="$B_SOCKETS" -v bch="$B_CHANNELS" -v brate="$B_RATE" -v csock="$C_SOCKETS" -v cch="$C_CHANNELS" -v cbbatch="$CB_BATCH" '
function field(k,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
function fmt(v, unit) { return v == "" ? "–" : sprintf("%s%s", v, unit) }
function ratio(better, worse) { # how many times better handoff is
	if (better == "" || worse == "" || better + 0 <= 0 || worse + 0 <= 0) return "–"
	r = better / worse
	if (r >= 1.05) return sprintf("**%.2f×** (handoff better)", r)
	if (r <= 0.95) return sprintf("%.2f× (handoff worse)", r)
	return sprintf("%.2f× (equal)", r)
}
function per100k(cores, deliv) { return (cores == "" || deliv + 0 <= 0 || cores + 0 < 0) ? "" : sprintf("%.2f", cores * 100000 / deliv) }
{
	key = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
	if ($2 == "A") {
		if (field("ok") == "true" && field("exit") == "0") kib[$1, $3] = sprintf("%.1f", field("bytes_per_socket") / 1000)
	} else if ($2 == "B") {
		if ($5 == "fanout") {
			bp99[$1, $3] = field("p99_ms")
			bcpu[$1, $3] = per100k(field("server_cores"), field("deliveries_per_s"))
			if (field("aux_cores") + 0 >= 0 && $1 == "redis") bcpuaux[$1, $3] = per100k(field("server_cores") + field("aux_cores"), field("deliveries_per_s"))
		}
		if (field("ok") != "true" || field("exit") != "0") bnote[$1, $3] = sprintf(" (not clean: %s lost, %s errors)", field("lost"), field("errors"))
		else if (field("msgs_per_s") + 0 < achieved * field("rate")) bnote[$1, $3] = sprintf(" (only %s of %s msgs/s achieved)", field("msgs_per_s"), field("rate"))
	} else if ($2 == "C" || $2 == "Cb") {
		c = $2; rate = $4
		pass = field("ok") == "true" && field("exit") == "0" && field("lost") == "0" && field("errors") == "0" &&
			field("p99_ms") + 0 < p99max && field("msgs_per_s") + 0 >= achieved * field("rate")
		tried[c, $1, $3, rate] = 1
		passed[c, $1, $3, rate] = pass
		ccpu[c, $1, $3, rate] = per100k(field("server_cores"), field("deliveries_per_s"))
		cp99[c, $1, $3, rate] = field("p99_ms")
		cach[c, $1, $3, rate] = field("msgs_per_s")
	}
}
function ladder(c) { return c == "Cb" ? cbrates : crates }
function best(c, b, s,   n, i, r, hi) {
	n = split(ladder(c), r, " "); hi = ""
	for (i = 1; i <= n; i++) { if (!tried[c, b, s, r[i]] || !passed[c, b, s, r[i]]) break; hi = r[i] }
	bestlast[c, b, s] = (i > n) # passed every rate tried: the ladder ended, not the server
	return hi
}
function cdesc(c, b, s, hi,   n, i, r) {
	n = split(ladder(c), r, " ")
	if (hi == "") {
		if (!tried[c, b, s, r[1]]) return "–"
		if (cp99[c, b, s, r[1]] == "") return sprintf("below %d/s (the run failed: see its log)", r[1])
		return sprintf("below %d/s (p99 %s ms, %s/s achieved)", r[1], cp99[c, b, s, r[1]], cach[c, b, s, r[1]])
	}
	return sprintf("%d/s%s", hi, bestlast[c, b, s] ? (c == "Cb" ? " (top of CB_RATES)" : " (top of C_RATES)") : "")
}
# crows case engine-name label: the highest-rate row and the CPU row.
function crows(c, b, eng, label,   hc, hh, common) {
	hc = best(c, b, "centrifugo"); hh = best(c, b, "handoff")
	printf "| %s; highest rate with p99 < %s ms, nothing lost, ≥ %d%% achieved (%s) | %s | %s | %s |\n", \
		label, p99max, achieved * 100, eng, cdesc(c, b, "centrifugo", hc), cdesc(c, b, "handoff", hh), ratio(hh, hc)
	common = (hc != "" && hh != "") ? (hc + 0 < hh + 0 ? hc : hh) : ""
	if (common != "") printf "| %s: server CPU-s per 100k deliveries at %d/s (%s) | %s | %s | %s |\n", (c == "Cb" ? "C′" : "C"), common, eng, \
		fmt(ccpu[c, b, "centrifugo", common], ""), fmt(ccpu[c, b, "handoff", common], ""), ratio(ccpu[c, b, "centrifugo", common], ccpu[c, b, "handoff", common])
}
END {
	print "| case | Centrifugo v6.9.1 | handoff | handoff vs Centrifugo |"
	print "|---|---|---|---|"
	nb = split(backends, bk, " ")
	for (j = 1; j <= nb; j++) {
		b = bk[j]; eng = (b == "redis") ? "Redis + history" : "memory"
		if (index(cases, " A ")) printf "| A: idle RSS per socket, %d sockets (%s) | %s | %s | %s |\n", asock, eng, fmt(kib[b, "centrifugo"], " KB"), fmt(kib[b, "handoff"], " KB"), ratio(kib[b, "centrifugo"], kib[b, "handoff"])
		if (index(cases, " B ")) {
			printf "| B: %d sockets / %d channels, %d deliveries/s (%s): p99 | %s | %s | %s |\n", bsock, bch, bsock / bch * brate, eng, \
				fmt(bp99[b, "centrifugo"], " ms") bnote[b, "centrifugo"], fmt(bp99[b, "handoff"], " ms") bnote[b, "handoff"], ratio(bp99[b, "centrifugo"], bp99[b, "handoff"])
			printf "| B: server CPU-s per 100k deliveries (%s) | %s | %s | %s |\n", eng, fmt(bcpu[b, "centrifugo"], ""), fmt(bcpu[b, "handoff"], ""), ratio(bcpu[b, "centrifugo"], bcpu[b, "handoff"])
			if (b == "redis") printf "| B: server + redis-server CPU-s per 100k deliveries (%s) | %s | %s | %s |\n", eng, fmt(bcpuaux[b, "centrifugo"], ""), fmt(bcpuaux[b, "handoff"], ""), ratio(bcpuaux[b, "centrifugo"], bcpuaux[b, "handoff"])
		}
		if (index(cases, " C ")) crows("C", b, eng, sprintf("C: %d sockets / %d channels, one HTTP publish per message", csock, cch))
		if (index(cases, " Cb ")) crows("Cb", b, eng, sprintf("C′: %d sockets / %d channels, %d messages to %d channels per HTTP request (batch publish)", csock, cch, cbbatch, cbbatch))
	}
}' "$WORK/results.txt" >"$WORK/table.md"

echo
echo "== handoff vs Centrifugo $CENTRIFUGO_VERSION ($(nproc) cores; generator, servers and redis-server share them) =="
echo
cat "$WORK/table.md"
echo
echo "Every run (latency from each message's scheduled send; cores over the measured window; bg = other work before it):"
awk '
function field(k,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "-" }
{ key = $1 " " $2 " " $3 (($2 == "C" || $2 == "Cb") ? " " $4 : "") }
$0 ~ / RESULT idle / { printf "  %-28s KB/socket %-8.1f dropped %s ok %s exit %s\n", key, field("bytes_per_socket") / 1000, field("dropped"), field("ok"), field("exit"); next }
$0 ~ / RESULT fanout / { printf "  %-28s msgs/s %-7s deliv/s %-7s p50 %-7s p99 %-8s lost %-4s errs %-4s server %-5s redis %-5s gen %-5s others %-5s bg %-5s ok %s exit %s\n", key,
	field("msgs_per_s"), field("deliveries_per_s"), field("p50_ms"), field("p99_ms"), field("lost"), field("errors"), field("server_cores"), field("aux_cores"), field("gen_cores"), field("others_cores"), field("bg_cores"), field("ok"), field("exit"); next }
{ printf "  %-28s failed (exit %s)\n", key, field("exit") }
' "$WORK/results.txt"
