package capture

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/session"
)

// createRequest is the body of POST /api/medtech/session/tokens.
type createRequest struct {
	EncounterID    string `json:"encounterId"`
	PatientID      string `json:"patientId"`
	PatientNHI     string `json:"patientNhi"`
	PatientDisplay string `json:"patientDisplay"`
	PatientDOB     string `json:"patientDob"`
	ProviderID     string `json:"providerId"`
}

// newSession validates the request and builds the session it asks for.
// The patient's name and NHI are required: they are what the phone shows
// the GP to check that the photos go to the right person (issue 15).
func (req createRequest) newSession(c auth.Claims, t session.Touch, maxImages int) (session.Session, error) {
	if err := checkID("encounterId", req.EncounterID, true); err != nil {
		return session.Session{}, err
	}
	if err := checkID("patientId", req.PatientID, true); err != nil {
		return session.Session{}, err
	}
	if err := checkID("providerId", req.ProviderID, false); err != nil {
		return session.Session{}, err
	}
	nhi, err := normalizeNHI(req.PatientNHI)
	if err != nil {
		return session.Session{}, err
	}
	if nhi == "" {
		return session.Session{}, invalid("patientNhi is required: the phone shows it so the GP can check the patient")
	}
	display := strings.TrimSpace(req.PatientDisplay)
	if display == "" {
		return session.Session{}, invalid("patientDisplay is required: the phone shows the patient's name so the GP can check it")
	}
	if err := session.CheckText("patientDisplay", display, maxDisplayLen, false); err != nil {
		return session.Session{}, apiError(err)
	}
	dob, err := checkDOB(req.PatientDOB, t.Now)
	if err != nil {
		return session.Session{}, err
	}
	provider := req.ProviderID
	if provider == "" {
		provider = c.Provider
	}
	return session.Session{
		ID:             session.NewID(),
		Facility:       c.Facility,
		EncounterID:    req.EncounterID,
		PatientID:      req.PatientID,
		PatientNHI:     nhi,
		PatientDisplay: display,
		PatientDOB:     dob,
		ProviderID:     provider,
		MaxImages:      maxImages,
		CreatedAt:      t.Now,
		ExpiresAt:      t.Expires,
	}, nil
}

