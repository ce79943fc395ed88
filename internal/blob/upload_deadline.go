package blob

import (
	"net/http"
	"time"
)

// Upload deadlines of the local store: an upload may take a base time plus
// its size at a minimum rate, so a 20 MiB photo on a slow link finishes
// while a client that announces a body and sends nothing is cut soon.
const (
	// DefaultUploadTimeout is the base: TLS and TCP slow start on a phone
	// network, and the wait before a first byte from a phone that woke up.
	DefaultUploadTimeout = 30 * time.Second

	// DefaultUploadMinRate is the slowest upload waited for, in bytes per
	// second: 32 KiB/s is a poor 3G uplink. The phone sends 2048-px JPEGs of
	// ~1 MB (62 s at this rate); a 20 MiB image gets 11 minutes.
	DefaultUploadMinRate int64 = 32 << 10
)

// uploadDeadline computes an upload's body read deadline from its size.
type uploadDeadline struct {
	base time.Duration
	rate int64
}

func newUploadDeadline(base time.Duration, rate int64) uploadDeadline {
	if base <= 0 {
		base = DefaultUploadTimeout
	}
	if rate <= 0 {
		rate = DefaultUploadMinRate
	}
	return uploadDeadline{base: base, rate: rate}
}

// of is how long an upload of size bytes may take.
func (u uploadDeadline) of(size int64) time.Duration {
	return u.base + time.Duration(float64(size)/float64(u.rate)*float64(time.Second))
}

// set replaces the node's short API body deadline on this request's
// connection with one that fits an upload of size bytes. A ResponseWriter
// that cannot set deadlines (a test recorder) keeps none, which is what it
// had.
func (u uploadDeadline) set(w http.ResponseWriter, size int64) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(u.of(size)))
}
