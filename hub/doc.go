// Package hub is handoff's transport-agnostic realtime core: named channels
// with bounded, replayable history and local fan-out. Transports (the
// native WebSocket, the Ably bridge) subscribe through it; the capture API
// publishes through it. Storage and cross-node delivery belong to a Backend
// (memory or Redis); both hand live events to one delivery engine
// (delivery.go), and the hub fans them out (dispatch.go) and repairs gaps
// from history (repair.go). Announce (republish.go) is Publish for a
// change already stored elsewhere: an event it could not publish is kept
// and republished until it is in history.
//
// # Locks
//
// Every mutex of the package, what it guards, and the order in which they
// may be taken (a lock may be taken while holding the ones above it in its
// line, never the other way round):
//
//   - Hub.life[i], the striped lifecycle locks: serialise the backend
//     Subscribe/Unsubscribe of one channel. Held across that backend call
//     by design (see the field); taken before Hub.mu and before the
//     backend's own locks, never together with channel.mu.
//   - channel.mu: the channel's subscribers, each Subscription's position,
//     state and backlog, and the channel's repair fields. Sinks are called
//     with it held, so a Sink must not call back into the hub (Subscribe,
//     Unsubscribe). While holding it the hub may take Hub.mu (release) and
//     repairGroup.mu (startRepair), and nothing else of this package.
//   - Hub.mu: the channel map and each channel's refs. A leaf.
//   - repairGroup.mu: whether repairs stopped, and wg.Add. A leaf.
//   - memShard.mu (64 per memory backend, by channel name): that shard's
//     histories and subscribed channels. Publish holds it while pushing to
//     an eventQueue, so a channel's queue order is its offset order:
//     memShard.mu → eventQueue.mu. Never two shards at once.
//   - Redis.mu: the PubSub connection, its channel set and the pending
//     Subscribe confirmations. A leaf, never held across I/O.
//   - batcher.mu: the Redis backend's queue of publishes waiting for the
//     next publish.lua call (backend_redis_batch.go). A leaf, never held
//     across I/O.
//   - eventQueue.mu: one delivery shard's queue. A leaf.
//   - republisher.mu: the events Announce kept (republish.go). A leaf,
//     never held across I/O.
//
// Two rules keep a slow backend from stalling anyone else: the hub never
// calls the backend while holding channel.mu or Hub.mu (history and top
// are read unlocked and applied under channel.mu), and backends call the
// Handler without holding their own locks. A delivery goroutine therefore
// waits only for channel.mu held by code that does no I/O.
package hub
