//go:build integration

package chaos

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/testutil"
	"github.com/handoff-health/handoff/loadtest"
)

// Traffic each scenario waits for, per probe channel (about 40 publishes
// a second each): before the fault, between its steps, and after it.
const (
	warmup     = 10
	during     = 20
	afterFault = 20
)

// scenario is one fault and what it may cost.
type scenario struct {
	name string
	// keepsData: Redis keeps every acknowledged write through this fault,
	// so no accepted event may be lost at all, signalled or not.
	keepsData bool
	// wipes: the fault loses the sessions, so a resubscribe may rightly
	// be refused not_found.
	wipes bool
	// load runs the load test (loadtest package, a few GPs) through the
	// balancer while the fault happens.
	load  bool
	setup func(t *testing.T) *env
	fault func(t *testing.T, e *env, p *probe)
}

// env is one scenario's deployment and the Redis servers behind it.
type env struct {
	d        *deployment
	redis    *testutil.Redis // standalone, or the Sentinel's first master
	replica  *testutil.Redis // the Sentinel's replica
	sentinel string
	cluster  *testutil.RedisClusterHA
}

func standalone(args ...string) func(t *testing.T) *env {
	return func(t *testing.T) *env {
		r := testutil.StartRedisWith(t, args...)
		return &env{redis: r, d: newDeployment(t, r.Addr, "")}
	}
}

var scenarios = []scenario{
	{
		name: "baseline, no fault", keepsData: true, load: true,
		setup: standalone(),
		fault: func(t *testing.T, e *env, p *probe) { p.waitAccepted(t, "traffic", during) },
	},
	{
		name: "kill -9 one node, restart it", keepsData: true, load: true,
		setup: standalone(),
		fault: func(t *testing.T, e *env, p *probe) {
			e.d.nodes[1].kill()
			p.waitAccepted(t, "traffic through the surviving node", during)
			e.d.nodes[1].start()
		},
	},
	{
		name: "Redis restart without persistence (data wiped)", wipes: true,
		setup: standalone(),
		fault: func(t *testing.T, e *env, p *probe) {
			e.redis.Kill()
			p.waitAttempts(t, "publishes while Redis is down", 8)
			e.redis.Start()
		},
	},
	{
		name: "Redis restart with AOF (appendfsync always)", keepsData: true,
		setup: standalone("--appendonly", "yes", "--appendfsync", "always"),
		fault: func(t *testing.T, e *env, p *probe) {
			e.redis.Kill()
			p.waitAttempts(t, "publishes while Redis is down", 8)
			e.redis.Start()
		},
	},
	{
		name:  "Redis rollback to an older RDB snapshot",
		setup: standalone(),
		fault: func(t *testing.T, e *env, p *probe) {
			snap := e.redis.Snapshot()
			p.waitAccepted(t, "events after the snapshot", during)
			e.redis.RestartFrom(snap)
		},
	},
	{
		name: "Sentinel failover to a replica in sync", keepsData: true,
		setup: sentinelSetup,
		fault: func(t *testing.T, e *env, p *probe) {
			// The publishers pause only until the replica has every write,
			// so that killing the master loses nothing; they publish again
			// (and get 503s) while Sentinel fails over.
			p.hold(t)
			testutil.EventuallyWithin(t, "the replica has every write", settleBound, func() bool { return replicaCaughtUp(e.redis, e.replica) })
			e.redis.Kill()
			p.release()
			testutil.EventuallyWithin(t, "the sentinel promotes the replica", settleBound, func() bool {
				return sentinelMasterAddr(e.sentinel) == e.replica.Addr
			})
		},
	},
	{
		name:  "Sentinel failover to a lagging replica",
		setup: sentinelSetup,
		fault: func(t *testing.T, e *env, p *probe) {
			e.replica.Pause() // from here the replica falls behind
			p.waitAccepted(t, "events the replica does not get", during)
			e.redis.Kill()
			e.replica.Resume()
			testutil.EventuallyWithin(t, "the sentinel promotes the replica", settleBound, func() bool {
				return sentinelMasterAddr(e.sentinel) == e.replica.Addr
			})
		},
	},
	{
		name: "Cluster (3 masters + replicas): a master killed",
		setup: func(t *testing.T) *env {
			rc := testutil.StartRedisClusterHA(t)
			return &env{cluster: rc, d: newDeployment(t, rc.Addrs(), "")}
		},
		fault: func(t *testing.T, e *env, p *probe) {
			// Kill the master serving most probe channels.
			serves := make([]int, 3)
			for _, ch := range p.chans {
				serves[e.cluster.MasterOf(t, "{"+ch.name+"}")]++ // the channel is its keys' hash tag
			}
			victim := 0
			for i, n := range serves {
				if n > serves[victim] {
					victim = i
				}
			}
			e.cluster.Masters[victim].Kill()
			testutil.EventuallyWithin(t, "the dead master's replica takes over", settleBound, e.cluster.Replicas[victim].IsMaster)
			testutil.EventuallyWithin(t, "the cluster is ok again", settleBound, e.cluster.Masters[(victim+1)%3].ClusterOK)
		},
	},
}

