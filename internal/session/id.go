package session

import "github.com/google/uuid"

// NewID returns a new session id: a random UUID in canonical lower-case
// form.
func NewID() string { return uuid.NewString() }

// ValidID reports whether id has the shape NewID mints, so anything else is
// "not found" without a store lookup and never reaches a store key.
func ValidID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}
