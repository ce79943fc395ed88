package realtime

import "sync"

// unauthCount counts, per client address, the sockets that are open but
// have not authenticated yet. A socket counts from its upgrade until its
// token is checked, whichever way that goes, so a client cannot hold
// descriptors with sockets that never send a token. Authenticated sockets
// are bounded by their tokens instead.
type unauthCount struct {
	max int

	mu sync.Mutex
	n  map[string]int
}

func newUnauthCount(max int) *unauthCount {
	return &unauthCount{max: max, n: make(map[string]int)}
}

// acquire counts one more socket for addr, or reports false when addr is
// at the cap. The returned release is safe to call more than once.
func (u *unauthCount) acquire(addr string) (release func(), ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n[addr] >= u.max {
		return nil, false
	}
	u.n[addr]++
	return sync.OnceFunc(func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.n[addr]--; u.n[addr] <= 0 {
			delete(u.n, addr)
		}
	}), true
}
