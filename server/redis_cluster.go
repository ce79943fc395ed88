package server

import (
	"context"
	"errors"
	"net"

	"github.com/redis/go-redis/v9"
)

// reloadClusterOnError makes a Cluster client re-read the slot map as soon
// as a command fails, instead of at go-redis's periodic reload (every 60 s
// by default). go-redis reloads on MOVED, ASK and READONLY only; when a
// master dies, commands for its slots keep dialling the dead address
// (connection refused, then CLUSTERDOWN) and its promoted replica is not
// used until the next periodic reload: the chaos suite saw every publish
// of those channels fail for 30 s after the failover had finished. A
// reload is cheap (one CLUSTER SLOTS) and go-redis coalesces concurrent
// requests for one, with a 200 ms pause between reloads, so a burst of
// failures costs a few reloads, not one each. Clients of other kinds are
// left as they are.
func reloadClusterOnError(c redis.UniversalClient) {
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		return
	}
	cc.AddHook(clusterReloadHook{cc})
}

type clusterReloadHook struct{ cc *redis.ClusterClient }

func (h clusterReloadHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h clusterReloadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(ctx, err)
		return err
	}
}

func (h clusterReloadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(ctx, err)
		return err
	}
}

// check asks for a reload when err says the slot's master may have moved:
// a network failure, or a cluster that is down or reconfiguring.
func (h clusterReloadHook) check(ctx context.Context, err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) || isClusterChange(err) {
		h.cc.ReloadState(context.WithoutCancel(ctx))
	}
}

// isClusterChange recognises the replies of a cluster in the middle of a
// failover or slot move.
func isClusterChange(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	for _, p := range []string{"CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "LOADING"} {
		if len(msg) >= len(p) && msg[:len(p)] == p {
			return true
		}
	}
	return false
}
