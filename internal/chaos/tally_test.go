//go:build integration

package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// counts is one scenario's row of the results table.
type counts struct {
	Accepted  int // publishes answered 201 with a cursor
	Failed    int // publishes answered otherwise (503, a reset connection)
	Delivered int // distinct accepted events the subscribers received
	// LostSignalled are accepted events never delivered, whose subscriber
	// was told after the publish was answered that it missed something
	// (a resync, recovered:false, or a refused channel).
	LostSignalled int
	// LostSilent are accepted events never delivered, with no such word.
	LostSilent int
	// Duplicated are deliveries of an event already delivered.
	Duplicated int
	// Stale are deliveries under a cursor other than the one the publish
	// was answered with, or after a later event of the same channel.
	Stale int
	// Reissued are cursors given to two different events (publish replies
	// and deliveries together).
	Reissued int
	// FailedButDelivered are publishes answered as failed whose event
	// was delivered anyway: allowed, a client retrying must dedupe.
	FailedButDelivered int
	Resyncs            int      // resyncs the subscribers got
	Refusals           []string // codes subscribers' channels were refused with

	failures map[string]int // why publishes failed, for the log
	lost     []string       // each lost event, for the log
}

// tally counts one channel's record into c.
func (ch *probeChannel) tally(c *counts, faultAt time.Time) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	byCursor := map[string]int{} // cursor → seq
	reissue := func(cursor string, seq int) {
		if prev, ok := byCursor[cursor]; ok && prev != seq {
			c.Reissued++
			return
		}
		byCursor[cursor] = seq
	}
	for _, r := range ch.published {
		if r.cursor != "" {
			c.Accepted++
			reissue(r.cursor, r.seq)
		} else {
			c.Failed++
			c.failures[r.failed]++
		}
	}
	seen := map[int]bool{}
	highest := 0
	for _, dl := range ch.deliveries {
		reissue(dl.cursor, dl.seq)
		if seen[dl.seq] {
			c.Duplicated++
			continue
		}
		seen[dl.seq] = true
		var r *publishResult
		if dl.seq >= 1 && dl.seq <= len(ch.published) {
			r = ch.published[dl.seq-1]
		}
		switch {
		case r == nil:
			c.Stale++ // an event this probe never published on this channel
		case r.cursor == "":
			c.FailedButDelivered++
		case r.cursor != dl.cursor || dl.seq < highest:
			c.Stale++
		default:
			c.Delivered++
		}
		highest = max(highest, dl.seq)
	}
	for _, r := range ch.published {
		if r.cursor == "" || seen[r.seq] {
			continue
		}
		if ch.signalledAfter(r.sent) {
			c.LostSignalled++
		} else {
			c.LostSilent++
		}
		c.lost = append(c.lost, fmt.Sprintf("%s seq %d cursor %s sent %+.3fs replied %+.3fs signalled %v",
			ch.name[len(ch.name)-6:], r.seq, r.cursor, r.sent.Sub(faultAt).Seconds(), r.replied.Sub(faultAt).Seconds(),
			ch.signalTimes(faultAt)))
	}
	c.Resyncs += len(ch.signals) - len(ch.refusals)
	c.Refusals = append(c.Refusals, ch.refusals...)
}

// signalTimes lists the signals' times relative to t, for the log.
func (ch *probeChannel) signalTimes(t time.Time) []string {
	var s []string
	for _, at := range ch.signals {
		s = append(s, fmt.Sprintf("%+.3fs", at.Sub(t).Seconds()))
	}
	return s
}

// signalledAfter reports whether the subscriber was told it missed
// something at or after t.
func (ch *probeChannel) signalledAfter(t time.Time) bool {
	for _, s := range ch.signals {
		if !s.Before(t) {
			return true
		}
	}
	return false
}

func (p *probe) tally() counts {
	c := counts{failures: map[string]int{}}
	for _, ch := range p.chans {
		ch.tally(&c, p.faultAt)
	}
	sort.Strings(c.Refusals)
	return c
}

// loadCounts is the load test's summary in a scenario that ran it.
type loadCounts struct {
	Expected, Received, Lost, Duplicated, Errors, Resyncs int
	Err                                                   string // why the run could not start
}

// row is one line of the results table.
type row struct {
	Scenario string
	Counts   counts
	Load     *loadCounts
	Verdict  string
}

const tableHeader = "| scenario | accepted | failed | delivered | lost, signalled | lost, silent | duplicated | stale | reissued cursors | failed but delivered | resyncs | refused | load test: expected/received/lost/dup/errors | verdict |\n" +
	"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"

func (r row) markdown() string {
	c := r.Counts
	load := "–"
	if r.Load != nil {
		load = fmt.Sprintf("%d/%d/%d/%d/%d", r.Load.Expected, r.Load.Received, r.Load.Lost, r.Load.Duplicated, r.Load.Errors)
	}
	refused := "0"
	if len(c.Refusals) > 0 {
		refused = fmt.Sprintf("%d (%s)", len(c.Refusals), strings.Join(c.Refusals, ", "))
	}
	return fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s |\n",
		r.Scenario, c.Accepted, c.Failed, c.Delivered, c.LostSignalled, c.LostSilent, c.Duplicated, c.Stale,
		c.Reissued, c.FailedButDelivered, c.Resyncs, refused, load, r.Verdict)
}
