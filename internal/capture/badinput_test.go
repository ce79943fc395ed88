package capture

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
)

// badFixture is the state bad inputs are thrown at: sessions A and B, each
// claimed by a phone, A with one registered image.
type badFixture struct {
	e          *env
	a, b       createReply
	mobA, mobB string
	img        ImageView
}

// badCase is one bad request: prep runs first (its changes are the
// baseline), then run, which must get status and code and change nothing
// in sessions A and B and publish nothing.
type badCase struct {
	name   string
	prep   func(f *badFixture)
	run    func(f *badFixture) (int, []byte)
	status int
	code   string
	check  func(t *testing.T, f *badFixture)
}

// TestBadInput checks that every bad input gets its 4xx and code and leaves
// the stored state and the channels untouched, on both configurations.
func TestBadInput(t *testing.T) {
	t.Parallel()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b, Config{MaxImages: 9, MaxImageBytes: 64 << 10, ClaimsPerMinute: -1})
			f := &badFixture{e: e, a: e.create("enc-a"), b: e.create("enc-b")}
			f.mobA, f.mobB = e.claim(f.a.Token).MobileToken, e.claim(f.b.Token).MobileToken
			f.img = e.addImage(f.mobA, testutil.JPEG(t, 1), "image/jpeg")
			for _, c := range badCases() {
				if c.prep != nil {
					c.prep(f)
				}
				beforeA, beforeB := e.fingerprint(f.a.SessionID), e.fingerprint(f.b.SessionID)
				topA, topB := e.top(f.a.Channel), e.top(f.b.Channel)
				st, body := c.run(f)
				okStatus := testutil.Check(t, c.name+": status", c.status, st)
				okCode := testutil.Check(t, c.name+": error code", c.code, errCode(body))
				if !okStatus || !okCode {
					t.Logf("%s: reply %s", c.name, body)
				}
				testutil.Check(t, c.name+": stored state of A", beforeA, e.fingerprint(f.a.SessionID))
				testutil.Check(t, c.name+": stored state of B", beforeB, e.fingerprint(f.b.SessionID))
				testutil.Check(t, c.name+": top of A's channel (nothing published)", topA, e.top(f.a.Channel))
				testutil.Check(t, c.name+": top of B's channel (nothing published)", topB, e.top(f.b.Channel))
				if c.check != nil {
					c.check(t, f)
				}
			}
		})
	}
}

func (f *badFixture) imagePath(sessionID, imageID string) string {
	return "/api/medtech/session/" + sessionID + "/images/" + imageID
}

// presignUpload presigns imageID on A and uploads data under contentType.
func (f *badFixture) presignUpload(imageID, contentType string, data []byte) presignReply {
	p := f.e.presign(f.mobA, imageID, contentType, len(data))
	upload(f.e.t, p, data)
	return p
}

// blobGone checks that a rejected upload was deleted and nothing was stored
// for it.
func blobGone(sessionOf func(*badFixture) string, imageID string) func(*testing.T, *badFixture) {
	return func(t *testing.T, f *badFixture) {
		for _, key := range []string{blob.UploadKey(sessionOf(f), imageID), blob.Key(sessionOf(f), imageID)} {
			if _, err := f.e.blobs.Stat(context.Background(), key); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("rejected object still stored under %s: %v", key, err)
			}
		}
	}
}

