package presence

import (
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Subscribe implements Registry. Every node reads every channel's events
// over its one pattern subscription; Subscribe only adds fn locally, once
// that subscription is confirmed (or after subscribeWait, when Redis is
// not there yet: events published before it is are not seen).
func (r *Redis) Subscribe(channel string, fn func(Event)) func() {
	cancel := r.fan.subscribe(channel, fn)
	t := time.NewTimer(subscribeWait)
	defer t.Stop()
	select {
	case <-r.ready:
		r.track(channel)
	case <-t.C:
	case <-r.life.Done():
	}
	return cancel
}

// receive reads the node's PubSub connection until Stop. go-redis
// reconnects it and subscribes the pattern again after a failure, and
// pings it when idle to find a dead one.
func (r *Redis) receive() {
	head, tail := r.cfg.Prefix+":presence:{", "}:pub"
	// On failure go-redis keeps the pattern and subscribes it when it
	// reconnects, which reading the channel below makes it do.
	_ = r.ps.PSubscribe(r.life, r.pubKey("*"))
	for msg := range r.ps.ChannelWithSubscriptions(redis.WithChannelSize(1000)) {
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "psubscribe" {
				continue
			}
			select {
			case <-r.ready:
				r.reconnected()
			default:
				close(r.ready)
			}
		case *redis.Message:
			channel, okHead := strings.CutPrefix(m.Channel, head)
			channel, okTail := strings.CutSuffix(channel, tail)
			if !okHead || !okTail {
				continue
			}
			serial, ev, err := decodePayload(m.Payload)
			if err != nil || ev.Channel != channel {
				continue // not written by this package
			}
			r.live(serial, ev)
		}
	}
}
