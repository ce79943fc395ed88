package capture

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestLogHasNoSecrets runs the whole flow, plus rejected inputs, while
// capturing the server log, and checks that no token, JWT or patient datum
// appears in it, on both configurations.
func TestLogHasNoSecrets(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b, Config{})
			c := e.create("enc-log")
			mobile := e.claim(c.Token).MobileToken
			img := e.addImage(mobile, testutil.JPEG(t, 3), "image/jpeg")
			path := "/api/medtech/session/" + c.SessionID + "/images/" + img.ID
			st, body := e.do("PATCH", path, e.jwt, `{"notes":"lesion on `+testDisplay+`"}`)
			e.must(st, http.StatusOK, body, nil)
			st, body = e.do("DELETE", path, mobile, nil)
			e.must(st, http.StatusNoContent, body, nil)

			// Rejected inputs carrying secrets and patient data.
			badNHI := "QQQ12345"
			const dob, badDOB = "1961-07-23", "1961-13-40"
			e.do("POST", "/api/medtech/session/tokens", e.jwt, map[string]any{
				"encounterId": "enc-log-3", "patientId": testPatientID, "patientNhi": testNHI, "patientDisplay": testDisplay,
				"patientDob": dob})
			e.do("POST", "/api/medtech/session/tokens", e.jwt, map[string]any{
				"encounterId": "enc-log-4", "patientId": testPatientID, "patientNhi": testNHI, "patientDisplay": testDisplay,
				"patientDob": badDOB})
			e.do("POST", "/api/medtech/session/tokens", e.jwt, map[string]any{
				"encounterId": "enc-log-2", "patientId": testPatientID, "patientNhi": badNHI, "patientDisplay": testDisplay})
			e.do("POST", "/api/medtech/session/tokens", e.jwt, map[string]any{
				"encounterId": "enc-log", "patientId": "other-" + testPatientID, "patientNhi": testNHI, "patientDisplay": testDisplay})
			e.do("GET", "/api/medtech/session/tokens/"+c.Token, "", nil)
			e.do("GET", "/api/medtech/session/tokens/"+c.Token+"/qr.svg", "", nil)
			junkID := uuid.NewString()
			p := e.presign(mobile, junkID, "image/jpeg", 64)
			upload(t, p, make([]byte, 64))
			e.register(mobile, junkID, p.Key, map[string]any{"notes": testDisplay})

			e.clock.Advance(DefaultSessionTTL + time.Second)
			e.api.sweep(context.Background())

			log := e.log.String()
			if !strings.Contains(log, c.SessionID) || !strings.Contains(log, "capture session expired") {
				t.Fatalf("log lacks the flow's actions:\n%s", log)
			}
			secrets := map[string]string{
				"QR token": c.Token, "mobile token": mobile, "JWT": e.jwt,
				"patient id": testPatientID, "NHI": testNHI, "invalid NHI": badNHI, "patient display": testDisplay,
				"date of birth": dob, "invalid date of birth": badDOB,
				"QR token hash": session.HashToken(c.Token), "mobile token hash": session.HashToken(mobile),
			}
			for what, s := range secrets {
				if strings.Contains(log, s) {
					t.Errorf("log contains the %s", what)
				}
			}
			if t.Failed() {
				t.Logf("log:\n%s", log)
			}
		})
	}
}
