package session

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// MemoryStore is the embedded single-node Store: sessions live in process
// memory behind one mutex, which makes every method trivially atomic.
type MemoryStore struct {
	mu       sync.Mutex
	sessions map[string]*memSession
	// byEncounter maps facility + encounter to the open session.
	byEncounter map[encounterKey]string
	// qr and mobile map token hashes to session ids. A QR hash stays after
	// it is claimed or superseded, so a second scan gets a clear "gone".
	qr     map[string]string
	mobile map[string]string
	// providers maps facility + provider to the session it opened last.
	providers map[encounterKey]string
}

var _ Store = (*MemoryStore)(nil)

type encounterKey struct{ facility, encounter string }

type memSession struct {
	s         Session
	qr        QRToken
	qrClaimed bool
	// phones maps each claimed mobile token hash to whether it still works
	// (false: revoked). Revoked hashes stay so their calls get a clear
	// ErrPhoneRevoked.
	phones map[string]bool
	// leaseUntil is when a sweep that took this session may be retried.
	leaseUntil time.Time
	// uploadLease is, per pending image id, when a sweep that took its
	// stale upload may be retried.
	uploadLease map[string]time.Time
}

// extend moves the session's expiry forward (never back, never past its
// deadline) for a write.
func (ms *memSession) extend(at Touch) {
	if exp := clampExpiry(at.Expires, ms.s.Deadline); exp.After(ms.s.ExpiresAt) {
		ms.s.ExpiresAt = exp
	}
}

// NewMemoryStore returns an empty memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		sessions:    make(map[string]*memSession),
		byEncounter: make(map[encounterKey]string),
		qr:          make(map[string]string),
		mobile:      make(map[string]string),
		providers:   make(map[encounterKey]string),
	}
}

// snapshot returns a copy of the session with its phone count.
func (ms *memSession) snapshot() Session {
	s := copySession(ms.s)
	for _, active := range ms.phones {
		if active {
			s.Phones++
		}
	}
	return s
}

// copySession returns a copy sharing nothing mutable with the store.
func copySession(s Session) Session {
	s.Images = slices.Clone(s.Images)
	s.Pending = maps.Clone(s.Pending)
	if s.Pending == nil {
		s.Pending = map[string]PendingUpload{}
	}
	return s
}

// live returns the session if it exists and has not expired at now.
// Called with m.mu held.
func (m *MemoryStore) live(id string, now time.Time) (*memSession, error) {
	ms := m.sessions[id]
	if ms == nil || !now.Before(ms.s.ExpiresAt) {
		return nil, ErrNotFound
	}
	return ms, nil
}

// open is live plus "still accepts images". Called with m.mu held.
func (m *MemoryStore) open(id string, now time.Time) (*memSession, error) {
	ms, err := m.live(id, now)
	if err == nil && ms.s.Status != StatusOpen {
		err = ErrClosed
	}
	return ms, err
}

// Open implements Store.
func (m *MemoryStore) Open(_ context.Context, s Session, qr QRToken, maxOpen int) (Session, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ek := encounterKey{s.Facility, s.EncounterID}
	if id, ok := m.byEncounter[ek]; ok {
		if ms, err := m.open(id, s.CreatedAt); err == nil {
			if ms.s.PatientID != s.PatientID {
				return Session{}, false, ErrPatientMismatch
			}
			ms.qr, ms.qrClaimed = qr, false
			ms.extend(Touch{Now: s.CreatedAt, Expires: s.ExpiresAt})
			m.qr[qr.Hash] = id
			m.providers[encounterKey{s.Facility, s.ProviderID}] = id
			return ms.snapshot(), false, nil
		}
	}
	if maxOpen > 0 && m.openCount(s.Facility, s.CreatedAt) >= maxOpen {
		return Session{}, false, ErrTooManySessions
	}
	s.Status = StatusOpen
	s.ExpiresAt = clampExpiry(s.ExpiresAt, s.Deadline)
	s.Images, s.Pending, s.MobileConnectedAt = nil, map[string]PendingUpload{}, time.Time{}
	m.sessions[s.ID] = &memSession{s: s, qr: qr, uploadLease: map[string]time.Time{}, phones: map[string]bool{}}
	m.byEncounter[ek] = s.ID
	m.qr[qr.Hash] = s.ID
	m.providers[encounterKey{s.Facility, s.ProviderID}] = s.ID
	return copySession(s), true, nil
}

// openCount counts the facility's open sessions live at now, by scanning:
// the embedded store holds a single clinic's sessions. Called with m.mu
// held.
func (m *MemoryStore) openCount(facility string, now time.Time) int {
	n := 0
	for _, ms := range m.sessions {
		if ms.s.Facility == facility && ms.s.Status == StatusOpen && now.Before(ms.s.ExpiresAt) {
			n++
		}
	}
	return n
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, id string, now time.Time) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, err := m.live(id, now)
	if err != nil {
		return Session{}, err
	}
	return ms.snapshot(), nil
}

