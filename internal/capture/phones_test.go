package capture

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// mobileView reads the phone's view of its session, expecting 200.
func (e *env) mobileView(mobile string) mobileViewReply {
	e.t.Helper()
	var v mobileViewReply
	st, b := e.do("GET", "/api/medtech/session/mobile", mobile, nil)
	e.must(st, http.StatusOK, b, &v)
	return v
}

// TestTwoPhones: a new QR code adds a phone and never cuts off the first,
// whose next photo still arrives (issue 15: "Connect another phone"
// silently cut off the first phone).
func TestTwoPhones(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b, Config{})
			c := e.create("enc-two")
			first := e.claim(c.Token)
			second := e.claim(e.create("enc-two").Token)
			testutil.Equal(t, "same session", first.SessionID, second.SessionID)
			e.addImage(first.MobileToken, testutil.JPEG(t, 1), "image/jpeg")
			e.addImage(second.MobileToken, testutil.JPEG(t, 2), "image/jpeg")
			snap := e.snapshot(c.SessionID)
			testutil.Equal(t, "images", 2, len(snap.Images))
			testutil.Equal(t, "phones", 2, snap.Phones)
		})
	}
}

// TestClaimNamesThePatient: the claim reply carries what the phone shows
// to confirm the patient, and the server's count of what is left.
func TestClaimNamesThePatient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, memoryBackend(), Config{MaxImages: 5})
	st, b := e.do("POST", "/api/medtech/session/tokens", e.jwt, map[string]any{
		"encounterId": "enc-dob", "patientId": testPatientID, "patientNhi": "zzz0016",
		"patientDisplay": "Jane Doe", "patientDob": "1960-03-12",
	})
	var c createReply
	e.must(st, http.StatusCreated, b, &c)
	cl := e.claim(c.Token)
	testutil.Equal(t, "display", "Jane Doe", cl.PatientDisplay)
	testutil.Equal(t, "NHI (upper-cased)", "ZZZ0016", cl.PatientNHI)
	testutil.Equal(t, "DOB", "1960-03-12", cl.PatientDOB)
	testutil.Equal(t, "remaining", 5, cl.Remaining)
	snap := e.snapshot(c.SessionID)
	testutil.Equal(t, "snapshot NHI", "ZZZ0016", snap.PatientNHI)
	testutil.Equal(t, "snapshot DOB", "1960-03-12", snap.PatientDOB)
}

