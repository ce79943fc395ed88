package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// startProfiles starts the profiles named by the environment, for a
// command whose process holds what is measured (the embedded server of
// `handoff loadtest`, or `handoff serve`):
//
//	HANDOFF_CPUPROFILE    pprof CPU profile
//	HANDOFF_BLOCKPROFILE  pprof block profile (every blocking event ≥ 1 µs)
//	HANDOFF_TRACE         runtime execution trace (`go tool trace`), which
//	                      shows scheduler latency per goroutine
//
// The returned function stops them and writes what is written at the end;
// it reports failures to stderr.
func startProfiles(stderr io.Writer) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if path := os.Getenv("HANDOFF_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return stop, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return stop, err
		}
		stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if path := os.Getenv("HANDOFF_TRACE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			stop()
			return func() {}, err
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			stop()
			return func() {}, err
		}
		stops = append(stops, func() { trace.Stop(); f.Close() })
	}
	if path := os.Getenv("HANDOFF_BLOCKPROFILE"); path != "" {
		runtime.SetBlockProfileRate(1000) // ns
		stops = append(stops, func() {
			f, err := os.Create(path)
			if err == nil {
				err = pprof.Lookup("block").WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintf(stderr, "block profile: %v\n", err)
			}
		})
	}
	return stop, nil
}
