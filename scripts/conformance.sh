#!/usr/bin/env bash
# make conformance: ably-go v1.4.0's own integration suite against a handoff
# node. The suite comes from the Go module proxy (module cache), is copied to a
# temp dir and its harness (ablytest) patched to plain HTTP on a loopback port;
# the project holds this script, never a copy of the suite.
#
# Each test runs in its own process with a timeout. A node (built from this
# repo, --test-provisioner on 127.0.0.1) serves each backend: the embedded
# default (memory) and Redis (a redis-server started here on a free port).
#
# What runs where (CONF_SET):
#   priority (default): the priority tests (scripts/conformance-priority.txt) in
#            all four combinations memory/redis x json/msgpack, and every other
#            integration test once, on memory-msgpack (ably-go's default protocol).
#   all:     every integration test in all four combinations.
#
# Gate: scripts/conformance-known-failures.txt lists "Test [variant] | reason".
# variant is one of memory-json memory-msgpack redis-json redis-msgpack, or
# json/msgpack/memory/redis, or * (every combination). A failure not listed
# fails the run; so does a listed entry that passed in a combination it names.
#
# Environment: CONF_SET, CONF_JOBS (parallel test processes, default 2),
# CONF_TIMEOUT (per test, default 45s), CONF_RUN (a regexp: only these tests,
# no gate on the others), CONF_KEEP=1 keeps the work dir.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
GO=${GO:-go}
ABLY_GO=github.com/ably/ably-go@v1.4.0
CONF_SET=${CONF_SET:-priority}
CONF_JOBS=${CONF_JOBS:-2}
CONF_TIMEOUT=${CONF_TIMEOUT:-45s}
CONF_RUN=${CONF_RUN:-}
KNOWN="$ROOT/scripts/conformance-known-failures.txt"
PRIORITY="$ROOT/scripts/conformance-priority.txt"

die() { echo "conformance: $*" >&2; exit 2; }
command -v redis-server >/dev/null || die "redis-server is missing: make deps (make test) installs it"
command -v timeout >/dev/null || die "timeout (coreutils) is missing"

WORK=$(mktemp -d /tmp/handoff-conformance.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [[ "${CONF_KEEP:-}" != 1 ]]; then rm -rf "$WORK"; else echo "conformance: kept $WORK"; fi
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1. The suite, from the module cache, patched to plain HTTP.
SRC=$(cd "$ROOT" && $GO mod download -json "$ABLY_GO" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d "$SRC" ]] || die "could not download $ABLY_GO from the module proxy"
cp -r "$SRC" "$WORK/ably-go" && chmod -R u+w "$WORK/ably-go"
python3 - "$WORK/ably-go/ablytest" <<'EOF' || die "patching ablytest failed (has ably-go changed?)"
import sys, re
d = sys.argv[1]
def patch(path, old, new):
    s = open(path).read()
    if s.count(old) != 1:
        raise SystemExit("patch anchor not found once in %s: %r" % (path, old))
    open(path, "w").write(s.replace(old, new))
# Plain HTTP on HANDOFF_CONF_PORT, loopback.
patch(d + "/ablytest.go", 'var Endpoint = "nonprod:sandbox"',
      'var Endpoint = "nonprod:sandbox"\n\n// Port is the handoff node\'s plain-HTTP port (patched in by handoff\'s conformance.sh).\nvar Port, _ = strconv.Atoi(os.Getenv("HANDOFF_CONF_PORT"))')
patch(d + "/sandbox.go", "\t\tably.WithEndpoint(app.Endpoint),\n",
      "\t\tably.WithEndpoint(app.Endpoint),\n\t\tably.WithTLS(false),\n\t\tably.WithPort(Port),\n\t\tably.WithInsecureAllowBasicAuthWithoutTLS(),\n")
patch(d + "/sandbox.go", 'func (app *Sandbox) URL(paths ...string) string {\n',
      'func (app *Sandbox) URL(paths ...string) string {\n\treturn fmt.Sprintf("http://%s:%d/%s", app.Endpoint, Port, path.Join(paths...))\n}\n\nfunc (app *Sandbox) ablyURL(paths ...string) string {\n')
EOF
echo "conformance: building ably-go's test binary and handoff"
(cd "$WORK/ably-go" && $GO test -c -o "$WORK/ably.test" ./ably) || die "building ably-go's tests failed"
(cd "$ROOT" && $GO build -o "$WORK/handoff" ./cmd/handoff) || die "building handoff failed"

# 2. The test list: every Test* of ably-go's *integration_test.go files.
grep -H '^func Test' "$WORK"/ably-go/ably/*integration_test.go |
	sed 's|.*/\([a-z_]*\)_test.go:func \(Test[A-Za-z0-9_]*\).*|\2 \1|' | sort -u >"$WORK/tests"

# 3. One node per backend.
start_node() { # backend → sets PORT
	local backend=$1 extra=()
	PORT=$(freeport)
	if [[ $backend == redis ]]; then
		local rport; rport=$(freeport)
		redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$WORK/redis.log" 2>&1 &
		PIDS+=($!)
		for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
		extra=(--redis-addrs "127.0.0.1:$rport")
	fi
	"$WORK/handoff" serve --addr "127.0.0.1:$PORT" --test-provisioner --data-dir "$WORK/data-$backend" \
		--jwt-secret "conformance-only-secret-$(date +%s%N)" "${extra[@]}" >"$WORK/node-$backend.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
	die "the $backend node did not start: $(tail -5 "$WORK/node-$backend.log")"
}

