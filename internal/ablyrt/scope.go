package ablyrt

import (
	"strings"

	"github.com/handoff-health/handoff/hub"
)

// Apps made by the test-app provisioner (internal/provision) are isolated
// by a hub-channel prefix: the Ably channel "x" of app A is the hub channel
// A's prefix + "x". The prefix is applied only where this package calls the
// hub and stripped from what it sends, so a client never sees it. Without
// Config.ChannelPrefix (every production node) both are the identity.

// setPrefix fixes the connection's prefix from its key. A connection keeps
// its key for life (reauth refuses another), so it is written once, before
// any channel is attached.
func (c *conn) setPrefix() {
	if c.prefix == "" && c.s.cfg.ChannelPrefix != nil {
		c.prefix = c.s.cfg.ChannelPrefix(c.keyName)
	}
}

// hubChannel is the hub channel of the Ably channel name.
func (c *conn) hubChannel(name string) string { return c.prefix + name }

// ablyChannel is the Ably channel name of a hub channel.
func (c *conn) ablyChannel(hubName string) string { return strings.TrimPrefix(hubName, c.prefix) }

// invalidChannelText explains 40010 (hub.ValidChannel's rules).
const invalidChannelText = "invalid channel name: 1-200 bytes of UTF-8 without control characters, not starting with '[' or ':'"

// validChannel reports whether the Ably channel name is valid, and so is
// the hub channel it maps to: behind a prefix a name near the length
// limit would otherwise reach the hub and fail there, and the empty name
// would be the app's bare prefix.
func (c *conn) validChannel(name string) bool {
	return hub.ValidChannel(name) && (c.prefix == "" || hub.ValidChannel(c.hubChannel(name)))
}
