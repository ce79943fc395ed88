package server

import (
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/provision"
)

// wireProvisioner mounts the test-app provisioner when --test-provisioner
// is set (config validation allows it only on loopback) and returns the
// channel-prefix function that isolates its apps; nil otherwise, so a
// production node neither serves /apps nor prefixes anything.
func (s *Server) wireProvisioner(keys *auth.APIKeys) func(keyName string) string {
	if !s.cfg.TestProvisioner {
		return nil
	}
	s.log.Warn().Msg("--test-provisioner: POST /apps creates API keys for anyone on this machine; a test node only")
	p := provision.New(keys).WithPresence(s.presence)
	p.Register(s.mux)
	return p.ChannelPrefix
}
