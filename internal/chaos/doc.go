// Package chaos is handoff's fault-injection suite (issue 16): two real
// `handoff serve` processes behind a round-robin TCP balancer, sharing a
// real Redis (standalone, persisted, Sentinel or a 3-master Cluster) and a
// data directory, while a probe publishes numbered events through both
// nodes in turn and subscribers on both nodes count what arrives. Each scenario breaks
// one thing (kill -9 a node, restart or roll back Redis, fail a Sentinel
// or Cluster master over) and checks the promise: nothing accepted is lost
// without the subscriber being told, no cursor is handed out twice, no
// event arrives twice or under the wrong cursor.
//
// The tests carry the integration build tag (they start redis-server and
// build the handoff binary); `make chaos` runs only them, and `make test`
// runs them with everything else. There is no non-test code.
package chaos
