package hub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/internal/backoff"
)

// Live delivery of the Redis backend: one PubSub connection per node,
// confirmed subscribes, reconnect detection and Resync.

// Subscribe sends SUBSCRIBE and then a PING with a unique token on the
// node's PubSub connection, and returns once the PONG is read: Redis
// answers in order, so the subscription is then in effect, and every
// later PUBLISH reaches this node.
func (r *Redis) Subscribe(ctx context.Context, channel string) error {
	key := r.key(channel, "pub")
	done := make(chan error, 1)
	token := r.token("sub-")
	r.mu.Lock()
	ps := r.ps
	if ps != nil {
		// Recorded before SUBSCRIBE so a connection rebuilt meanwhile
		// subscribes it too.
		r.keys[key] = struct{}{}
		r.waiters[token] = done
	}
	r.mu.Unlock()
	// The writes happen outside r.mu: the receive loop takes it for every
	// PONG, and a slow write must not stall live delivery of every channel.
	// If the connection is rebuilt meanwhile, the write or the wait fails
	// and the caller is told; the recorded key is resubscribed either way.
	err := errStopped
	if ps != nil {
		if err = ps.Subscribe(ctx, key); err == nil {
			err = ps.Ping(ctx, token)
		}
	}
	if err == nil {
		err = r.await(ctx, done)
	}
	if err != nil {
		r.mu.Lock()
		delete(r.waiters, token)
		r.mu.Unlock()
		_ = r.Unsubscribe(context.WithoutCancel(ctx), channel)
		return fmt.Errorf("redis subscribe to %q: %w: %w", channel, ErrUnavailable, err)
	}
	return nil
}

// await waits for a Subscribe's confirmation.
func (r *Redis) await(ctx context.Context, done <-chan error) error {
	t := time.NewTimer(redisSubscribeTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("no confirmation from redis (is Run running?)")
	case <-r.closed:
		return errStopped
	}
}

// Unsubscribe sends UNSUBSCRIBE without waiting: events still in flight
// are ignored by the hub, which has no subscriber for them.
func (r *Redis) Unsubscribe(ctx context.Context, channel string) error {
	key := r.key(channel, "pub")
	r.mu.Lock()
	delete(r.keys, key)
	ps := r.ps
	r.mu.Unlock()
	if ps == nil {
		return nil
	}
	if err := ps.Unsubscribe(ctx, key); err != nil {
		return fmt.Errorf("redis unsubscribe from %q: %w: %w", channel, ErrUnavailable, err)
	}
	return nil
}

// Run reads the PubSub connection, hands events to the delivery engine,
// and calls h.Resync whenever the connection was lost and its
// subscriptions are confirmed again.
func (r *Redis) Run(ctx context.Context, h Handler) error {
	// ctx also ends on Close, so every loop below has one way to stop.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.delivery.run(ctx, r.closed, h) })
	wg.Go(func() { r.resyncLoop(ctx, h) })
	// The receive loop blocks in a read; closing the connection ends it.
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-r.closed:
			cancel()
		}
		r.stopPubSub()
	})
	err := r.receive(ctx)
	cancel()
	wg.Wait()
	if r.isClosed() {
		return nil
	}
	return err
}

// resyncLoop calls h.Resync when receive asks for it. The hub repairs
// from history through the client's connection pool, which may still be
// failing its dials when the PubSub connection is back first; a repair
// that fails is not retried, so Resync waits until the pool answers.
func (r *Redis) resyncLoop(ctx context.Context, h Handler) {
	for {
		select {
		case <-r.resync:
		case <-ctx.Done():
			return
		}
		for attempt := 0; r.client.Ping(ctx).Err() != nil; attempt++ {
			if !backoff.Sleep(ctx, redisReconnect.Delay(attempt)) {
				return
			}
		}
		h.Resync()
	}
}

// receive is Run's read loop. After the connection failed, live events
// may have been lost: it pings until the connection is back (go-redis
// reconnects and resubscribes every channel before the PING), and the
// PONG, read after every resubscription was confirmed, triggers Resync.
func (r *Redis) receive(ctx context.Context) error {
	var (
		broken  bool   // the link failed; a resync is due once it is back
		resync  string // token whose PONG triggers the resync
		probing bool   // an idle probe is outstanding
		attempt int    // failed reconnection probes in a row
	)
	for {
		ps := r.pubsub()
		if r.isClosed() {
			return nil
		}
		if ps == nil { // stopped because ctx ended
			return ctx.Err()
		}
		if broken {
			token := r.token("resync-")
			if err := ps.Ping(ctx, token); err != nil {
				if !backoff.Sleep(ctx, redisReconnect.Delay(attempt)) {
					return ctx.Err()
				}
				attempt++
				continue
			}
			broken, resync, attempt = false, token, 0
		}
		msg, err := ps.ReceiveTimeout(ctx, r.cfg.PingInterval)
		if err == nil {
			probing = false
			if r.handle(msg) == resync && resync != "" {
				resync = ""
				select {
				case r.resync <- struct{}{}:
				default: // one is pending already; it will see everything
				}
			}
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if isTimeout(err) && !probing {
			probing = true
			if err = ps.Ping(ctx, "probe"); err == nil {
				continue
			}
		} else if isTimeout(err) {
			r.rebuild()
		}
		probing, broken = false, true
		r.failWaiters()
	}
}

// handle dispatches one PubSub reply and returns a PONG's token.
func (r *Redis) handle(msg any) string {
	switch m := msg.(type) {
	case *redis.Message:
		name, ok := r.channelOf(m.Channel)
		if !ok {
			return ""
		}
		ev, err := decodeEvent(name, m.Payload)
		if err != nil {
			return "" // not written by publish.lua: not an event of ours
		}
		r.delivery.push(ev)
	case *redis.Pong:
		r.mu.Lock()
		w := r.waiters[m.Payload]
		delete(r.waiters, m.Payload)
		r.mu.Unlock()
		if w != nil {
			w <- nil
		}
		return m.Payload
	}
	return ""
}

// rebuild replaces a connection that stopped answering. go-redis only
// reconnects on errors, and a half-open connection never returns one.
// The new connection is installed and the keys read in one step under
// r.mu, and dialled outside it: a Subscribe that ran before the swap has
// its key in the snapshot, one after it subscribes the new connection
// itself.
func (r *Redis) rebuild() {
	r.mu.Lock()
	if r.ps == nil {
		r.mu.Unlock()
		return
	}
	old, ps := r.ps, r.client.Subscribe(context.Background()) // connects lazily
	r.ps = ps
	keys := make([]string, 0, len(r.keys))
	for k := range r.keys {
		keys = append(keys, k)
	}
	r.mu.Unlock()
	_ = old.Close()
	if len(keys) > 0 {
		// On failure go-redis keeps the channels and subscribes them on
		// its next connection.
		_ = ps.Subscribe(context.Background(), keys...)
	}
}

// failWaiters fails the Subscribe calls whose PING may never be answered.
func (r *Redis) failWaiters() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for token, w := range r.waiters {
		w <- errLinkLost
		delete(r.waiters, token)
	}
}

// pubsub returns the PubSub connection, nil once stopped.
func (r *Redis) pubsub() *redis.PubSub {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ps
}

func (r *Redis) token(kind string) string { return kind + strconv.FormatUint(r.seq.Add(1), 10) }

// stopPubSub closes the PubSub connection for good.
func (r *Redis) stopPubSub() {
	r.mu.Lock()
	ps := r.ps
	r.ps = nil
	r.mu.Unlock()
	if ps != nil {
		_ = ps.Close()
	}
	r.failWaiters()
}

func (r *Redis) isClosed() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
