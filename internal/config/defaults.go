package config

import "time"

// Defaults that belong to the node itself rather than to a package it
// wires. Limits owned by a package (history, images, claims, the Ably
// channel name) are that package's Default* constants, used by Register
// directly so the two cannot drift.
const (
	// DefaultAddr listens on loopback only: a laptop running `make run` is
	// not reachable from the LAN until the operator says so (--addr :8080).
	DefaultAddr = "127.0.0.1:8080"

	// DefaultDataDir is relative to where the node starts, which is where
	// `make run` leaves local images and the ALEX outbox.
	DefaultDataDir = "./data"

	// DefaultLogLevel logs one line per request and every warning; debug
	// adds health and metrics scrapes.
	DefaultLogLevel = "info"

	// DefaultLogFormat picks console output on a terminal and JSON lines
	// everywhere else (containers, files).
	DefaultLogFormat = "auto"

	// DefaultRedisPrefix matches the hub's and the Ably bridge's own
	// default, so a node and a tool that leave it unset share keys.
	DefaultRedisPrefix = "handoff"

	// DefaultS3Region is AWS's default region; S3-compatible stores
	// mostly ignore it but the SDK requires one to sign.
	DefaultS3Region = "us-east-1"

	// DefaultShutdownTimeout bounds graceful shutdown: long enough for an
	// upload or commit in flight to finish, shorter than the 30 s most
	// orchestrators wait before SIGKILL.
	DefaultShutdownTimeout = 15 * time.Second

	// minTTL is the shortest history or session lifetime accepted (the
	// messages say "1m"): below it a desktop on a brief network blip would
	// lose its session.
	minTTL = time.Minute

	// maxPresenceGrace bounds --presence-grace: Ably's own connection
	// state TTL is two minutes, and a desktop that says "Phone connected"
	// for longer than that after the phone is gone is lying.
	maxPresenceGrace = 2 * time.Minute
)

// Defaults of the edge (issue 13): deadlines and connection caps.
const (
	// DefaultReadHeaderTimeout bounds the wait for a request's headers: a
	// phone on a poor network sends them in one round trip, and a client
	// that trickles them is holding a descriptor for nothing.
	DefaultReadHeaderTimeout = 10 * time.Second

	// DefaultIdleTimeout closes keep-alive connections idle this long. It is
	// above the 60 s idle timeout of common proxies (nginx, AWS ALB), so the
	// proxy, not the node, ends its own idle upstream connections.
	DefaultIdleTimeout = 2 * time.Minute

	// DefaultBodyTimeout bounds the body of an API request (JSON of at most
	// 64 KiB): 15 s is that much at ~4 KiB/s, slower than any working phone
	// network. Image uploads get their own, size-based deadline.
	DefaultBodyTimeout = 15 * time.Second

	// DefaultMaxConns caps open connections to the node. A socket costs
	// ~15 KiB of server memory (docs/benchmarks.md); the idle benchmark
	// holds 10,000, and 16,384 leaves headroom at 240 MiB. It is lowered
	// further to fit the process's descriptor limit (server/connlimit.go),
	// so a flood is refused before accept fails with "too many open files".
	DefaultMaxConns = 16_384

	// DefaultMaxConnsPerAddr caps the connections of one TCP peer. A
	// 30-GP clinic behind one NAT address, each desktop and phone at a
	// browser's worst case of 6 HTTP/1.1 connections plus a socket, holds
	// 30 × 13 = 390.
	DefaultMaxConnsPerAddr = 400
)
