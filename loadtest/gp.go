package loadtest

import (
	"context"
	"fmt"

	"github.com/google/uuid"
)

// gp is one simulated GP: a desktop (socket and HTTP calls) that runs
// rounds one after another, and a fresh phone for each round.
type gp struct {
	n    int
	r    *runner
	desk *desktop
	api  *deskAPI
}

// loop runs the GP's rounds until Rounds are done, Duration has passed or
// ctx ends.
func (g *gp) loop(ctx context.Context) {
	for i := 0; i < g.r.cfg.Rounds; i++ {
		if ctx.Err() != nil || g.r.stopped() {
			return
		}
		g.round(ctx, i)
		g.r.roundDone()
	}
}

// round runs one capture session end to end. A failed step is recorded
// and ends the phone's or desktop's part of the flow, but the desktop
// still waits out the events already owed, so loss is counted precisely.
func (g *gp) round(ctx context.Context, i int) {
	enc := fmt.Sprintf("lt-%s-%d-%d", g.r.runID, g.n, i)
	sess, err := g.api.create(ctx, enc, fmt.Sprintf("lt-pt-%d", g.n))
	if err != nil {
		g.r.fail(err)
		return
	}
	rd := newRound(sess.Channel, g.r.rec)
	defer func() { g.r.addRound(rd.tally()) }()
	if err := g.desk.watch(rd); err != nil {
		g.r.fail(&stepError{"realtime: subscribe", err})
		return
	}
	defer g.desk.unwatch(rd)
	timeout := g.r.cfg.EventTimeout
	if !rd.waitSubscribed(ctx, timeout) {
		// Not fatal: the subscription replays from "0" once it lands.
		g.r.fail(&stepError{"realtime: subscribe timeout", fmt.Errorf("no subscribed frame in %s", timeout)})
	}
	registered := g.phoneSide(ctx, rd, sess.Token, i)
	if len(registered) > 0 {
		// A missing image.added is counted as lost at the end; the GP
		// commits what the snapshot shows either way.
		rd.waitExpected(ctx, timeout, evImageAdded+"/")
		g.commit(ctx, rd, sess.SessionID, registered)
	}
	rd.waitExpected(ctx, timeout, "")
}

// phoneSide claims the QR token and sends the round's photos one after
// another, as a GP photographing a lesion does. It returns the ids of the
// images registered.
func (g *gp) phoneSide(ctx context.Context, rd *round, qrToken string, i int) []string {
	ph := &phone{hc: g.r.phoneClient(i*g.r.cfg.GPs + g.n), base: g.r.base, rec: g.r.rec}
	defer ph.close()
	if err := ph.claim(ctx, qrToken); err != nil {
		g.r.fail(err)
		return nil
	}
	rd.expect(evMobileConnected)
	var registered []string
	for k := 0; k < g.r.cfg.Images; k++ {
		id := uuid.NewString()
		data := g.r.jpegs[(g.n+i+k)%len(g.r.jpegs)]
		at, err := ph.sendImage(ctx, id, data)
		if err != nil {
			g.r.fail(err)
			return registered
		}
		rd.registeredAt(id, at)
		g.r.addImage(len(data))
		registered = append(registered, id)
	}
	return registered
}

// commit checks the snapshot, commits, and expects the events the reply
// promises: image.committed per committed image, session.committed when
// the session closed.
func (g *gp) commit(ctx context.Context, rd *round, sessionID string, registered []string) {
	if err := g.api.snapshot(ctx, sessionID, registered); err != nil {
		g.r.fail(err)
	}
	reply, err := g.api.commit(ctx, sessionID)
	if err != nil {
		g.r.fail(err)
		return
	}
	for _, res := range reply.Results {
		if res.Status == "committed" {
			rd.expect(evImageCommitted + "/" + res.ImageID)
		}
	}
	if reply.sessionClosed() {
		rd.expect(evSessionCommitted)
	}
	if reply.Committed != len(registered) || reply.Failed != 0 || !reply.sessionClosed() {
		g.r.fail(&stepError{"commit: not all committed", fmt.Errorf("%d of %d committed, %d failed, session %q",
			reply.Committed, len(registered), reply.Failed, reply.SessionStatus)})
	}
}
