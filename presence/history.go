package presence

import (
	"cmp"
	"slices"
	"time"
)

// selectHistory answers q from a channel's kept events, newest first:
// events older than ttl (by Timestamp, against now) are gone, as if their
// history had expired. Start and End are inclusive, as in Ably.
func selectHistory(newestFirst []Event, q HistoryQuery, now time.Time, ttl time.Duration) []Event {
	oldest := now.Add(-ttl)
	out := make([]Event, 0, min(q.Limit, len(newestFirst)))
	for _, ev := range newestFirst {
		if ev.Timestamp.Before(oldest) {
			break // the rest are older still
		}
		if (!q.End.IsZero() && ev.Timestamp.After(q.End)) || (!q.Start.IsZero() && ev.Timestamp.Before(q.Start)) {
			continue
		}
		out = append(out, ev)
	}
	if q.Forwards {
		slices.Reverse(out)
	}
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out
}

// sortMembers puts members in the order Members promises.
func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.ClientID, b.ClientID), cmp.Compare(a.ConnectionID, b.ConnectionID))
	})
}
