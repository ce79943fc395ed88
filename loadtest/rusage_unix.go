//go:build unix

package loadtest

import (
	"runtime"
	"syscall"
	"time"
)

// processUsage returns this process's CPU time so far (user + system) and
// its peak resident set size in bytes.
func processUsage() usage {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return usage{}
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	rss := int64(ru.Maxrss)
	// Linux and the BSDs report kilobytes, macOS bytes.
	if runtime.GOOS != "darwin" && runtime.GOOS != "ios" {
		rss *= 1024
	}
	return usage{cpu: cpu, peakRSS: rss}
}