// claimable finds the session of a QR token that can still be claimed.
// Called with m.mu held.
func (m *MemoryStore) claimable(qrHash string, now time.Time) (*memSession, error) {
	id, ok := m.qr[qrHash]
	if !ok {
		return nil, ErrTokenNotFound
	}
	ms, err := m.open(id, now)
	switch {
	case err != nil:
		return nil, ErrTokenExpired
	case ms.qr.Hash != qrHash:
		return nil, ErrTokenSuperseded
	case ms.qrClaimed:
		return nil, ErrTokenClaimed
	case !now.Before(ms.qr.ExpiresAt):
		return nil, ErrTokenExpired
	}
	return ms, nil
}

// PeekQR implements Store.
func (m *MemoryStore) PeekQR(_ context.Context, qrHash string, now time.Time) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, err := m.claimable(qrHash, now)
	if err != nil {
		return "", err
	}
	return ms.s.ID, nil
}

// Claim implements Store.
func (m *MemoryStore) Claim(_ context.Context, qrHash, mobileHash string, at Touch) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, err := m.claimable(qrHash, at.Now)
	if err != nil {
		return Session{}, err
	}
	if ms.snapshot().Phones >= MaxPhones {
		return Session{}, ErrTooManyPhones
	}
	ms.qrClaimed = true
	ms.phones[mobileHash] = true
	m.mobile[mobileHash] = ms.s.ID
	ms.s.MobileConnectedAt = at.Now
	ms.extend(at)
	return ms.snapshot(), nil
}

// ByMobile implements Store.
func (m *MemoryStore) ByMobile(_ context.Context, mobileHash string, now time.Time) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.mobile[mobileHash]
	if !ok {
		return Session{}, ErrTokenNotFound
	}
	ms, err := m.live(id, now)
	if err != nil {
		return Session{}, ErrTokenNotFound
	}
	if !ms.phones[mobileHash] {
		return Session{}, ErrPhoneRevoked
	}
	return ms.snapshot(), nil
}

// Phone implements Store.
func (m *MemoryStore) Phone(_ context.Context, mobileHash string, now time.Time) (Session, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms := m.sessions[m.mobile[mobileHash]]
	if ms == nil {
		return Session{}, false, ErrTokenNotFound
	}
	s := ms.snapshot()
	if !now.Before(s.ExpiresAt) {
		s.Status = StatusExpired
	}
	return s, ms.phones[mobileHash], nil
}

// RevokePhone implements Store.
func (m *MemoryStore) RevokePhone(_ context.Context, id, mobileHash string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, err := m.live(id, now)
	if err != nil {
		return err
	}
	if _, ok := ms.phones[mobileHash]; !ok {
		return ErrTokenNotFound
	}
	ms.phones[mobileHash] = false
	return nil
}

// ProviderSession implements Store.
func (m *MemoryStore) ProviderSession(_ context.Context, facility, provider string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.providers[encounterKey{facility, provider}], nil
}

// Reserve implements Store.
func (m *MemoryStore) Reserve(_ context.Context, id, imageID string, p PendingUpload, at Touch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, err := m.open(id, at.Now)
	if err != nil {
		return err
	}
	if _, ok := ms.s.Image(imageID); ok {
		return ErrImageExists
	}
	if liveSlots(len(ms.s.Images), ms.s.Pending, imageID, at.Now) >= ms.s.MaxImages {
		return ErrTooManyImages
	}
	if ms.s.MaxBytes > 0 && usedBytes(ms.s.Images, ms.s.Pending, imageID)+p.Size > ms.s.MaxBytes {
		return ErrQuotaExceeded
	}
	ms.s.Pending[imageID] = p
	delete(ms.uploadLease, imageID)
	ms.extend(at)
	return nil
}

// AddImage implements Store.
func (m *MemoryStore) AddImage(_ context.Context, id string, img Image, at Touch) (Image, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, err := m.open(id, at.Now)
	if err != nil {
		return Image{}, false, err
	}
	if old, ok := ms.s.Image(img.ID); ok {
		return old, false, nil
	}
	if len(ms.s.Images) >= ms.s.MaxImages {
		return Image{}, false, ErrTooManyImages
	}
	ms.s.Images = append(ms.s.Images, img)
	sortImages(ms.s.Images)
	delete(ms.s.Pending, img.ID)
	delete(ms.uploadLease, img.ID)
	ms.extend(at)
	return img, true, nil
}

