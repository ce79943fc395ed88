package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// runner holds what a run's GPs share and the totals they add to.
type runner struct {
	cfg      Config
	base     string
	rec      *recorder
	jpegs    [][]byte
	runID    string // keeps encounter ids unique across runs on one server
	deadline time.Time
	// loopback: the target is IPv4 loopback, so each phone dials from its
	// own 127.x.y.z address (see newPhoneClient).
	loopback bool

	mu     sync.Mutex
	totals totals
}

type totals struct {
	rounds                               int
	expected, received, lost, duplicated int
	images                               int
	bytes                                int64
}

// Run runs the load test described by cfg and reports what it measured.
// An error means the run could not start (bad config, no server); loss,
// duplicates and failed requests are in the Report (see Report.OK).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	jpegs, largest, err := makeJPEGs(cfg.ImageBytes)
	if err != nil {
		return nil, err
	}
	tgt, err := openTarget(ctx, cfg, largest)
	if err != nil {
		return nil, err
	}
	defer tgt.stop()

	r := &runner{cfg: cfg, base: tgt.url, rec: newRecorder(), jpegs: jpegs, runID: newRunID(), loopback: isIPv4Loopback(tgt.url)}
	apiClient := &http.Client{Timeout: cfg.RequestTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.GPs}}
	defer apiClient.CloseIdleConnections()
	tokens, err := newTokenSource(ctx, apiClient, tgt.url, tgt.secret)
	if err != nil {
		return nil, err
	}

	m := newMeter(cfg, tgt.inProcess)
	before, err := m.read()
	if err != nil {
		return nil, fmt.Errorf("cannot read the server's resource use: %w", err)
	}
	start := time.Now()
	if cfg.Duration > 0 {
		r.deadline = start.Add(cfg.Duration)
	}
	conn, err := r.runGPs(ctx, apiClient, tokens)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	after, err := m.read()
	if err != nil {
		return nil, fmt.Errorf("cannot read the server's resource use: %w", err)
	}
	rep := r.report(tgt, conn, elapsed)
	if after.peakRSS > 0 {
		rep.ServerCPUSeconds = (after.cpu - before.cpu).Seconds()
		rep.PeakRSSBytes = after.peakRSS
		rep.ResourceScope = m.scope
	}
	return rep, nil
}

// openTarget starts the embedded server or checks the given one answers.
func openTarget(ctx context.Context, cfg Config, largest int) (*target, error) {
	if cfg.Target == "" {
		return startEmbedded(ctx, cfg, largest)
	}
	base := strings.TrimRight(cfg.Target, "/")
	hc := &http.Client{Timeout: cfg.RequestTimeout}
	// A few tries: behind a load balancer one answer can come from a node
	// that is going away (a rolling restart, the chaos suite's kill -9),
	// while the others serve. A target that never answers still fails.
	var err error
	for attempt := 1; attempt <= healthzAttempts; attempt++ {
		if err = call(ctx, hc, "healthz", http.MethodGet, base+"/healthz", "", nil, http.StatusOK, nil); err == nil {
			return &target{url: base, secret: cfg.JWTSecret, stop: func() {}}, nil
		}
		if attempt < healthzAttempts {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("target %s is not answering /healthz: %w", base, err)
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
	}
	return nil, fmt.Errorf("target %s is not answering /healthz (%d tries): %w", base, healthzAttempts, err)
}

// healthzAttempts is how many times the start checks the target.
const healthzAttempts = 4

// connStats sums the desktops' socket counters.
type connStats struct{ reconnects, resyncs, unplanned int }

// runGPs starts every GP's desktop socket and round loop at once and
// waits for all to finish; then it closes the sockets.
func (r *runner) runGPs(ctx context.Context, apiClient *http.Client, tokens *tokenSource) (connStats, error) {
	gps := make([]*gp, r.cfg.GPs)
	for n := range gps {
		tok := tokens.forGP(n)
		d, err := newDesktop(r.base, tok, r.cfg.DisconnectRate, uint64(n)+1, r.rec)
		if err != nil {
			return connStats{}, err
		}
		gps[n] = &gp{n: n, r: r, desk: d, api: &deskAPI{hc: apiClient, base: r.base, rec: r.rec, token: tok}}
	}
	sockCtx, closeSockets := context.WithCancel(ctx)
	defer closeSockets()
	var sockets, work sync.WaitGroup
	for _, g := range gps {
		sockets.Go(func() { g.desk.run(sockCtx) })
		work.Go(func() { g.loop(ctx) })
	}
	work.Wait()
	closeSockets()
	sockets.Wait()
	var cs connStats
	for _, g := range gps {
		cs.reconnects += int(g.desk.reconnects())
		cs.resyncs += int(g.desk.resyncs.Load())
		cs.unplanned += int(g.desk.unplanned.Load())
	}
	return cs, nil
}

func (r *runner) phoneClient(n int) *http.Client {
	if r.loopback {
		return newPhoneClient(phoneAddr(n), r.cfg.RequestTimeout)
	}
	return newPhoneClient(nil, r.cfg.RequestTimeout)
}

func (r *runner) fail(err error) { r.rec.fail(errorKind(err)) }

func (r *runner) addImage(size int) {
	r.mu.Lock()
	r.totals.images++
	r.totals.bytes += int64(size)
	r.mu.Unlock()
}

// addRound adds a finished round's event accounting; events nobody asked
// for are errors of kind "unexpected event: <type>".
func (r *runner) addRound(t tally) {
	for _, typ := range t.unexpected {
		r.rec.fail("unexpected event: " + typ)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.totals.expected += t.expected
	r.totals.received += t.received
	r.totals.lost += t.lost
	r.totals.duplicated += t.duplicated
}

func (r *runner) roundDone() {
	r.mu.Lock()
	r.totals.rounds++
	r.mu.Unlock()
	if r.cfg.OnRound != nil {
		r.cfg.OnRound()
	}
}

// makeJPEGs generates the few distinct photos the run reuses; it returns
// them and the size of the largest.
func makeJPEGs(target int) ([][]byte, int, error) {
	out := make([][]byte, distinctJPEGs)
	largest := 0
	for i := range out {
		b, err := makeJPEG(target, uint64(i)+1)
		if err != nil {
			return nil, 0, err
		}
		out[i], largest = b, max(largest, len(b))
	}
	return out, largest, nil
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// isIPv4Loopback reports whether phones can dial base from any 127.x.y.z.
// "localhost" counts: a dialer bound to an IPv4 source address only tries
// the name's IPv4 addresses.
func isIPv4Loopback(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Hostname(), "localhost") {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.To4() != nil && ip.IsLoopback()
}

// stopped reports whether a duration-limited run should start no more
// rounds.
func (r *runner) stopped() bool {
	return !r.deadline.IsZero() && !time.Now().Before(r.deadline)
}
