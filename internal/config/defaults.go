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
)