// create opens (or reopens) the encounter's session and mints a QR token.
// Either way the reply is 201 with a fresh token; "created" tells which.
func (a *API) create(w http.ResponseWriter, r *http.Request) {
	c, err := a.desktop(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req createRequest
	if err := httpx.DecodeJSON(w, r, &req, maxBody); err != nil {
		a.fail(w, r, err)
		return
	}
	t := a.Touch()
	s, err := req.newSession(c, t, a.cfg.MaxImages)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	s.MaxBytes = a.cfg.MaxSessionBytes
	s.Deadline = t.Now.Add(a.cfg.MaxSessionLifetime)
	token := newToken(qrTokenBytes)
	qr := session.QRToken{Hash: session.HashToken(token), ExpiresAt: t.Now.Add(a.cfg.QRTokenTTL)}
	s, created, err := a.store.Open(r.Context(), s, qr, a.cfg.MaxOpenSessionsPerFacility)
	if err != nil {
		a.fail(w, r, apiError(err))
		return
	}
	msg := "capture session reopened with a new QR code"
	if created {
		msg = "capture session created"
	}
	a.log.Info().Str("session", s.ID).Str("facility", s.Facility).Msg(msg)
	httpx.WriteJSON(w, http.StatusCreated, createReply{
		SessionID:        s.ID,
		Token:            token,
		MobileURL:        a.mobileURL(token),
		QRURL:            a.cfg.PublicURL + "/api/medtech/session/tokens/" + token + "/qr.svg",
		ExpiresAt:        qr.ExpiresAt,
		SessionExpiresAt: s.ExpiresAt.UTC(),
		Channel:          s.Channel(),
		Created:          created,
	})
}

// mobileURL is the phone page a QR code opens.
func (a *API) mobileURL(token string) string { return a.cfg.PublicURL + "/m/" + token }

// snapshot returns the session's state and the channel cursor it matches.
func (a *API) snapshot(w http.ResponseWriter, r *http.Request) {
	c, err := a.desktop(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id := r.PathValue("sessionId")
	if !session.ValidID(id) {
		a.fail(w, r, errSessionNotFound)
		return
	}
	// The cursor is read before the session: an event published between the
	// two reads is then both in the state and replayed after the cursor
	// (clients apply events idempotently by image id), never in neither.
	top, err := a.hub.Top(r.Context(), session.Channel(id))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	s, err := a.facilitySession(r.Context(), c, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	views, err := a.imageViews(r.Context(), s.Images)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, snapshotReply{
		SessionID:       s.ID,
		Status:          s.Status,
		EncounterID:     s.EncounterID,
		PatientDisplay:  s.PatientDisplay,
		PatientNHI:      s.PatientNHI,
		PatientDOB:      s.PatientDOB,
		MaxImages:       s.MaxImages,
		Images:          views,
		MobileConnected: s.Phones > 0,
		Phones:          s.Phones,
		CreatedAt:       s.CreatedAt.UTC(),
		ExpiresAt:       s.ExpiresAt.UTC(),
		DeleteAt:        deleteAt(s).UTC(),
		Channel:         s.Channel(),
		Cursor:          top.String(),
	})
}

// imageTarget authenticates a call on one image of a session: the desktop
// of the session's facility (a JWT has dots, a mobile token none) or the
// phone holding the session's mobile token. Another session's phone gets
// 404, as if the session did not exist.
func (a *API) imageTarget(r *http.Request) (s session.Session, imageID, actor string, err error) {
	id, imageID := r.PathValue("sessionId"), r.PathValue("imageId")
	if bearer := auth.BearerToken(r); bearer == "" || strings.Contains(bearer, ".") {
		actor = "desktop"
		var c auth.Claims
		if c, err = a.desktop(r); err == nil {
			s, err = a.facilitySession(r.Context(), c, id)
		}
	} else {
		actor = "phone"
		if s, err = a.phone(r); err == nil && s.ID != id {
			err = errSessionNotFound
		}
	}
	if err == nil && checkImageID(imageID) != nil {
		err = apiError(session.ErrImageNotFound)
	}
	return s, imageID, actor, err
}

// deleteImage removes an uncommitted image and its blob.
func (a *API) deleteImage(w http.ResponseWriter, r *http.Request) {
	s, imageID, actor, err := a.imageTarget(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	img, err := a.store.RemoveImage(r.Context(), s.ID, imageID, a.Touch())
	if err != nil {
		a.fail(w, r, apiError(err))
		return
	}
	ctx, cancel := detached(r)
	defer cancel()
	a.deleteBlob(ctx, s.ID, img.Key)
	if err := a.publish(ctx, s.ID, EventImageRemoved, imageRemovedEvent{SessionID: s.ID, ImageID: img.ID}); err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info().Str("session", s.ID).Str("image", img.ID).Str("by", actor).Msg("image removed")
	w.WriteHeader(http.StatusNoContent)
}

// metadataPatch is the body of PATCH .../images/{imageId}, a JSON merge
// patch of the image's metadata: an absent field is unchanged, null clears
// it, a value replaces it.
type metadataPatch struct {
	Laterality json.RawMessage `json:"laterality"`
	BodySite   json.RawMessage `json:"bodySite"`
	Notes      json.RawMessage `json:"notes"`
}

// apply merges p into m. It decodes strictly, like the request itself.
func (p metadataPatch) apply(m *session.Metadata) error {
	fields := []struct {
		name string
		raw  json.RawMessage
		dst  any
	}{
		{"laterality", p.Laterality, &m.Laterality},
		{"bodySite", p.BodySite, &m.BodySite},
		{"notes", p.Notes, &m.Notes},
	}
	for _, f := range fields {
		switch {
		case f.raw == nil:
		case bytes.Equal(f.raw, []byte("null")):
			switch d := f.dst.(type) {
			case *string:
				*d = ""
			case *session.BodySite:
				*d = session.BodySite{}
			}
		default:
			dec := json.NewDecoder(bytes.NewReader(f.raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(f.dst); err != nil {
				return invalid("metadata field %s has the wrong shape", f.name)
			}
		}
	}
	return m.Validate()
}

// patchImage edits an uncommitted image's metadata (desktop only).
func (a *API) patchImage(w http.ResponseWriter, r *http.Request) {
	c, err := a.desktop(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	s, err := a.facilitySession(r.Context(), c, r.PathValue("sessionId"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	imageID := r.PathValue("imageId")
	if checkImageID(imageID) != nil {
		a.fail(w, r, apiError(session.ErrImageNotFound))
		return
	}
	var p metadataPatch
	if err := httpx.DecodeJSON(w, r, &p, maxBody); err != nil {
		a.fail(w, r, err)
		return
	}
	img, err := a.store.UpdateImage(r.Context(), s.ID, imageID, a.Touch(), func(img *session.Image) error {
		if err := img.Commit.Editable(); err != nil {
			return err
		}
		return p.apply(&img.Metadata)
	})
	if err != nil {
		a.fail(w, r, apiError(err))
		return
	}
	view, err := a.ImageView(r.Context(), img)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info().Str("session", s.ID).Str("image", img.ID).Msg("image metadata updated")
	httpx.WriteJSON(w, http.StatusOK, view)
}