# run_one runs one test in its own process; a failure is retried once (on a
# 2-core machine shared with other work a 10 s wait can starve) and a pass on
# the retry is reported as FLAKY, which passes the gate but is printed. A test
# the known-failures file names is not retried.
run_one() { # name combo port → prints "name combo PASS|FLAKY|FAIL"
	local name=$1 combo=$2 port=$3 proto=application/x-msgpack
	[[ $combo == *-json ]] && proto=application/json
	local log="$WORK/logs/$combo/$name.log" try tries="1 2"
	grep -q "^$name[[:space:]]" "$KNOWN" && tries=1 # a known failure is not retried
	for try in $tries; do
		if HANDOFF_CONF_PORT=$port ABLY_ENDPOINT=127.0.0.1 ABLY_PROTOCOL=$proto ABLY_TIMEOUT=10s \
			timeout -k 5 "$CONF_TIMEOUT" "$WORK/ably.test" -test.run "^${name}\$" -test.count 1 >"$log.$try" 2>&1; then
			[[ $try == 1 ]] && echo "$name $combo PASS" || echo "$name $combo FLAKY"
			mv "$log.$try" "$log"
			return
		fi
	done
	[[ -f "$log.2" ]] && mv "$log.1" "$log.first"
	mv "$log.${tries##* }" "$log"
	echo "$name $combo FAIL"
}
export -f run_one
export WORK CONF_TIMEOUT KNOWN

: >"$WORK/results"
for backend in memory redis; do
	start_node "$backend"
	for fmt in json msgpack; do
		combo=$backend-$fmt
		mkdir -p "$WORK/logs/$combo"
		while read -r name file; do
			[[ -n "$CONF_RUN" && ! "$name" =~ $CONF_RUN ]] && continue
			if [[ $CONF_SET == all || $combo == memory-msgpack ]] || grep -qx "$name" "$PRIORITY"; then
				echo "$name $combo $PORT"
			fi
		done <"$WORK/tests"
	done | xargs -r -P "$CONF_JOBS" -n 3 bash -c 'run_one "$@"' _ >>"$WORK/results"
done

# 4. The gate.
python3 - "$WORK" "$KNOWN" "$CONF_RUN" <<'EOF'
import sys, re, collections
work, known_path, only = sys.argv[1], sys.argv[2], sys.argv[3]
areas = {}
for line in open(work + "/tests"):
    name, f = line.split()
    a = ("presence" if "presence" in f else "auth" if f.startswith("auth_") else
         "connection" if f.startswith(("realtime_conn", "realtime_client", "event_emitter")) else
         "channel" if f.startswith("realtime_channel") else "REST")
    areas[name] = a
combos = ["memory-json", "memory-msgpack", "redis-json", "redis-msgpack"]
def expand(v):
    if v in ("", "*"): return combos
    return [c for c in combos if c == v or v in c.split("-")]
known = {}
for ln, line in enumerate(open(known_path), 1):
    line = line.strip()
    if not line or line.startswith("#"): continue
    head, _, reason = line.partition("|")
    parts = head.split()
    if not reason.strip() or not parts:
        raise SystemExit("%s:%d: each entry is 'TestName [variant] | reason'" % (known_path, ln))
    for c in expand(parts[1] if len(parts) > 1 else "*"):
        known[(parts[0], c)] = reason.strip()
res, flaky = {}, []
for line in open(work + "/results"):
    n, c, r = line.split()
    res[(n, c)] = "PASS" if r == "FLAKY" else r
    if r == "FLAKY": flaky.append((n, c))
if not res:
    # An empty run passes nothing: the test list or the runner broke
    # (or CONF_RUN matched no test).
    raise SystemExit("conformance: no test ran (%d tests listed from ably-go)" % len(areas))
count = collections.defaultdict(lambda: [0, 0, 0])  # pass, known fail, total
new, stale = [], []
for (n, c), r in sorted(res.items()):
    a = areas.get(n, "REST")
    count[a][2] += 1
    if r == "PASS":
        count[a][0] += 1
        if (n, c) in known: stale.append((n, c))
    else:
        if (n, c) in known: count[a][1] += 1
        else: new.append((n, c))
print("\nconformance: ably-go v1.4.0 integration tests against handoff (test runs per area, all combinations)")
print("%-11s %6s %12s %6s" % ("area", "pass", "known-fail", "runs"))
tp = tk = tt = 0
for a in ["connection", "channel", "REST", "auth", "presence"]:
    p, k, t = count[a]; tp += p; tk += k; tt += t
    print("%-11s %6d %12d %6d" % (a, p, k, t))
print("%-11s %6d %12d %6d" % ("total", tp, tk, tt))
per = collections.Counter(c for (n, c), r in res.items() if r == "PASS")
tot = collections.Counter(c for (n, c) in res)
print("per combination: " + ", ".join("%s %d/%d" % (c, per[c], tot[c]) for c in combos if tot[c]))
for n, c in flaky:
    print("flaky (failed, then passed on its retry): %s %s" % (n, c))
for n, c in new:
    print("NEW FAILURE: %s %s (log: logs/%s/%s.log)" % (n, c, c, n))
for n, c in stale:
    print("NOW PASSES, remove from the known-failures file: %s %s" % (n, c))
sys.exit(1 if new or stale else 0)
EOF
rc=$?
if [[ $rc != 0 ]]; then
	CONF_KEEP=1
	echo "conformance: FAILED (logs in $WORK/logs)"
fi
exit $rc
