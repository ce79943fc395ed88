# scripts/lib/bench.sh — what the bench scripts (bench-realtime.sh,
# bench-ably.sh, bench-vs-centrifugo.sh) share: a work directory and
# throwaway credentials, starting and stopping handoff and redis-server on
# free loopback ports, waiting for a quiet machine. Sourced, not run; the
# sourcing script has `set -euo pipefail` and is at the repository root.
#
# bench_init sets WORK, BIN ($WORK/handoff), JWT_SECRET, API_KEY and the
# PIDs/ports below, and stops everything (keeping $WORK's text, logs and
# configs in $OUT when set) when the script exits or is interrupted.

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

bench_init() { # name: the work directory's prefix
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	BIN="$WORK/handoff"
	SERVER_PID=""
	REDIS_PID=""
	REDIS_PORT=""
	PORT=""
	# Throwaway credentials, valid only for these servers.
	JWT_SECRET="bench-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
	API_KEY="bench:$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

bench_cleanup() {
	stop_server
	stop_redis
	if [[ -n ${OUT:-} ]]; then
		mkdir -p "$OUT"
		cp "$WORK"/*.txt "$WORK"/*.err "$WORK"/*.log "$WORK"/*.json "$WORK"/*.md "$OUT"/ 2>/dev/null || true
	fi
	rm -rf "$WORK"
}

# redacted prints its arguments with the throwaway credentials hidden, for
# a log line that shows a command.
redacted() {
	local s="$*"
	s=${s//$JWT_SECRET/<jwt-secret>}
	echo "${s//$API_KEY/<api-key>}"
}

# log_machine logs the cores, CPU model and Go version (and open-file
# limit) a run's numbers were taken on.
log_machine() {
	log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3), open files $(ulimit -n)"
}

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

stop_server() { stop_pid "$SERVER_PID" "server"; SERVER_PID=""; }
stop_redis() { stop_pid "$REDIS_PID" "redis-server"; REDIS_PID=""; }

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

start_redis() { # label: a fresh redis-server on a free port; sets REDIS_PORT and REDIS_PID
	local dir="$WORK/redis-$1" i
	command -v redis-server >/dev/null || { log "redis-server not found: make deps installs it (apt-get install -y redis-server)"; exit 1; }
	rm -rf "$dir" && mkdir -p "$dir"
	REDIS_PORT=$(free_port)
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
		--protected-mode no --daemonize no --loglevel warning --maxclients 1000 >"$WORK/redis-$1.log" 2>&1 &
	REDIS_PID=$!
	for i in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && return
		sleep 0.1
	done
	log "redis-server did not start"; cat "$WORK/redis-$1.log" >&2; exit 1
}

# start_handoff backend label: a fresh `handoff serve` ($BIN) on a free
# port, on the memory backend or on a fresh redis-server; sets PORT and
# SERVER_PID. It returns once /readyz answers and the publish route exists.
start_handoff() {
	local backend=$1 label=$2 i code
	PORT=$(free_port)
	local args=(serve --addr "127.0.0.1:$PORT" --log-level warn --log-format json
		--data-dir "$WORK/data-$label" --jwt-secret "$JWT_SECRET" --api-keys "$API_KEY"
		--shutdown-timeout 5s
		# every bench socket comes from 127.0.0.1: lift the per-address caps
		--max-conns-per-addr 0 --max-unauth-sockets-per-addr 100000
		# one capture session per bench channel (1,000 in case 2), all of one facility; the default cap is 200
		--max-open-sessions-per-facility 10000)
	if [[ $backend == redis ]]; then
		start_redis "$label"
		args+=(--redis-addrs "127.0.0.1:$REDIS_PORT" --redis-prefix "bench$RANDOM")
	fi
	"$BIN" "${args[@]}" >"$WORK/server-$label.log" 2>&1 &
	SERVER_PID=$!
	for i in $(seq 1 150); do
		if curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then
			# a publish without credentials: 401 when the route exists
			code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/channels/probe/messages" || true)
			[[ $code == 401 ]] && return
			log "handoff serve does not answer POST /channels/{channel}/messages ($code)"; exit 1
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
	echo $(((u + n + s + q + sq + st - b1) * 100 * $(nproc) / (u + n + s + i + w + q + sq + st - t1 + 1)))
}

# quiet_wait waits (at most QUIET_WAIT seconds) for the machine to use at
# most QUIET_MAX cores, so other work disturbs a run less. It never fails.
quiet_wait() {
	local max waited=0 busy=0
	max=$(awk -v q="$QUIET_MAX" 'BEGIN { printf "%d", q * 100 }')
	while ((waited < QUIET_WAIT)); do
		busy=$(busy_cores)
		((busy <= max)) && return 0
		waited=$((waited + 1))
	done
	((QUIET_WAIT == 0)) || log "the machine is still busy ($busy/100 cores of other work) after ${QUIET_WAIT}s; running anyway (noisy)"
}

seconds() { # "20s" -> 20 (whole seconds, rounded up; the bench takes Go durations)
	local d=$1
	case $d in *ms) echo 1 ;; *m) echo $((${d%m} * 60)) ;; *s) echo "${d%s}" | awk '{ printf "%d", $1 + 0.999 }' ;; *) echo "$d" ;; esac
}
