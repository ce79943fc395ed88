package session

import "time"

// ImageView is an image as clients see it, in snapshots and in the events
// of a session's channel: the stored image without its blob key, plus a
// signed download URL. The capture API renders it (it holds the blob
// store); the committer puts it in its events, so every event shows an
// image the same way.
type ImageView struct {
	ID           string    `json:"id"`
	ContentType  string    `json:"contentType"`
	Size         int64     `json:"size"`
	Metadata     Metadata  `json:"metadata"`
	URL          string    `json:"url"`
	URLExpiresAt time.Time `json:"urlExpiresAt"`
	CreatedAt    time.Time `json:"createdAt"`
	Commit       Commit    `json:"commit"`
}
