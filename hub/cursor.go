package hub

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"strconv"
	"strings"
)

// Cursor names a position in a channel's history: the history epoch and the
// offset of an event within it. Offsets start at 1 in every epoch; offset 0
// is the position before the first event.
//
// The epoch changes whenever a channel's history is lost (expired, or the
// backend's data was wiped) or may have been rolled back (the Redis backend
// starts a new epoch after every Redis restart or promotion, see
// publish.lua), so an (epoch, offset) pair never names two events. A cursor
// from another epoch can never be replayed from, which is how a subscriber
// learns it must refetch state instead of being silently skipped forward.
type Cursor struct {
	Epoch  string
	Offset uint64
}

// ErrBadCursor is returned by ParseCursor for text that is not a cursor.
var ErrBadCursor = errors.New("hub: malformed cursor")

// String renders the cursor as "<epoch>-<offset>". Clients treat it as
// opaque. The zero cursor renders as "0" so a client can still say "I have
// seen nothing of this channel yet".
func (c Cursor) String() string {
	if c.Epoch == "" {
		return strconv.FormatUint(c.Offset, 10)
	}
	return c.Epoch + "-" + strconv.FormatUint(c.Offset, 10)
}

// IsZero reports whether c is the position before any event of any epoch.
func (c Cursor) IsZero() bool { return c.Epoch == "" && c.Offset == 0 }

// ParseCursor parses the text form produced by Cursor.String.
func ParseCursor(s string) (Cursor, error) {
	if s == "0" {
		return Cursor{}, nil
	}
	i := strings.LastIndexByte(s, '-')
	if i <= 0 || i > maxEpochLen || i == len(s)-1 {
		return Cursor{}, ErrBadCursor
	}
	epoch := s[:i]
	for _, r := range epoch {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return Cursor{}, ErrBadCursor
		}
	}
	off, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	return Cursor{Epoch: epoch, Offset: off}, nil
}

// maxEpochLen bounds the epoch part so a hostile cursor cannot be large.
const maxEpochLen = 32

// NewEpoch returns a fresh random epoch: 13 lower-case base32 characters
// (64 bits), enough that two lost histories never share one.
func NewEpoch() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("hub: crypto/rand failed: " + err.Error())
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