// pngDeclaring returns a real PNG whose IHDR is rewritten (CRC too) to
// declare w×h: a small file that claims a huge image.
func pngDeclaring(t *testing.T, w, h uint32) []byte {
	b := testutil.PNG(t, 11)
	binary.BigEndian.PutUint32(b[16:], w) // after the signature, length and "IHDR"
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func sessionA(f *badFixture) string { return f.a.SessionID }

func badCases() []badCase {
	var cases []badCase
	cases = append(cases, desktopAuthCases()...)
	cases = append(cases, createCases()...)
	cases = append(cases, jsonCases()...)
	cases = append(cases, tokenCases()...)
	cases = append(cases, phoneAuthCases()...)
	cases = append(cases, presignCases()...)
	cases = append(cases, registerCases()...)
	cases = append(cases, imageCases()...)
	return append(cases, expiryCases()...)
}

func desktopAuthCases() []badCase {
	create := func(jwt string) func(*badFixture) (int, []byte) {
		return func(f *badFixture) (int, []byte) {
			return f.e.do("POST", "/api/medtech/session/tokens", jwt, map[string]any{"encounterId": "enc-x", "patientId": "p1"})
		}
	}
	forged := func() string {
		v, _ := auth.NewVerifier([]byte("another-secret-of-at-least-32-bytes!!"))
		tok, _ := v.Issue(auth.Claims{Facility: "fac-a", Provider: "p", Expires: time.Now().Add(time.Hour)})
		return tok
	}()
	return []badCase{
		{name: "create without JWT", run: create(""), status: 401, code: "unauthorized"},
		{name: "create with forged JWT", run: create(forged), status: 401, code: "invalid_token"},
		{name: "create with garbage JWT", run: create("a.b.c"), status: 401, code: "invalid_token"},
		{name: "create with expired JWT", run: func(f *badFixture) (int, []byte) {
			return create(f.e.issue("fac-a", -time.Hour))(f)
		}, status: 401, code: "token_expired"},
		{name: "snapshot with forged JWT", run: func(f *badFixture) (int, []byte) {
			return f.e.do("GET", "/api/medtech/session/"+f.a.SessionID, forged, nil)
		}, status: 401, code: "invalid_token"},
		{name: "snapshot of another facility's session", run: func(f *badFixture) (int, []byte) {
			return f.e.do("GET", "/api/medtech/session/"+f.a.SessionID, f.e.issue("fac-b", time.Hour), nil)
		}, status: 404, code: "session_not_found"},
		{name: "snapshot of unknown session", run: func(f *badFixture) (int, []byte) {
			return f.e.do("GET", "/api/medtech/session/"+uuid.NewString(), f.e.jwt, nil)
		}, status: 404, code: "session_not_found"},
		{name: "snapshot of malformed id", run: func(f *badFixture) (int, []byte) {
			return f.e.do("GET", "/api/medtech/session/..%2f..%2fetc", f.e.jwt, nil)
		}, status: 404, code: "session_not_found"},
		{name: "delete in another facility's session", run: func(f *badFixture) (int, []byte) {
			return f.e.do("DELETE", f.imagePath(f.a.SessionID, f.img.ID), f.e.issue("fac-b", time.Hour), nil)
		}, status: 404, code: "session_not_found"},
		{name: "patch in another facility's session", run: func(f *badFixture) (int, []byte) {
			return f.e.do("PATCH", f.imagePath(f.a.SessionID, f.img.ID), f.e.issue("fac-b", time.Hour), `{"notes":"x"}`)
		}, status: 404, code: "session_not_found"},
	}
}

func createCases() []badCase {
	create := func(body map[string]any) func(*badFixture) (int, []byte) {
		return func(f *badFixture) (int, []byte) {
			return f.e.do("POST", "/api/medtech/session/tokens", f.e.jwt, body)
		}
	}
	return []badCase{
		{name: "create without patientId", run: create(map[string]any{"encounterId": "enc-x"}), status: 400, code: "invalid_field"},
		{name: "create without encounterId", run: create(map[string]any{"patientId": "p"}), status: 400, code: "invalid_field"},
		{name: "create with short NHI", run: create(map[string]any{"encounterId": "e", "patientId": "p", "patientNhi": "ABC123"}), status: 400, code: "invalid_field"},
		{name: "create with NHI containing I", run: create(map[string]any{"encounterId": "e", "patientId": "p", "patientNhi": "AIC1234"}), status: 400, code: "invalid_field"},
		{name: "create with NHI mixed tail", run: create(map[string]any{"encounterId": "e", "patientId": "p", "patientNhi": "ABC12A4"}), status: 400, code: "invalid_field"},
		{name: "create with spaced patientId", run: create(map[string]any{"encounterId": "e", "patientId": "p 1"}), status: 400, code: "invalid_field"},
		{name: "create with long encounterId", run: create(map[string]any{"encounterId": strings.Repeat("e", 129), "patientId": "p"}), status: 400, code: "invalid_field"},
		{name: "create with control char in display", run: create(map[string]any{"encounterId": "e", "patientId": "p", "patientNhi": testNHI, "patientDisplay": "A\x07"}), status: 400, code: "invalid_field"},
		{name: "create with long display", run: create(map[string]any{"encounterId": "e", "patientId": "p", "patientNhi": testNHI, "patientDisplay": strings.Repeat("ā", 65)}), status: 400, code: "invalid_field"},
		{name: "create with wrong field type", run: create(map[string]any{"encounterId": 5, "patientId": "p"}), status: 400, code: "invalid_field"},
		{name: "create without a patient name", run: create(map[string]any{"encounterId": "e", "patientId": "p", "patientNhi": testNHI}), status: 400, code: "invalid_field"},
		{name: "create with a blank patient name", run: create(map[string]any{"encounterId": "e", "patientId": "p", "patientNhi": testNHI, "patientDisplay": "  "}), status: 400, code: "invalid_field"},
		{name: "create without an NHI", run: create(map[string]any{"encounterId": "e", "patientId": "p", "patientDisplay": testDisplay}), status: 400, code: "invalid_field"},
		{name: "create with a malformed DOB", run: create(map[string]any{"encounterId": "e", "patientId": "p", "patientNhi": testNHI, "patientDisplay": testDisplay, "patientDob": "12/03/1960"}), status: 400, code: "invalid_field"},
		{name: "create with an impossible DOB", run: create(map[string]any{"encounterId": "e", "patientId": "p", "patientNhi": testNHI, "patientDisplay": testDisplay, "patientDob": "1960-02-30"}), status: 400, code: "invalid_field"},
		{name: "create with a DOB in the future", run: create(map[string]any{"encounterId": "e", "patientId": "p", "patientNhi": testNHI, "patientDisplay": testDisplay, "patientDob": "2999-01-01"}), status: 400, code: "invalid_field"},
		{name: "reopen encounter for another patient", run: create(map[string]any{"encounterId": "enc-a", "patientId": "someone-else", "patientNhi": testNHI, "patientDisplay": testDisplay}), status: 409, code: "patient_mismatch"},
	}
}

func jsonCases() []badCase {
	presign := func(body any) func(*badFixture) (int, []byte) {
		return func(f *badFixture) (int, []byte) {
			return f.e.do("POST", "/api/medtech/session/presigned-url", f.mobA, body)
		}
	}
	return []badCase{
		{name: "malformed JSON", run: presign(`{"imageId":`), status: 400, code: "invalid_json"},
		{name: "empty body", run: presign(""), status: 400, code: "invalid_json"},
		{name: "two JSON values", run: presign(`{} {}`), status: 400, code: "invalid_json"},
		{name: "unknown field", run: presign(map[string]any{"imageId": uuid.NewString(), "contentType": "image/jpeg", "size": 10, "bucket": "x"}), status: 400, code: "unknown_field"},
		{name: "oversize JSON", run: func(f *badFixture) (int, []byte) {
			return f.e.do("POST", "/api/medtech/session/tokens", f.e.jwt,
				map[string]any{"encounterId": "e", "patientId": "p", "patientDisplay": strings.Repeat("x", 20<<10)})
		}, status: 413, code: "body_too_large"},
		{name: "non-JSON content type", run: presign(rawBody{"text/plain", `{}`}), status: 415, code: "unsupported_media_type"},
	}
}

func tokenCases() []badCase {
	claim := func(token func(*badFixture) string) func(*badFixture) (int, []byte) {
		return func(f *badFixture) (int, []byte) {
			return f.e.do("GET", "/api/medtech/session/tokens/"+token(f), "", nil)
		}
	}
	return []badCase{
		{name: "claim unknown QR token", run: claim(func(*badFixture) string { return newToken(qrTokenBytes) }), status: 404, code: "token_not_found"},
		{name: "claim malformed QR token", run: claim(func(*badFixture) string { return "not-a-token" }), status: 404, code: "token_not_found"},
		{name: "claim a mobile token as QR token", run: claim(func(f *badFixture) string { return f.mobA }), status: 404, code: "token_not_found"},
		{name: "claim already claimed QR token", run: claim(func(f *badFixture) string { return f.a.Token }), status: 410, code: "token_claimed"},
		{name: "QR of claimed token", run: func(f *badFixture) (int, []byte) {
			return f.e.do("GET", "/api/medtech/session/tokens/"+f.a.Token+"/qr.svg", "", nil)
		}, status: 410, code: "token_claimed"},
		{name: "QR of unknown token", run: func(f *badFixture) (int, []byte) {
			return f.e.do("GET", "/api/medtech/session/tokens/"+newToken(qrTokenBytes)+"/qr.svg", "", nil)
		}, status: 404, code: "token_not_found"},
	}
}

func phoneAuthCases() []badCase {
	presign := func(token func(*badFixture) string) func(*badFixture) (int, []byte) {
		return func(f *badFixture) (int, []byte) {
			return f.e.do("POST", "/api/medtech/session/presigned-url", token(f),
				map[string]any{"imageId": uuid.NewString(), "contentType": "image/jpeg", "size": 10})
		}
	}
	return []badCase{
		{name: "presign without mobile token", run: presign(func(*badFixture) string { return "" }), status: 401, code: "unauthorized"},
		{name: "presign with unknown mobile token", run: presign(func(*badFixture) string { return newToken(mobileTokenBytes) }), status: 401, code: "invalid_token"},
		{name: "presign with a QR token", run: presign(func(f *badFixture) string { return f.a.Token }), status: 401, code: "invalid_token"},
		{name: "presign with a desktop JWT", run: presign(func(f *badFixture) string { return f.e.jwt }), status: 401, code: "invalid_token"},
		{name: "register A's key with B's mobile token", run: func(f *badFixture) (int, []byte) {
			id := uuid.NewString()
			return f.e.register(f.mobB, id, blob.Key(f.a.SessionID, id), nil)
		}, status: 403, code: "key_mismatch"},
		{name: "delete A's image with B's mobile token", run: func(f *badFixture) (int, []byte) {
			return f.e.do("DELETE", f.imagePath(f.a.SessionID, f.img.ID), f.mobB, nil)
		}, status: 404, code: "session_not_found"},
		{name: "delete with unknown mobile token", run: func(f *badFixture) (int, []byte) {
			return f.e.do("DELETE", f.imagePath(f.a.SessionID, f.img.ID), newToken(mobileTokenBytes), nil)
		}, status: 401, code: "invalid_token"},
		{name: "delete without any token", run: func(f *badFixture) (int, []byte) {
			return f.e.do("DELETE", f.imagePath(f.a.SessionID, f.img.ID), "", nil)
		}, status: 401, code: "unauthorized"},
		{name: "patch with the phone's token", run: func(f *badFixture) (int, []byte) {
			return f.e.do("PATCH", f.imagePath(f.a.SessionID, f.img.ID), f.mobA, `{"notes":"x"}`)
		}, status: 401, code: "invalid_token"},
	}
}

func presignCases() []badCase {
	presign := func(imageID any, contentType string, size any) func(*badFixture) (int, []byte) {
		return func(f *badFixture) (int, []byte) {
			return f.e.do("POST", "/api/medtech/session/presigned-url", f.mobA,
				map[string]any{"imageId": imageID, "contentType": contentType, "size": size})
		}
	}
	id := uuid.NewString()
	return []badCase{
		{name: "presign GIF", run: presign(id, "image/gif", 10), status: 422, code: "unsupported_image_type"},
		{name: "presign content type with parameters", run: presign(id, "image/jpeg; q=1", 10), status: 422, code: "unsupported_image_type"},
		{name: "presign PDF", run: presign(id, "application/pdf", 10), status: 422, code: "unsupported_image_type"},
		{name: "presign over the size limit", run: presign(id, "image/jpeg", 64<<10+1), status: 413, code: "image_too_large"},
		{name: "presign empty image", run: presign(id, "image/jpeg", 0), status: 400, code: "invalid_field"},
		{name: "presign negative size", run: presign(id, "image/jpeg", -5), status: 400, code: "invalid_field"},
		{name: "presign fractional size", run: presign(id, "image/jpeg", 1.5), status: 400, code: "invalid_field"},
		{name: "presign non-UUID imageId", run: presign("../../x", "image/jpeg", 10), status: 400, code: "invalid_field"},
		{name: "presign upper-case imageId", run: presign(strings.ToUpper(id), "image/jpeg", 10), status: 400, code: "invalid_field"},
		{name: "presign a registered imageId", run: func(f *badFixture) (int, []byte) {
			return presign(f.img.ID, "image/jpeg", 10)(f)
		}, status: 409, code: "image_exists"},
		{name: "presign past maxImages",
			prep: func(f *badFixture) {
				for i := range 9 { // MaxImages
					f.e.addImage(f.mobB, testutil.PNG(f.e.t, byte(10+i)), "image/png")
				}
			},
			run: func(f *badFixture) (int, []byte) {
				return f.e.do("POST", "/api/medtech/session/presigned-url", f.mobB,
					map[string]any{"imageId": uuid.NewString(), "contentType": "image/jpeg", "size": 10})
			}, status: 409, code: "too_many_images"},
	}
}

func registerCases() []badCase {
	pendingID, randomID, pngID, sizeID := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	htmlJPEGID, htmlPNGID, hugeID := uuid.NewString(), uuid.NewString(), uuid.NewString()
	html := []byte("<html><body><script>document.write('not a photo')</script></body></html>")
	junk := make([]byte, 300)
	_, _ = rand.Read(junk)
	junk[0] = 0 // never a JPEG/PNG/HEIC signature by chance
	register := func(id string, metadata any) func(*badFixture) (int, []byte) {
		return func(f *badFixture) (int, []byte) {
			return f.e.register(f.mobA, id, blob.UploadKey(f.a.SessionID, id), metadata)
		}
	}
	return []badCase{
		{name: "register never presigned", run: register(uuid.NewString(), nil), status: 422, code: "upload_missing"},
		{name: "register without upload",
			prep: func(f *badFixture) { f.e.presign(f.mobA, pendingID, "image/jpeg", 100) },
			run:  register(pendingID, nil), status: 422, code: "upload_missing"},
		{name: "register random bytes labelled JPEG",
			prep: func(f *badFixture) { f.presignUpload(randomID, "image/jpeg", junk) },
			run:  register(randomID, nil), status: 422, code: "invalid_image", check: blobGone(sessionA, randomID)},
		{name: "register PNG labelled JPEG",
			prep: func(f *badFixture) { f.presignUpload(pngID, "image/jpeg", testutil.PNG(f.e.t, 7)) },
			run:  register(pngID, nil), status: 422, code: "invalid_image", check: blobGone(sessionA, pngID)},
		{name: "register object of another size than signed",
			prep: func(f *badFixture) {
				// Upload through the first URL after a second presign changed the size.
				data := testutil.JPEG(f.e.t, 8)
				first := f.e.presign(f.mobA, sizeID, "image/jpeg", len(data))
				f.e.presign(f.mobA, sizeID, "image/jpeg", len(data)+1)
				upload(f.e.t, first, data)
			},
			run: register(sizeID, nil), status: 422, code: "size_mismatch", check: blobGone(sessionA, sizeID)},
		{name: "register with bad laterality", run: register(uuid.NewString(), map[string]any{"laterality": "up"}), status: 400, code: "invalid_field"},
		{name: "register with unknown metadata field", run: register(uuid.NewString(), map[string]any{"colour": "red"}), status: 400, code: "unknown_field"},
		{name: "register with bodySite lacking code", run: register(uuid.NewString(),
			map[string]any{"bodySite": map[string]any{"system": "http://snomed.info/sct"}}), status: 400, code: "invalid_field"},
		{name: "register with a key of another image", run: func(f *badFixture) (int, []byte) {
			return f.e.register(f.mobA, uuid.NewString(), blob.UploadKey(f.a.SessionID, f.img.ID), nil)
		}, status: 403, code: "key_mismatch"},
		{name: "register naming the stored key", run: func(f *badFixture) (int, []byte) {
			return f.e.register(f.mobA, f.img.ID, blob.Key(f.a.SessionID, f.img.ID), nil)
		}, status: 403, code: "key_mismatch"},
		// Issue 13, item 8: magic bytes alone no longer pass.
		{name: "register JPEG magic then HTML",
			prep: func(f *badFixture) {
				f.presignUpload(htmlJPEGID, "image/jpeg", append([]byte{0xFF, 0xD8, 0xFF}, html...))
			},
			run: register(htmlJPEGID, nil), status: 422, code: "invalid_image", check: blobGone(sessionA, htmlJPEGID)},
		{name: "register PNG header then HTML",
			prep: func(f *badFixture) {
				f.presignUpload(htmlPNGID, "image/png", append([]byte("\x89PNG\r\n\x1a\n"), html...))
			},
			run: register(htmlPNGID, nil), status: 422, code: "invalid_image", check: blobGone(sessionA, htmlPNGID)},
		{name: "register PNG declaring 20000x20000",
			prep: func(f *badFixture) { f.presignUpload(hugeID, "image/png", pngDeclaring(f.e.t, 20000, 20000)) },
			run:  register(hugeID, nil), status: 422, code: "image_too_many_pixels", check: blobGone(sessionA, hugeID)},
		{name: "re-register the same imageId", run: func(f *badFixture) (int, []byte) {
			return f.e.register(f.mobA, f.img.ID, blob.UploadKey(f.a.SessionID, f.img.ID), nil)
		}, status: 200, code: "", check: func(t *testing.T, f *badFixture) {
			if n := len(f.e.snapshot(f.a.SessionID).Images); n != 1 {
				t.Errorf("re-register: %d images, want 1", n)
			}
		}},
	}
}

func imageCases() []badCase {
	patch := func(body string) func(*badFixture) (int, []byte) {
		return func(f *badFixture) (int, []byte) {
			return f.e.do("PATCH", f.imagePath(f.a.SessionID, f.img.ID), f.e.jwt, body)
		}
	}
	return []badCase{
		{name: "patch bad laterality", run: patch(`{"laterality":"sideways"}`), status: 400, code: "invalid_field"},
		{name: "patch laterality of wrong type", run: patch(`{"laterality":5}`), status: 400, code: "invalid_field"},
		{name: "patch unknown field", run: patch(`{"size":1}`), status: 400, code: "unknown_field"},
		{name: "patch bodySite with unknown member", run: patch(`{"bodySite":{"system":"http://snomed.info/sct","code":"1","x":1}}`), status: 400, code: "invalid_field"},
		{name: "patch long notes", run: patch(`{"notes":"` + strings.Repeat("n", session.MaxNotesLen+1) + `"}`), status: 400, code: "invalid_field"},
		{name: "patch unknown image", run: func(f *badFixture) (int, []byte) {
			return f.e.do("PATCH", f.imagePath(f.a.SessionID, uuid.NewString()), f.e.jwt, `{"notes":"x"}`)
		}, status: 404, code: "image_not_found"},
		{name: "delete unknown image", run: func(f *badFixture) (int, []byte) {
			return f.e.do("DELETE", f.imagePath(f.a.SessionID, uuid.NewString()), f.e.jwt, nil)
		}, status: 404, code: "image_not_found"},
		{name: "patch image being committed",
			prep: func(f *badFixture) {
				_, err := f.e.store.UpdateImage(context.Background(), f.a.SessionID, f.img.ID, f.e.api.Touch(), func(img *session.Image) error {
					img.Commit = session.Commit{Status: session.CommitCommitting, ClaimedAt: f.e.clock.Now()}
					return nil
				})
				if err != nil {
					f.e.t.Fatal(err)
				}
			},
			run: patch(`{"notes":"late"}`), status: 409, code: "image_committing"},
		{name: "delete image being committed", run: func(f *badFixture) (int, []byte) {
			return f.e.do("DELETE", f.imagePath(f.a.SessionID, f.img.ID), f.e.jwt, nil)
		}, status: 409, code: "image_committing"},
		{name: "patch committed image",
			prep: func(f *badFixture) {
				_, err := session.SetCommit(context.Background(), f.e.store, f.a.SessionID, f.img.ID,
					session.Commit{Status: session.CommitCommitted, AlexID: "media-1", CommittedAt: f.e.clock.Now()}, f.e.api.Touch())
				if err != nil {
					f.e.t.Fatal(err)
				}
			},
			run: patch(`{"notes":"late"}`), status: 409, code: "image_committed"},
		{name: "delete committed image", run: func(f *badFixture) (int, []byte) {
			return f.e.do("DELETE", f.imagePath(f.a.SessionID, f.img.ID), f.e.jwt, nil)
		}, status: 409, code: "image_committed"},
		{name: "phone deletes committed image", run: func(f *badFixture) (int, []byte) {
			return f.e.do("DELETE", f.imagePath(f.a.SessionID, f.img.ID), f.mobA, nil)
		}, status: 409, code: "image_committed"},
	}
}

// expiryCases come last: they move the clock.
func expiryCases() []badCase {
	var first, second createReply
	claim := func(tok func() string) func(*badFixture) (int, []byte) {
		return func(f *badFixture) (int, []byte) {
			return f.e.do("GET", "/api/medtech/session/tokens/"+tok(), "", nil)
		}
	}
	return []badCase{
		{name: "claim superseded QR token",
			prep: func(f *badFixture) { first, second = f.e.create("enc-c"), f.e.create("enc-c") },
			run:  claim(func() string { return first.Token }), status: 410, code: "token_superseded",
			check: func(t *testing.T, f *badFixture) {
				testutil.Check(t, "second create: session id", first.SessionID, second.SessionID)
				testutil.Check(t, "second create: created", false, second.Created)
			}},
		{name: "claim expired QR token",
			prep: func(f *badFixture) { f.e.clock.Advance(DefaultQRTokenTTL + time.Second) },
			run:  claim(func() string { return second.Token }), status: 410, code: "token_expired"},
		{name: "QR of expired token", run: func(f *badFixture) (int, []byte) {
			return f.e.do("GET", "/api/medtech/session/tokens/"+second.Token+"/qr.svg", "", nil)
		}, status: 410, code: "token_expired"},
	}
}