// sentinelSetup starts a master, its replica and one Sentinel, and the
// nodes on the Sentinel.
func sentinelSetup(t *testing.T) *env {
	m := testutil.StartRedis(t)
	r := testutil.StartRedisWith(t, "--replicaof", "127.0.0.1", fmt.Sprint(m.Port))
	testutil.EventuallyWithin(t, "the replica is in sync", readyBound, r.InSync)
	s := startSentinel(t, m)
	return &env{redis: m, replica: r, sentinel: s, d: newDeployment(t, s, sentinelMaster)}
}

// TestChaos runs every scenario, one at a time (the machine is small), and
// prints the results table. CHAOS_TABLE=<file> also writes it to a file.
func TestChaos(t *testing.T) {
	var rows []row
	for _, sc := range scenarios {
		rw := row{Scenario: sc.name, Verdict: "did not complete"}
		ran := false
		t.Run(sc.name, func(t *testing.T) { ran = true; runScenario(t, sc, &rw) })
		if ran { // -run may filter it out
			rows = append(rows, rw)
		}
	}
	var b strings.Builder
	b.WriteString(tableHeader)
	for _, rw := range rows {
		b.WriteString(rw.markdown())
	}
	t.Log("results:\n" + b.String())
	if path := os.Getenv("CHAOS_TABLE"); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func runScenario(t *testing.T, sc scenario, rw *row) {
	e := sc.setup(t)
	p := newProbe(t, e.d)
	p.start()
	p.waitAccepted(t, "warm-up traffic", warmup)
	var load *loadCounts
	loadFinished := make(chan struct{})
	if sc.load {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { defer close(loadFinished); load = runLoad(ctx, e.d) }()
		t.Cleanup(func() { cancel(); <-loadFinished }) // a scenario that stopped early
	} else {
		close(loadFinished)
	}
	t.Cleanup(func() {
		// A scenario that stopped early: the nodes' logs say why. (A
		// verdict's failure is explained by its counts and lost events.)
		if rw.Verdict == "did not complete" {
			for _, n := range e.d.nodes {
				t.Logf("%s log:\n%s", n.name, n.logTail())
			}
		}
	})
	p.faultAt = time.Now()
	sc.fault(t, e, p)
	p.waitAccepted(t, "traffic after the fault", afterFault)
	<-loadFinished
	rw.Load = load
	p.stop(t)
	rw.Counts = p.tally()
	rw.Verdict = verdict(sc, rw)
	if rw.Verdict != "pass" {
		t.Errorf("%s: %s\n%s", sc.name, rw.Verdict, tableHeader+rw.markdown())
	}
	t.Log("\n" + tableHeader + rw.markdown())
	t.Logf("failed publishes by reason: %v", rw.Counts.failures)
	for _, l := range rw.Counts.lost {
		t.Log("lost: " + l)
	}
}

// loadGPs and friends keep the load test small: it proves the full
// capture flow (QR claim, uploads, register, commit) works across the
// nodes during the fault, not throughput.
const (
	loadGPs        = 6
	loadImages     = 2
	loadImageBytes = 20_000
	loadDuration   = 4 * time.Second
)

// runLoad runs the load test against the balancer; a run that could not
// start counts as one error.
func runLoad(ctx context.Context, d *deployment) *loadCounts {
	rep, err := loadtest.Run(ctx, loadtest.Config{
		Target: d.url, JWTSecret: d.secret, GPs: loadGPs, Images: loadImages, ImageBytes: loadImageBytes,
		Duration: loadDuration, EventTimeout: settleBound, RequestTimeout: 10 * time.Second,
	})
	if err != nil {
		return &loadCounts{Errors: 1, Err: err.Error()}
	}
	return &loadCounts{Expected: rep.EventsExpected, Received: rep.EventsReceived, Lost: rep.Lost,
		Duplicated: rep.Duplicated, Errors: rep.Errors, Resyncs: rep.Resyncs}
}

// verdict checks the goals of issue 16: no silent loss, no stale or
// reissued cursor, no duplicate, no refusal that lies, and no loss at all
// where Redis kept its data.
func verdict(sc scenario, rw *row) string {
	c := rw.Counts
	var bad []string
	check := func(ok bool, what string) {
		if !ok {
			bad = append(bad, what)
		}
	}
	check(c.LostSilent == 0, fmt.Sprintf("%d lost silently", c.LostSilent))
	check(c.Stale == 0, fmt.Sprintf("%d stale", c.Stale))
	check(c.Reissued == 0, fmt.Sprintf("%d reissued cursors", c.Reissued))
	check(c.Duplicated == 0, fmt.Sprintf("%d duplicated", c.Duplicated))
	if sc.keepsData {
		check(c.LostSignalled == 0, fmt.Sprintf("%d lost (signalled) though Redis kept its data", c.LostSignalled))
	}
	for _, code := range c.Refusals {
		check(sc.wipes && code == "not_found", "a channel refused "+code)
	}
	if l := rw.Load; l != nil {
		check(l.Err == "", "the load test did not run: "+l.Err)
		check(l.Lost == 0, fmt.Sprintf("load test lost %d", l.Lost))
		check(l.Duplicated == 0, fmt.Sprintf("load test duplicated %d", l.Duplicated))
		check(l.Expected > 0, "load test completed nothing")
	}
	if len(bad) == 0 {
		return "pass"
	}
	return "FAIL: " + strings.Join(bad, "; ")
}
