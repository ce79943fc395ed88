package publish

import "net/http"

// stats serves GET /stats: an empty list. handoff keeps no per-app usage
// statistics (its metrics are on /metrics); an authenticated SDK call
// such as ably-go's Stats() gets a well-formed empty page instead of a 404.
func (h *Handler) stats(w http.ResponseWriter, r *http.Request) {
	if _, err := h.authenticate(r); err != nil {
		writeError(w, r, err)
		return
	}
	writeReply(w, r, http.StatusOK, []struct{}{}, nil)
}
