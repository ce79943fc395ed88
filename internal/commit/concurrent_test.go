package commit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/handoff-health/handoff/internal/alex"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/internal/testutil"
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

			testutil.Check(t, "Media requests for 6 images", 6, e.fake.MediaRequests())
			for i, r := range replies {
				checkReply(t, fmt.Sprintf("reply %d", i), replySummary{StatusCommitted, session.StatusCommitted, 6, 0, 6}, r)
			}
			for j := range replies[0].Results {
				testutil.Check(t, fmt.Sprintf("alexId of image %d in both replies", j),
					replies[0].Results[j].AlexID, replies[1].Results[j].AlexID)
			}
			types := eventTypes(e.events(sd.id))
			testutil.Check(t, "image.committed events", 6, countOf(types, EventImageCommitted))
			testutil.Check(t, "session.committed events", 1, countOf(types, EventSessionCommitted))
			if len(types) == 0 || types[len(types)-1] != EventSessionCommitted {
				t.Errorf("last event is not %s: %v", EventSessionCommitted, types)
			}
			lines := e.auditLines()
			if testutil.Check(t, "audit lines", 2, len(lines)) {
				testutil.Check(t, "images committed by both requests", 6.0,
					lines[0]["committed"].(float64)+lines[1]["committed"].(float64))
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
