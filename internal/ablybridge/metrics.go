package ablybridge

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the bridge's Prometheus series. The backlog is reported as
// two unlabelled gauges, not per channel: session channels are short-lived
// UUIDs, and a label per session would grow the series set without bound.
// Logs name the lagging channels when someone needs them.
type metrics struct {
	bridged     prometheus.Counter
	retries     prometheus.Counter
	failures    *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	lag         prometheus.Gauge
	lagChannels prometheus.Gauge
	lastSuccess prometheus.Gauge
}

// Failure kinds (label "kind" of handoff_ably_failures_total).
const (
	failAbly     = "ably"     // a publish to Ably failed (5xx, 429, timeout, refused)
	failHistory  = "history"  // reading the hub history failed
	failProgress = "progress" // reading or writing the bridge's state failed
	failResolve  = "resolve"  // the encounter resolver failed
)

// Drop reasons (label "reason" of handoff_ably_dropped_total).
const (
	dropUnrecoverable  = "unrecoverable"   // history trimmed or expired before mirroring
	dropRejected       = "rejected"        // Ably refused the message itself (400/413)
	dropUnknownSession = "unknown_session" // the resolver has no such session
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		bridged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "handoff_ably_bridged_total",
			Help: "Hub events acknowledged by Ably.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "handoff_ably_retries_total",
			Help: "Operations retried after a failure (publishes, history reads, state writes).",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_ably_failures_total",
			Help: "Failed attempts, by kind (ably, history, progress, resolve); each is retried.",
		}, []string{"kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "handoff_ably_dropped_total",
			Help: "Events that will never reach Ably, by reason (unrecoverable, rejected, unknown_session).",
		}, []string{"reason"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "handoff_ably_lag_events",
			Help: "Events in hub histories not yet acknowledged by Ably, summed over the channels this node is mirroring.",
		}),
		lagChannels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "handoff_ably_lagging_channels",
			Help: "Channels this node is mirroring that have events not yet acknowledged by Ably.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "handoff_ably_last_success_timestamp_seconds",
			Help: "Unix time of the last event Ably acknowledged.",
		}),
	}
	for _, kind := range []string{failAbly, failHistory, failProgress, failResolve} {
		m.failures.WithLabelValues(kind)
	}
	for _, reason := range []string{dropUnrecoverable, dropRejected, dropUnknownSession} {
		m.dropped.WithLabelValues(reason)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.bridged, m.retries, m.failures, m.dropped, m.lag, m.lagChannels, m.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
