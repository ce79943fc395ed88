package loadtest

import (
	"fmt"
	"time"
)

// usage is the process's resource use at one moment. The embedded server
// and the load generator share the process, so it measures both: the
// report says so rather than calling it the server's alone.
type usage struct {
	cpu     time.Duration
	peakRSS int64
}

// meter samples the server's resource use: this process for the embedded
// server, the --server-pid process for a target, or nothing.
type meter struct {
	sample func() (usage, error)
	scope  string
}

func (m meter) read() (usage, error) {
	if m.sample == nil {
		return usage{}, nil
	}
	return m.sample()
}

func newMeter(cfg Config, inProcess bool) meter {
	switch {
	case inProcess:
		return meter{
			sample: func() (usage, error) { return processUsage(), nil },
			scope:  "process: the embedded server and the load generator share it",
		}
	case cfg.ServerPID > 0:
		return meter{
			sample: func() (usage, error) { return pidUsage(cfg.ServerPID) },
			scope:  fmt.Sprintf("server process %d from /proc; peak RSS is its lifetime peak", cfg.ServerPID),
		}
	}
	return meter{}
}
