package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of a run. Its JSON form is what `--json` prints;
// field names are a stable contract for scripts and CI.
type Report struct {
	Target string `json:"target"`
	// InProcess is true when the run started its own embedded server.
	InProcess bool `json:"inProcess"`
	GPs       int  `json:"gps"`
	// Rounds is the rounds per GP asked for; in a --duration run, the GP
	// rounds completed divided by GPs, rounded down.
	Rounds int `json:"rounds"`
	// GPRounds is how many GP rounds (capture sessions) ran, whether or
	// not every step succeeded.
	GPRounds int `json:"gpRounds"`
	// Images is how many images were registered over the whole run.
	Images           int `json:"images"`
	ImagesPerSession int `json:"imagesPerSession"`
	// ImageBytes is the average size of the JPEGs uploaded.
	ImageBytes     int     `json:"imageBytes"`
	DisconnectRate float64 `json:"disconnectRate"`
	// EventsExpected counts the events successful requests obliged the
	// server to publish: per session mobile.connected, image.added and
	// image.committed per image, session.committed. Received are those
	// the desktop got (by the end of its bounded wait), lost the rest.
	// Duplicated counts an event id delivered twice, or one logical event
	// published twice.
	EventsExpected int `json:"eventsExpected"`
	EventsReceived int `json:"eventsReceived"`
	Lost           int `json:"lost"`
	Duplicated     int `json:"duplicated"`
	// Reconnects are socket reconnections after the first connect;
	// Resyncs are resumes the server could not replay (recovered:false);
	// UnplannedDisconnects are disconnects the desktops did not force.
	Reconnects           int                `json:"reconnects"`
	Resyncs              int                `json:"resyncs"`
	UnplannedDisconnects int                `json:"unplannedDisconnects"`
	Errors               int                `json:"errors"`
	ErrorsByKind         map[string]int     `json:"errorsByKind"`
	LatencyMs            map[Step]Latency   `json:"latencyMs"`
	DurationSeconds      float64            `json:"durationSeconds"`
	Throughput           map[string]float64 `json:"throughput"`
	// Server figures exist only when measured. For the embedded server
	// they are the whole process's (getrusage RUSAGE_SELF): the server and
	// the load generator share it, so they bound the server's use from
	// above. With --target and --server-pid they are that process's, from
	// /proc. ResourceScope says which.
	ServerCPUSeconds float64 `json:"serverCpuSeconds,omitempty"`
	PeakRSSBytes     int64   `json:"peakRssBytes,omitempty"`
	ResourceScope    string  `json:"resourceScope,omitempty"`
}

// OK reports whether the run had no loss, duplicate or error.
func (r *Report) OK() bool { return r.Lost == 0 && r.Duplicated == 0 && r.Errors == 0 }

