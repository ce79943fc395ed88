package commit

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/alex"
	"github.com/handoff-health/handoff/internal/capture"
)

// slowCommitter holds each create a little, so concurrent requests overlap.
type slowCommitter struct {
	alex.Committer
	delay time.Duration
}

func (s slowCommitter) CreateMedia(ctx context.Context, in alex.MediaInput) (alex.Result, error) {
	time.Sleep(s.delay)
	return s.Committer.CreateMedia(ctx, in)
}

// Two commits of one session at once send each image to ALEX exactly once,
// and both report every image committed.
func TestCommitConcurrentRequests(t *testing.T) {
	t.Parallel()
	for _, sk := range storeKinds(t) {
		t.Run(sk.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{store: sk.make(t), cfg: Config{Concurrency: 2},
				wrap: func(c alex.Committer) alex.Committer { return slowCommitter{c, 20 * time.Millisecond} }})
			sd := e.seed(6)

			var wg sync.WaitGroup
			replies := make([]Reply, 2)
			start := make(chan struct{})
			for i := range replies {
				wg.Go(func() {
					<-start
					status, body := e.post(Request{SessionID: sd.id})
					if status != http.StatusOK {
						t.Errorf("request %d: %d %s", i, status, body)
						return
					}
					replies[i] = decodeReply(t, body)
				})
			}
			close(start)
			wg.Wait()

			if n := e.fake.MediaRequests(); n != 6 {
				t.Errorf("%d Media requests for 6 images", n)
			}
			for i, r := range replies {
				if r.Status != StatusCommitted || r.Committed != 6 || r.SessionStatus != capture.StatusCommitted {
					t.Errorf("reply %d: %+v", i, r)
				}
			}
			for j := range replies[0].Results {
				if replies[0].Results[j].AlexID != replies[1].Results[j].AlexID {
					t.Errorf("replies disagree on image %d: %+v / %+v", j, replies[0].Results[j], replies[1].Results[j])
				}
			}
			types := eventTypes(e.events(sd.id))
			if committed := countOf(types, EventImageCommitted); committed != 6 || countOf(types, EventSessionCommitted) != 1 ||
				types[len(types)-1] != EventSessionCommitted {
				t.Errorf("events %v", types)
			}
			lines := e.auditLines()
			if len(lines) != 2 || lines[0]["committed"].(float64)+lines[1]["committed"].(float64) != 6 {
				t.Errorf("audit lines %v", lines)
			}
		})
	}
}

func countOf(list []string, v string) int {
	n := 0
	for _, s := range list {
		if s == v {
			n++
		}
	}
	return n
}

func decodeReply(t *testing.T, body []byte) Reply {
	t.Helper()
	var r Reply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Error(err)
	}
	return r
}
