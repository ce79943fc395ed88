package server

import "github.com/handoff-health/handoff/server/blob"
import "github.com/handoff-health/handoff/server/auth"
import "github.com/handoff-health/handoff/server/capture"

func (s *Server) wireCommit(sessions capture.Store, blobs blob.Store, verifier *auth.Verifier) error {
	return nil
}

func (s *Server) wirePublish() error { return nil }
