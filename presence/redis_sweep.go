package presence

import (
	"context"
	"fmt"
	"time"
)

// The Redis registry's background work: the node's lease, and the sweeper
// that removes members whose Grace ended or whose node died.

// renewLease renews the node's lease every SweepInterval until Stop. A
// renewal that fails (Redis down) is retried at the next tick; if Redis
// stays away longer than NodeTimeout, other nodes may sweep this node's
// members once it is back, as they would a dead node's.
func (r *Redis) renewLease() {
	t := time.NewTicker(r.cfg.SweepInterval)
	defer t.Stop()
	for {
		_ = r.lease(r.life, "renew", r.cfg.NodeID)
		select {
		case <-r.life.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Redis) lease(ctx context.Context, op, node string) error {
	return nodesScript.Run(ctx, r.client, []string{r.nodesKey()}, op, node, r.cfg.NodeTimeout.Milliseconds()).Err()
}

func (r *Redis) runSweeper() {
	t := time.NewTicker(r.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-r.life.Done():
			return
		case <-t.C:
			_ = r.sweep(r.life) // a failed pass is the next tick's work
		}
	}
}

// sweep makes one pass over the channels that may have members. Every node
// sweeps; redis_remove.lua makes their passes safe to overlap.
func (r *Redis) sweep(ctx context.Context) error {
	res, err := nodesScript.Run(ctx, r.client, []string{r.nodesKey()}, "list", forgetNodesAfter.Milliseconds()).Slice()
	if err != nil {
		return err
	}
	dead, known := map[string]bool{}, map[string]bool{}
	if len(res) == 2 {
		for i, set := range res {
			list, _ := set.([]any)
			for _, n := range list {
				s, _ := n.(string)
				known[s] = true
				dead[s] = dead[s] || i == 0
			}
		}
	}
	// A channel that fails (say, a record this version cannot read) must
	// not keep the others from being swept: the pass goes on and returns
	// the first error.
	var first error
	var cursor uint64
	for {
		chans, next, err := r.client.ZScan(ctx, r.channelsKey(), cursor, "", 100).Result()
		if err != nil {
			return err
		}
		for i := 0; i < len(chans); i += 2 { // member, score
			if err := r.sweepChannel(ctx, chans[i], dead, known); err != nil && first == nil {
				first = fmt.Errorf("presence: sweep %q: %w", chans[i], err)
			}
		}
		if cursor = next; cursor == 0 {
			return first
		}
	}
}

func (r *Redis) sweepChannel(ctx context.Context, channel string, dead, known map[string]bool) error {
	now := ms(r.cfg.Now())
	n, err := r.client.HLen(ctx, r.key(channel, "meta")).Result()
	if err != nil {
		return err
	}
	if n == 0 {
		cutoff := now - forgetAfter.Milliseconds()
		return forgetScript.Run(ctx, r.client, []string{r.channelsKey()}, channel, cutoff).Err()
	}
	unknown := map[string]bool{}
	removed, err := r.removeWhere(ctx, channel, true, func(_ string, m meta) bool {
		if m.detachedUntil > 0 {
			return m.detachedUntil <= now
		}
		if !known[m.owner] {
			unknown[m.owner] = true
		}
		return dead[m.owner]
	})
	if err != nil {
		return err
	}
	for node := range unknown {
		// Redis forgot the node (restarted from an old snapshot): give it a
		// lease; alive, it renews it, dead, it is swept when it ends.
		if err := r.lease(ctx, "grant", node); err != nil {
			return err
		}
	}
	// A removed connection's channel set stays as long as Claim may ask.
	for _, conn := range removed {
		if err := r.client.PExpire(ctx, r.connKey(conn), r.cfg.LostTTL+connKeyMargin).Err(); err != nil {
			return err
		}
	}
	return nil
}
