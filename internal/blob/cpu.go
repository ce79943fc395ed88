package blob

import "runtime"

// cpuSlots bounds ImageWork. One P is left for everything else (socket
// reads and writes, hub delivery, short handlers) so image work can never
// hold every P; with one P there is still one slot.
var cpuSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))

// ImageWork runs fn, CPU-bound work over image bytes (hashing, base64
// encoding a FHIR document), with at most GOMAXPROCS-1 (at least 1) such
// calls running at once in the process; the others wait, parked, for a
// slot. fn must not block on I/O: a slot is a P's worth of CPU.
//
// Why: on a small machine a burst of uploads and commits made every P busy
// with long image work, so the goroutines that deliver a live event to a
// desktop waited behind it in the run queues (docs/benchmarks.md, "100
// GPs end to end"). Parked waiters are not runnable, so the queues stay
// short.
func ImageWork(fn func()) {
	cpuSlots <- struct{}{}
	defer func() { <-cpuSlots }()
	fn()
}
