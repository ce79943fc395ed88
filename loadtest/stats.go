package loadtest

import (
	"slices"
	"sync"
	"time"
)

// Step names one timed step of a GP's round.
type Step string

// The steps the report shows, in flow order.
const (
	StepCreate    Step = "create"
	StepClaim     Step = "claim"
	StepPresign   Step = "presign"
	StepUpload    Step = "upload"
	StepRegister  Step = "register"
	StepToDesktop Step = "registerToDesktop"
	// StepSentToDesktop is measured from the start of the register request,
	// so it includes the HTTP round trip that registerToDesktop leaves out.
	StepSentToDesktop Step = "registerSentToDesktop"
	// StepPublishToDesktop runs from the event's own timestamp (the server
	// publishing image.added) to the desktop receiving it, and
	// StepPublishToReply from the same moment to the phone receiving the
	// register reply, which the server writes just after publishing.
	StepPublishToDesktop Step = "publishToDesktop"
	StepPublishToReply   Step = "publishToReply"
	StepSnapshot         Step = "snapshot"
	StepCommit           Step = "commit"
)

var allSteps = []Step{StepCreate, StepClaim, StepPresign, StepUpload, StepRegister, StepToDesktop, StepSentToDesktop, StepPublishToDesktop, StepPublishToReply, StepSnapshot, StepCommit}

// recorder collects every latency sample. A run has at most a few
// thousand samples per step, so keeping them all gives exact percentiles.
type recorder struct {
	mu      sync.Mutex
	samples map[Step][]time.Duration
	errors  map[string]int
}

func newRecorder() *recorder {
	return &recorder{samples: make(map[Step][]time.Duration), errors: make(map[string]int)}
}

func (r *recorder) observe(s Step, d time.Duration) {
	r.mu.Lock()
	r.samples[s] = append(r.samples[s], d)
	r.mu.Unlock()
}

func (r *recorder) fail(kind string) {
	r.mu.Lock()
	r.errors[kind]++
	r.mu.Unlock()
}

// Latency summarises one step, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func summarise(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.5) - 1
		return ms(s[max(0, min(i, len(s)-1))])
	}
	return Latency{Count: len(s), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ms(s[len(s)-1])}
}

func (r *recorder) latencies() map[Step]Latency {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[Step]Latency, len(allSteps))
	for _, s := range allSteps {
		out[s] = summarise(r.samples[s])
	}
	return out
}

func (r *recorder) errorCounts() (map[string]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	out := make(map[string]int, len(r.errors))
	for k, v := range r.errors {
		out[k] = v
		total += v
	}
	return out, total
}
