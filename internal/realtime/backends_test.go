package realtime

import (
	"testing"

	"github.com/handoff-health/handoff/hub"
)

// backend names a way to build a hub, so tests run the same body on every
// backend. The memory row is here; backends_integration_test.go adds the
// Redis row when the integration tag is set, so the rest still run on a
// machine with nothing but Go.
type backend struct {
	name string
	hub  func(t testing.TB) *hub.Hub
}

var backends = []backend{
	{"memory", memoryHub},
}
