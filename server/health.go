package server

import (
	"context"
	"net/http"
	"time"

	"github.com/handoff-health/handoff/internal/httpx"
)

// readyCheck is one dependency /readyz asks about.
type readyCheck struct {
	name  string
	check func(context.Context) error
}

// healthz says the process is up; it checks nothing else so that an
// orchestrator does not restart a node because Redis is briefly away.
func healthz(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz checks every dependency (hub backend, session store, blob store)
// and answers 503 naming the ones that fail, so a load balancer stops
// sending traffic to a node that cannot serve it.
func readyz(checks []readyCheck) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		status := http.StatusOK
		result := make(map[string]string, len(checks))
		for _, c := range checks {
			if err := c.check(ctx); err != nil {
				status = http.StatusServiceUnavailable
				result[c.name] = "unavailable"
				continue
			}
			result[c.name] = "ok"
		}
		httpx.WriteJSON(w, status, map[string]any{"ready": status == http.StatusOK, "checks": result})
	}
}
