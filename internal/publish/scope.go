package publish

// hubChannel is the hub channel of the Ably channel name for a request
// authenticated with keyName. Apps made by the test-app provisioner
// (internal/provision) are isolated by a hub-channel prefix derived from
// the key; the client never sees it (replies name the path's channel).
// Without Config.ChannelPrefix (every production node) it is the identity.
func (h *Handler) hubChannel(keyName, channel string) string {
	if h.cfg.ChannelPrefix == nil {
		return channel
	}
	return h.cfg.ChannelPrefix(keyName) + channel
}
