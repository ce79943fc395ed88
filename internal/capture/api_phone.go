package capture

import (
	"context"
	"errors"
	"math"
	"net/http"
	"path"
	"strconv"

	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/httpx"
	"github.com/handoff-health/handoff/internal/session"
)

// claim exchanges a QR token, once, for the session's mobile token. A
// well-formed token is always tried against the store first: a valid one
// is never refused for rate, whoever else shares the phone's address. Only
// a failed claim counts against the address, and once its failures are
// over the limit they are answered 429 instead of 404 or 410.
func (a *API) claim(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if !tokenShape(token, qrTokenBytes) {
		a.claimFailed(w, r, session.ErrTokenNotFound)
		return
	}
	mobile := newToken(mobileTokenBytes)
	t := a.Touch()
	s, err := a.store.Claim(r.Context(), session.HashToken(token), session.HashToken(mobile), t)
	if err != nil {
		a.claimFailed(w, r, err)
		return
	}
	ctx, cancel := detached(r)
	defer cancel()
	// A claim is answered even when its event is only kept for
	// republishing: the QR token is spent, so a 503 would lock the phone
	// out of a session it has joined. The desktop learns of it from the
	// kept event, or from its next snapshot.
	_ = a.publish(ctx, s.ID, EventMobileConnected, mobileConnectedEvent{SessionID: s.ID, ConnectedAt: t.Now})
	a.log.Info().Str("session", s.ID).Msg("phone connected")
	httpx.WriteJSON(w, http.StatusOK, claimReply{
		SessionID:      s.ID,
		PatientDisplay: s.PatientDisplay,
		PatientNHI:     s.PatientNHI,
		PatientDOB:     s.PatientDOB,
		MaxImages:      s.MaxImages,
		MaxImageBytes:  a.cfg.MaxImageBytes,
		ImageCount:     len(s.Images),
		Remaining:      s.Remaining(t.Now),
		ExpiresAt:      s.ExpiresAt.UTC(),
		MobileToken:    mobile,
	})
}

// claimFailed answers a failed claim, charging it to the client's address:
// 429 with Retry-After once that address has failed too often, else the
// failure itself. A store fault is not the client's doing and is not
// charged.
func (a *API) claimFailed(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpx.Error
	if errors.As(apiError(err), &he) {
		if wait, ok := a.claims.allow(httpx.ClientAddr(r), a.now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			err = httpx.Errorf(http.StatusTooManyRequests, "rate_limited", "too many invalid QR code scans; try again shortly")
		}
	}
	a.fail(w, r, apiError(err))
}