// UpdateImage implements Store.
func (m *MemoryStore) UpdateImage(_ context.Context, id, imageID string, at Touch, update func(*Image) error) (Image, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, err := m.live(id, at.Now)
	if err != nil {
		return Image{}, err
	}
	i := slices.IndexFunc(ms.s.Images, func(img Image) bool { return img.ID == imageID })
	if i < 0 {
		return Image{}, ErrImageNotFound
	}
	img := ms.s.Images[i]
	if err := update(&img); err != nil {
		return Image{}, err
	}
	img.ID, img.Key, img.SHA256 = ms.s.Images[i].ID, ms.s.Images[i].Key, ms.s.Images[i].SHA256
	ms.s.Images[i] = img
	ms.extend(at)
	return img, nil
}

// RemoveImage implements Store.
func (m *MemoryStore) RemoveImage(_ context.Context, id, imageID string, at Touch) (Image, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, err := m.live(id, at.Now)
	if err != nil {
		return Image{}, err
	}
	i := slices.IndexFunc(ms.s.Images, func(img Image) bool { return img.ID == imageID })
	if i < 0 {
		return Image{}, ErrImageNotFound
	}
	img := ms.s.Images[i]
	if err := img.Commit.Editable(); err != nil {
		return Image{}, err
	}
	ms.s.Images = slices.Delete(ms.s.Images, i, i+1)
	ms.extend(at)
	return img, nil
}

// SetStatus implements Store.
func (m *MemoryStore) SetStatus(_ context.Context, id string, status Status, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms, err := m.live(id, now)
	if err != nil {
		return err
	}
	ms.s.Status = status
	if status != StatusOpen {
		m.dropEncounter(ms.s)
	}
	return nil
}

// dropEncounter removes the encounter index if it points at s.
// Called with m.mu held.
func (m *MemoryStore) dropEncounter(s Session) {
	ek := encounterKey{s.Facility, s.EncounterID}
	if m.byEncounter[ek] == s.ID {
		delete(m.byEncounter, ek)
	}
}

// Expired implements Store by scanning: the embedded store holds a single
// clinic's sessions, a few hundred at most.
func (m *MemoryStore) Expired(_ context.Context, now time.Time, lease time.Duration, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id, ms := range m.sessions {
		if len(ids) >= limit {
			break
		}
		if now.Before(ms.s.ExpiresAt) || now.Before(ms.leaseUntil) {
			continue
		}
		ms.s.Status = StatusExpired
		ms.leaseUntil = now.Add(lease)
		ids = append(ids, id)
	}
	return ids, nil
}

// StaleUploads implements Store by scanning, like Expired.
func (m *MemoryStore) StaleUploads(_ context.Context, before, now time.Time, lease time.Duration, limit int) ([]StaleUpload, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []StaleUpload
	for id, ms := range m.sessions {
		for imageID, p := range ms.s.Pending {
			if len(out) >= limit {
				return out, nil
			}
			if p.ExpiresAt.After(before) || now.Before(ms.uploadLease[imageID]) {
				continue
			}
			ms.uploadLease[imageID] = now.Add(lease)
			out = append(out, StaleUpload{SessionID: id, ImageID: imageID, PendingUpload: p})
		}
	}
	return out, nil
}

// DropUpload implements Store.
func (m *MemoryStore) DropUpload(_ context.Context, id, imageID string, expiresAt time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms := m.sessions[id]
	if ms == nil {
		return nil
	}
	if p, ok := ms.s.Pending[imageID]; ok && p.ExpiresAt.Equal(expiresAt) {
		delete(ms.s.Pending, imageID)
		delete(ms.uploadLease, imageID)
	}
	return nil
}

// PendingKeys implements Store.
func (m *MemoryStore) PendingKeys(_ context.Context, id string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms := m.sessions[id]
	if ms == nil {
		return nil, nil
	}
	keys := make([]string, 0, len(ms.s.Pending))
	for _, p := range ms.s.Pending {
		if p.Key != "" {
			keys = append(keys, p.Key)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// Remove implements Store.
func (m *MemoryStore) Remove(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ms := m.sessions[id]
	if ms == nil {
		return nil
	}
	m.dropEncounter(ms.s)
	// QR hashes of superseded tokens are found by value; sessions are few.
	for h, sid := range m.qr {
		if sid == id {
			delete(m.qr, h)
		}
	}
	for h := range ms.phones {
		delete(m.mobile, h)
	}
	pk := encounterKey{ms.s.Facility, ms.s.ProviderID}
	if m.providers[pk] == id {
		delete(m.providers, pk)
	}
	delete(m.sessions, id)
	return nil
}

// Ping implements Store; memory is always reachable.
func (m *MemoryStore) Ping(context.Context) error { return nil }
