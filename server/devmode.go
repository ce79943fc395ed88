package server

import (
	"net/http"
	"time"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/httpx"
)

// Dev mode gives the built-in pages a demo practice so `make run` works
// with no host application. Its tokens are JWTs for a fictional facility,
// signed with a random secret of this process. config.Validate keeps it
// away from production: it refuses --dev beside a JWT secret, Redis, S3,
// ALEX, or a non-loopback address unless --dev-allow-lan says so.
const (
	devFacility = "FZZ999-B"
	devProvider = "demo-gp"
	devTokenTTL = 8 * time.Hour
)

// devPatient is a fictional patient for the demo form. The NHIs use the
// Z-prefixed test range, which is never issued to a real person; the names
// and dates of birth are made up. Each has all three, as the desktop needs
// a name and an NHI to start a session and shows the DOB where it has one.
type devPatient struct {
	PatientID   string `json:"patientId"`
	NHI         string `json:"nhi"`
	Display     string `json:"display"`
	DOB         string `json:"dob"`
	EncounterID string `json:"encounterId"`
}

var devPatients = []devPatient{
	{PatientID: "demo-pt-001", NHI: "ZZZ0016", Display: "Jane Sample", DOB: "1960-03-12", EncounterID: "demo-enc-1001"},
	{PatientID: "demo-pt-002", NHI: "ZZZ0024", Display: "Aroha Testing", DOB: "1984-11-02", EncounterID: "demo-enc-1002"},
	{PatientID: "demo-pt-003", NHI: "ZZZ0032", Display: "Mere Example", DOB: "1947-07-29", EncounterID: "demo-enc-1003"},
}

// warnDev says loudly that dev mode is on, and louder when it listens
// beyond this machine.
func (s *Server) warnDev() {
	s.log.Warn().Msg("DEV MODE: a demo practice and dev tokens are enabled; never run --dev in production")
	if s.cfg.DevAllowLAN {
		s.log.Warn().Str("addr", s.cfg.Addr).
			Msg("DEV MODE ON THE NETWORK (--dev-allow-lan): anyone who can reach this address can get a dev token and open the demo practice")
	}
}

func (s *Server) mountDev(v *auth.Verifier) {
	// A dev token lives no longer than the verifier accepts.
	ttl := min(devTokenTTL, v.MaxLifetime())
	s.mux.HandleFunc("POST /api/dev/token", func(w http.ResponseWriter, r *http.Request) {
		exp := time.Now().Add(ttl).UTC().Truncate(time.Second)
		tok, err := v.Issue(auth.Claims{Facility: devFacility, Provider: devProvider, Expires: exp})
		if err != nil {
			httpx.WriteError(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{
			"token": tok, "expiresAt": exp, "facilityId": devFacility, "providerId": devProvider,
		})
	})
	s.mux.HandleFunc("GET /api/dev/patients", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, devPatients)
	})
}