// presignRequest is the body of POST /api/medtech/session/presigned-url.
type presignRequest struct {
	ImageID     string `json:"imageId"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
}

func (a *API) checkPresign(req presignRequest) error {
	if err := checkImageID(req.ImageID); err != nil {
		return err
	}
	if !blob.IsImageType(req.ContentType) {
		return httpx.Errorf(http.StatusUnprocessableEntity, "unsupported_image_type",
			"contentType must be image/jpeg, image/png or image/heic")
	}
	if req.Size <= 0 {
		return invalid("size must be a positive number of bytes")
	}
	if req.Size > a.cfg.MaxImageBytes {
		return errTooLarge(a.cfg.MaxImageBytes)
	}
	return nil
}

func errTooLarge(max int64) error {
	return httpx.Errorf(http.StatusRequestEntityTooLarge, "image_too_large", "an image may be at most %d bytes", max)
}

// presignReply is the blob store's upload instructions plus the key to
// register afterwards (the upload key).
type presignReply struct {
	blob.Upload
	Key string `json:"key"`
}

// presign reserves an image slot and signs an upload URL for it.
func (a *API) presign(w http.ResponseWriter, r *http.Request) {
	s, err := a.phone(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req presignRequest
	if err := httpx.DecodeJSON(w, r, &req, maxBody); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.checkPresign(req); err != nil {
		a.fail(w, r, err)
		return
	}
	t := a.Touch()
	// The URL writes the upload key only; register copies what it checks to
	// the stored key, which no URL can write.
	key := blob.UploadKey(s.ID, req.ImageID)
	p := session.PendingUpload{Key: key, ContentType: req.ContentType, Size: req.Size, ExpiresAt: t.Now.Add(a.cfg.UploadURLTTL)}
	if err := a.store.Reserve(r.Context(), s.ID, req.ImageID, p, t); err != nil {
		a.fail(w, r, apiError(err))
		return
	}
	up, err := a.blobs.PresignUpload(r.Context(), key, req.ContentType, req.Size, a.cfg.UploadURLTTL)
	if errors.Is(err, blob.ErrInvalidUpload) {
		// The blob store's own limit is below MaxImageBytes: a config slip
		// worth a warning, but to the phone the image is simply too large.
		a.log.Warn().Str("session", s.ID).Msg("blob store refused a size within MaxImageBytes; lower MaxImageBytes to the store's limit")
		err = httpx.Errorf(http.StatusRequestEntityTooLarge, "image_too_large", "the image store does not accept an image this large")
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info().Str("session", s.ID).Str("image", req.ImageID).Msg("image upload signed")
	httpx.WriteJSON(w, http.StatusOK, presignReply{Upload: up, Key: key})
}

// registerRequest is the body of POST /api/medtech/session/images.
type registerRequest struct {
	ImageID  string            `json:"imageId"`
	Key      string            `json:"key"`
	Metadata *session.Metadata `json:"metadata"`
}

func (req *registerRequest) check(sessionID string) error {
	if err := checkImageID(req.ImageID); err != nil {
		return err
	}
	if req.Key != blob.UploadKey(sessionID, req.ImageID) {
		return httpx.Errorf(http.StatusForbidden, "key_mismatch", "key is not this session's key for imageId")
	}
	if req.Metadata == nil {
		req.Metadata = &session.Metadata{}
	}
	return apiError(req.Metadata.Validate())
}

// register checks an uploaded object and adds it to the session.
func (a *API) register(w http.ResponseWriter, r *http.Request) {
	s, err := a.phone(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req registerRequest
	if err := httpx.DecodeJSON(w, r, &req, maxBody); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := req.check(s.ID); err != nil {
		a.fail(w, r, err)
		return
	}
	img, added, err := a.addImage(r, s, req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ctx, cancel := detached(r)
	defer cancel()
	view, err := a.ImageView(ctx, img)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	status := http.StatusOK
	switch {
	case added:
		status = http.StatusCreated
		err = a.publish(ctx, s.ID, EventImageAdded, view)
	case img.Commit.Status == "" || img.Commit.Status == session.CommitPending:
		// Only an image not yet being filed: image.added shows a photo as
		// not filed, which the desktop must not be told of a filed one.
		err = a.reannounce(ctx, s.ID, view)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if added {
		a.log.Info().Str("session", s.ID).Str("image", img.ID).Msg("image registered")
	}
	httpx.WriteJSON(w, status, view)
}

// addImage verifies the upload and stores the image; an image registered
// before is returned as is (added false), without checking again.
//
// The upload is moved (local store) or copied inside the store (S3) to the
// image's stored key, and the stored bytes are checked and hashed there
// (blob.Promote); the upload is then deleted. From then on no upload URL can
// change what the image is, and commit files only bytes with the recorded hash.
func (a *API) addImage(r *http.Request, s session.Session, req registerRequest) (session.Image, bool, error) {
	if img, ok := s.Image(req.ImageID); ok {
		return img, false, nil
	}
	p, ok := s.Pending[req.ImageID]
	if !ok {
		return session.Image{}, false, errUploadMissing
	}
	ctx, cancel := detached(r)
	defer cancel()
	stored := blob.Key(s.ID, req.ImageID)
	checked, err := a.promote(ctx, s.ID, req.Key, stored, p)
	if err != nil {
		return session.Image{}, false, err
	}
	t := a.Touch()
	img := session.Image{
		ID:          req.ImageID,
		Key:         stored,
		ContentType: p.ContentType,
		Size:        p.Size,
		SHA256:      checked.SHA256,
		Metadata:    *req.Metadata,
		CreatedAt:   t.Now,
		Commit:      session.Commit{Status: session.CommitPending},
	}
	got, added, err := a.store.AddImage(ctx, s.ID, img, t)
	switch {
	case errors.Is(err, session.ErrTooManyImages) || errors.Is(err, session.ErrClosed):
		a.deleteBlob(ctx, s.ID, stored)
		a.deleteBlob(ctx, s.ID, req.Key)
	case err == nil:
		a.deleteBlob(ctx, s.ID, req.Key)
	}
	// Any other error leaves the upload for the phone's retry of register.
	return got, added, apiError(err)
}

var errUploadMissing = httpx.Errorf(http.StatusUnprocessableEntity, "upload_missing",
	"no uploaded object for this imageId; ask for an upload URL and upload first")

// promote makes the upload the stored object and checks it against what was
// signed: the size, the magic bytes and a header that parses, of no more than
// MaxImagePixels. A refused upload is deleted (Promote deletes a refused
// stored object), so nothing unverified stays in the store.
func (a *API) promote(ctx context.Context, sessionID, uploadKey, storedKey string, p session.PendingUpload) (blob.Promoted, error) {
	checked, err := blob.Promote(ctx, a.blobs, uploadKey, storedKey,
		blob.Expect{ContentType: p.ContentType, Size: p.Size, MaxPixels: a.cfg.MaxImagePixels})
	var refusal error
	switch {
	case err == nil:
		return checked, nil
	case errors.Is(err, blob.ErrNotFound):
		return blob.Promoted{}, errUploadMissing
	case errors.Is(err, blob.ErrSize):
		refusal = httpx.Errorf(http.StatusUnprocessableEntity, "size_mismatch",
			"the uploaded object is not the size that was signed; it was deleted")
		a.reject(ctx, sessionID, uploadKey, "size")
	case errors.Is(err, blob.ErrTooManyPixels):
		refusal = httpx.Errorf(http.StatusUnprocessableEntity, "image_too_many_pixels",
			"the image is larger than %d pixels (width × height); it was deleted", a.cfg.MaxImagePixels)
		a.reject(ctx, sessionID, uploadKey, "pixels")
	case errors.Is(err, blob.ErrInvalidImage):
		refusal = httpx.Errorf(http.StatusUnprocessableEntity, "invalid_image",
			"the uploaded object is not a well-formed %s image; it was deleted", p.ContentType)
		a.reject(ctx, sessionID, uploadKey, "content")
	default:
		return blob.Promoted{}, err
	}
	return blob.Promoted{}, refusal
}

// reject deletes an upload that failed verification. It logs the image id,
// never the object's key: handlers here log no paths.
func (a *API) reject(ctx context.Context, sessionID, key, reason string) {
	a.log.Info().Str("session", sessionID).Str("image", path.Base(key)).Str("reason", reason).Msg("uploaded object rejected")
	a.deleteBlob(ctx, sessionID, key)
}