// WriteJSON prints the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable prints the report for a person.
func (r *Report) WriteTable(w io.Writer) {
	where := "a running server"
	if r.InProcess {
		where = "an embedded in-process server"
	}
	fmt.Fprintf(w, "\nhandoff loadtest against %s (%s)\n", r.Target, where)
	fmt.Fprintf(w, "  %d GPs × %d rounds = %d sessions, %d images of %d per session, ~%d KB each, %.1fs\n",
		r.GPs, r.Rounds, r.GPRounds, r.Images, r.ImagesPerSession, r.ImageBytes/1000, r.DurationSeconds)
	fmt.Fprintf(w, "  events expected %d, received %d, lost %d, duplicated %d\n",
		r.EventsExpected, r.EventsReceived, r.Lost, r.Duplicated)
	fmt.Fprintf(w, "  sockets: disconnect rate %.3g per event, reconnects %d, resyncs %d, unplanned disconnects %d\n",
		r.DisconnectRate, r.Reconnects, r.Resyncs, r.UnplannedDisconnects)
	fmt.Fprintf(w, "  throughput: %.1f images/s, %.2f MB/s uploaded, %.1f sessions/s, %.1f events/s\n",
		r.Throughput["imagesPerSecond"], r.Throughput["uploadMBPerSecond"],
		r.Throughput["gpRoundsPerSecond"], r.Throughput["eventsPerSecond"])
	if r.PeakRSSBytes > 0 {
		fmt.Fprintf(w, "  server: %.2f CPU s (%.2f cores avg), peak RSS %.1f MiB\n    (%s)\n",
			r.ServerCPUSeconds, r.ServerCPUSeconds/max(r.DurationSeconds, 1e-9), float64(r.PeakRSSBytes)/(1<<20), r.ResourceScope)
	}
	fmt.Fprintln(w, "  registerToDesktop: phone's register reply (201) → image.added at the desktop (0 when the event came first);")
	fmt.Fprintln(w, "  registerSentToDesktop: phone sends register → image.added at the desktop (includes the phone's round trip)")
	fmt.Fprintln(w, "  publishToDesktop / publishToReply: the server publishing image.added (its timestamp) → the desktop has it /")
	fmt.Fprintln(w, "    → the phone has the register reply, written just after; both cross the same CPUs and scheduler")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tstep\tcount\tp50 ms\tp95 ms\tp99 ms\tmax ms\t")
	for _, s := range allSteps {
		l := r.LatencyMs[s]
		fmt.Fprintf(tw, "\t%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t\n", s, l.Count, l.P50, l.P95, l.P99, l.Max)
	}
	tw.Flush()
	r.writeErrors(w)
	if r.OK() {
		fmt.Fprintln(w, "  result: PASS (no loss, no duplicates, no errors)")
	} else {
		fmt.Fprintln(w, "  result: FAIL")
	}
}

func (r *Report) writeErrors(w io.Writer) {
	if r.Errors == 0 {
		fmt.Fprintln(w, "  errors: none")
		return
	}
	kinds := make([]string, 0, len(r.ErrorsByKind))
	for k := range r.ErrorsByKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, r.ErrorsByKind[k]))
	}
	fmt.Fprintf(w, "  errors: %d (%s)\n", r.Errors, strings.Join(parts, ", "))
	if r.ErrorsByKind["claim: 429 rate_limited"] > 0 {
		fmt.Fprintln(w, "  hint: the target limits QR claims per client address; on an IPv4 loopback target each phone dials from its own 127.x.y.z")
	}
}

// report builds the run's Report.
func (r *runner) report(tgt *target, cs connStats, elapsed time.Duration) *Report {
	r.mu.Lock()
	t := r.totals
	r.mu.Unlock()
	byKind, nerr := r.rec.errorCounts()
	secs := elapsed.Seconds()
	rep := &Report{
		Target: tgt.url, InProcess: tgt.inProcess, GPs: r.cfg.GPs, Rounds: r.cfg.Rounds, GPRounds: t.rounds,
		Images: t.images, ImagesPerSession: r.cfg.Images, ImageBytes: averageSize(r.jpegs),
		DisconnectRate: r.cfg.DisconnectRate,
		EventsExpected: t.expected, EventsReceived: t.received, Lost: t.lost, Duplicated: t.duplicated,
		Reconnects: cs.reconnects, Resyncs: cs.resyncs, UnplannedDisconnects: cs.unplanned,
		Errors: nerr, ErrorsByKind: byKind, LatencyMs: r.rec.latencies(), DurationSeconds: secs,
		Throughput: map[string]float64{
			"imagesPerSecond":   float64(t.images) / secs,
			"uploadMBPerSecond": float64(t.bytes) / 1e6 / secs,
			"gpRoundsPerSecond": float64(t.rounds) / secs,
			"eventsPerSecond":   float64(t.received) / secs,
		},
	}
	if r.cfg.Duration > 0 {
		rep.Rounds = t.rounds / r.cfg.GPs
	}
	return rep
}

func averageSize(bs [][]byte) int {
	total := 0
	for _, b := range bs {
		total += len(b)
	}
	return total / max(len(bs), 1)
}
