package hub

// Live dispatch: the path every event takes from a backend's delivery
// goroutine to the sinks. It never waits for the backend: a subscriber that
// finds a gap is handed to the channel's repair passes (repair.go), and its
// live events wait in its backlog until it has caught up.

// hubHandler is the Hub seen as a backend Handler.
type hubHandler Hub

// HandleEvent fans a live event out to the channel's local subscribers.
func (hh *hubHandler) HandleEvent(ev Event) {
	h := (*Hub)(hh)
	h.mu.Lock()
	ch := h.channels[ev.Channel]
	h.mu.Unlock()
	if ch == nil {
		return
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	gap := false
	for sub := range ch.subs {
		if !sub.advance(ev) {
			gap = true
		}
	}
	if gap {
		h.startRepair(ch)
	}
}

// follows reports whether ev comes directly after position pos.
func follows(pos Cursor, ev Cursor) bool {
	if pos.Epoch == "" {
		// Nothing seen yet: only the first event of an epoch follows.
		return pos.Offset == 0 && ev.Offset == 1
	}
	return pos.Epoch == ev.Epoch && ev.Offset == pos.Offset+1
}

// covered reports whether ev is at or before position pos: delivered
// already, by replay or repair.
func covered(pos Cursor, ev Cursor) bool {
	return pos.Epoch == ev.Epoch && ev.Offset <= pos.Offset
}

// advance hands ev to a live subscriber if it is the next one and skips it
// if it was delivered already; a subscriber that is catching up keeps it
// for later. It reports false when ev shows a gap: the subscriber is then
// behind and needs a repair pass. Called with channel.mu held.
func (s *Subscription) advance(ev Event) bool {
	switch {
	case s.closed:
	case s.state != subLive:
		s.hold(ev)
	case follows(s.pos, ev.Cursor):
		s.deliver(ev)
	case covered(s.pos, ev.Cursor):
	default:
		// History has ev and whatever live delivery missed before it, and
		// the repair pass reads it only after this moment.
		s.state = subBehind
		return false
	}
	return true
}

// hold keeps a live event for a subscriber that is catching up. Past
// maxBacklog it drops the backlog instead: the events are in history, and
// lost makes the subscriber read them from there.
func (s *Subscription) hold(ev Event) {
	if s.lost {
		return
	}
	if len(s.backlog) >= maxBacklog {
		s.backlog, s.lost = nil, true
		return
	}
	s.backlog = append(s.backlog, ev)
}

// drain hands the backlog to the sink once the subscriber has caught up to
// a history read, and makes it live. If the backlog shows that the read
// was not enough (events were dropped, or one does not follow), the
// subscriber is behind again. Called with channel.mu held.
func (s *Subscription) drain() {
	if s.lost {
		s.backlog, s.lost = nil, false
		s.state = subBehind
		return
	}
	for i, ev := range s.backlog {
		switch {
		case covered(s.pos, ev.Cursor):
		case follows(s.pos, ev.Cursor):
			if !s.deliver(ev) {
				return
			}
		default:
			// A read that starts after ev arrived has it, or says it cannot.
			s.backlog = s.backlog[i+1:]
			s.state = subBehind
			return
		}
	}
	s.backlog = nil
	s.state = subLive
}

// deliverAll hands evs (already in order) to the sink, skipping any at or
// before the subscriber's position. It reports false if the sink refused.
func (s *Subscription) deliverAll(evs []Event) bool {
	for _, ev := range evs {
		if s.closed {
			return false
		}
		if covered(s.pos, ev.Cursor) {
			continue
		}
		if !s.deliver(ev) {
			return false
		}
	}
	return true
}

// deliver hands one event to the sink and advances the position; a refusal
// drops the subscription (slow consumer).
func (s *Subscription) deliver(ev Event) bool {
	if !s.sink(Delivery{Kind: KindEvent, Channel: s.channel.name, Event: ev}) {
		s.drop()
		return false
	}
	s.pos = ev.Cursor
	return true
}

// drop removes a subscription whose sink refused a delivery. Called with
// channel.mu held.
func (s *Subscription) drop() {
	if !s.closed {
		s.hub.release(s.channel, s)
	}
}