// TestMobileReject: a phone's "not this patient" disconnects that phone
// only, tells the desktop at once, and is final for that phone.
func TestMobileReject(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b, Config{})
			c := e.create("enc-reject")
			keep := e.claim(c.Token)
			wrong := e.claim(e.create("enc-reject").Token)
			rec := e.subscribe(c.Channel, nil)
			// A malformed body, even chunked (no Content-Length), is refused
			// before the phone is disconnected.
			bad, err := http.NewRequest("POST", e.srv.URL+"/api/medtech/session/mobile/reject",
				io.MultiReader(strings.NewReader(`{"reason":`)))
			if err != nil {
				t.Fatal(err)
			}
			bad.ContentLength = -1 // unknown: sent chunked
			bad.Header.Set("Content-Type", "application/json")
			bad.Header.Set("Authorization", "Bearer "+wrong.MobileToken)
			resp, err := http.DefaultClient.Do(bad)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			testutil.Equal(t, "chunked bad body: status", http.StatusBadRequest, resp.StatusCode)
			st, _ := e.do("GET", "/api/medtech/session/mobile", wrong.MobileToken, nil)
			testutil.Equal(t, "phone still connected after a refused reject", http.StatusOK, st)
			st, body := e.do("POST", "/api/medtech/session/mobile/reject", wrong.MobileToken, nil)
			testutil.Equal(t, "reject status", http.StatusNoContent, st)
			ev := rec.wait(t, EventMobileRejected)
			var data mobileRejectedEvent
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				t.Fatal(err)
			}
			testutil.Equal(t, "event session", c.SessionID, data.SessionID)
			if data.At.IsZero() {
				t.Error("mobile.rejected has no time")
			}
			for _, call := range []struct{ method, path string }{
				{"GET", "/api/medtech/session/mobile"},
				{"POST", "/api/medtech/session/presigned-url"},
			} {
				st, body = e.do(call.method, call.path, wrong.MobileToken, map[string]any{})
				testutil.Equal(t, call.path+": status", http.StatusGone, st)
				testutil.Equal(t, call.path+": code", "phone_revoked", errCode(body))
			}
			st, _ = e.do("POST", "/api/medtech/session/mobile/reject", wrong.MobileToken, nil)
			testutil.Equal(t, "second reject", http.StatusNoContent, st)
			e.addImage(keep.MobileToken, testutil.JPEG(t, 3), "image/jpeg")
			snap := e.snapshot(c.SessionID)
			testutil.Equal(t, "phones after reject", 1, snap.Phones)
			testutil.Equal(t, "mobileConnected", true, snap.MobileConnected)
			st, body = e.do("POST", "/api/medtech/session/mobile/reject", "", nil)
			testutil.Equal(t, "no token", http.StatusUnauthorized, st)
			testutil.Equal(t, "no token: code", "unauthorized", errCode(body))
			testutil.Equal(t, "log names no token", false, strings.Contains(e.log.String(), wrong.MobileToken))
		})
	}
}

// TestMobileView: the phone's view follows the session: its remaining
// count, the desktop moving on to another patient, filing and expiry.
func TestMobileView(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b, Config{MaxImages: 3})
			c := e.create("enc-view")
			mob := e.claim(c.Token).MobileToken
			v := e.mobileView(mob)
			testutil.Equal(t, "status", "open", v.Status)
			testutil.Equal(t, "phoneActive", true, v.PhoneActive)
			testutil.Equal(t, "patient", testDisplay, v.PatientDisplay)
			testutil.Equal(t, "NHI", testNHI, v.PatientNHI)
			img := e.addImage(mob, testutil.JPEG(t, 4), "image/jpeg")
			testutil.Equal(t, "remaining after one photo", 2, e.mobileView(mob).Remaining)
			st, b := e.do("DELETE", "/api/medtech/session/"+c.SessionID+"/images/"+img.ID, e.jwt, nil)
			testutil.Equal(t, "desktop deletes: "+string(b), http.StatusNoContent, st)
			testutil.Equal(t, "remaining after the desktop deleted it", 3, e.mobileView(mob).Remaining)

			e.create("enc-other") // the desktop moves on to another encounter
			v = e.mobileView(mob)
			testutil.Equal(t, "status after moving on", "closed", v.Status)
			testutil.Equal(t, "phoneActive after moving on", false, v.PhoneActive)
			testutil.Equal(t, "remaining after moving on", 0, v.Remaining)
			e.create("enc-view") // and back
			testutil.Equal(t, "status back", "open", e.mobileView(mob).Status)

			if err := e.store.SetStatus(context.Background(), c.SessionID, session.StatusCommitted, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			v = e.mobileView(mob)
			testutil.Equal(t, "status after filing", "committed", v.Status)
			testutil.Equal(t, "phoneActive after filing", false, v.PhoneActive)
			e.clock.Advance(session.DefaultTTL)
			testutil.Equal(t, "status after expiry", "expired", e.mobileView(mob).Status)
			if err := e.store.Remove(context.Background(), c.SessionID); err != nil {
				t.Fatal(err)
			}
			st, b = e.do("GET", "/api/medtech/session/mobile", mob, nil)
			testutil.Equal(t, "removed session", http.StatusUnauthorized, st)
			testutil.Equal(t, "removed session: code", "invalid_token", errCode(b))
		})
	}
}
