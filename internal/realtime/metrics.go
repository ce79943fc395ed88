package realtime

import (
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/handoff-health/handoff/protocol"
)

// metrics are the transport's Prometheus series. Label values come from
// fixed sets (frame types, the close-code table) so cardinality is bounded
// whatever clients send.
type metrics struct {
	connections   prometheus.Gauge
	subscriptions prometheus.Gauge
	framesIn      map[string]prometheus.Counter // by op, plus "invalid"
	framesOut     prometheus.Counter
	slowConsumers prometheus.Counter
	closes        *prometheus.CounterVec

	// queuePeakMessages and queuePeakBytes are the largest send queue any
	// connection has had since start: the evidence that slow consumers
	// stay bounded. Kept as atomics (read by GaugeFuncs) so the hot path
	// never touches a Prometheus mutex.
	queuePeakMessages atomic.Int64
	queuePeakBytes    atomic.Int64
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg) // With(nil) creates without registering.
	m := &metrics{
		connections: f.NewGauge(prometheus.GaugeOpts{
			Name: "handoff_realtime_connections", Help: "Open realtime WebSocket connections.",
		}),
		subscriptions: f.NewGauge(prometheus.GaugeOpts{
			Name: "handoff_realtime_subscriptions", Help: "Channel subscriptions held by realtime connections.",
		}),
		framesOut: f.NewCounter(prometheus.CounterOpts{
			Name: "handoff_realtime_frames_out_total", Help: "Frames written to realtime connections.",
		}),
		slowConsumers: f.NewCounter(prometheus.CounterOpts{
			Name: "handoff_realtime_slow_consumer_disconnects_total",
			Help: "Connections closed because their send queue overflowed (close code 4008).",
		}),
		closes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_realtime_disconnects_total", Help: "Closed realtime connections by close code.",
		}, []string{"code"}),
		framesIn: make(map[string]prometheus.Counter),
	}
	in := f.NewCounterVec(prometheus.CounterOpts{
		Name: "handoff_realtime_frames_in_total", Help: "Frames received from realtime connections by type.",
	}, []string{"type"})
	for _, op := range protocol.Ops() {
		m.framesIn[string(op)] = in.WithLabelValues(string(op))
	}
	m.framesIn["invalid"] = in.WithLabelValues("invalid")
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "handoff_realtime_send_queue_peak_messages",
		Help: "Largest number of frames queued for one connection since start.",
	}, func() float64 { return float64(m.queuePeakMessages.Load()) })
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "handoff_realtime_send_queue_peak_bytes",
		Help: "Largest number of bytes queued for one connection since start.",
	}, func() float64 { return float64(m.queuePeakBytes.Load()) })
	return m
}

// observeQueue raises the peak gauges. Callers pass a connection's own new
// peak, so this runs only when that connection's queue grows past its
// previous maximum, not on every frame.
func (m *metrics) observeQueue(msgs, bytes int) {
	raise(&m.queuePeakMessages, int64(msgs))
	raise(&m.queuePeakBytes, int64(bytes))
}

func raise(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// closeLabel maps a close code to its label: codes from the close-code
// table by number, anything a peer invents as "other".
func closeLabel(code websocket.StatusCode) string {
	if slices.Contains(protocol.CloseCodes(), protocol.CloseCode(code)) {
		return strconv.Itoa(int(code))
	}
	return "other"
}
