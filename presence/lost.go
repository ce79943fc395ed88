package presence

import "time"

// lostSet remembers, for a while and bounded, the connections whose members
// were removed because the connection was gone too long (memory registry).
type lostSet struct {
	until map[string]time.Time
	order []string // oldest first; may name ids already taken
}

func (l *lostSet) add(connID string, now time.Time, ttl time.Duration) {
	if l.until == nil {
		l.until = map[string]time.Time{}
	}
	l.until[connID] = now.Add(ttl)
	l.order = append(l.order, connID)
	for len(l.until) > maxLost && len(l.order) > 0 {
		delete(l.until, l.order[0])
		l.order = l.order[1:]
	}
}

// take reports whether connID is remembered as lost, and forgets it: the
// client re-enters, and a later Claim of the connection is about that.
func (l *lostSet) take(connID string, now time.Time) bool {
	until, ok := l.until[connID]
	delete(l.until, connID)
	return ok && now.Before(until)
}

func (l *lostSet) prune(now time.Time) {
	for len(l.order) > 0 {
		id := l.order[0]
		until, ok := l.until[id]
		if ok && now.Before(until) {
			return
		}
		if ok {
			delete(l.until, id)
		}
		l.order = l.order[1:]
	}
}
