package fanout

import (
	"bytes"
	"strconv"
)

// Case C′ (issue 14, --batch-spread) on handoff: Ably's batch publish,
// POST /messages with an array of specs {channels, messages}, one channel
// and one message each. handoff answers 201 with one BatchResult per spec,
// {"successCount","failureCount","results":[…]}, and a channel it refuses
// is a failure inside that 201, so the reply is read.

const handoffBatchPath = "/messages"

// batchFailures is a 201 batch reply in which n of the request's messages
// were not published; the connection stays usable.
type batchFailures int

func (e batchFailures) Error() string { return "batch: " + strconv.Itoa(int(e)) + " channels refused" }

var successKey = []byte(`"successCount":`)

// batchReplyError checks a batch reply to a request of want specs: their
// successCounts must add up to want (a reply cut at centrifugoReplyLimit,
// or one in another shape, adds up to less, and counts as failed).
func batchReplyError(body []byte, want int) error {
	got := 0
	for {
		i := bytes.Index(body, successKey)
		if i < 0 {
			break
		}
		body = body[i+len(successKey):]
		n, digits := parseUint(body)
		if digits == 0 {
			break
		}
		got += int(n)
	}
	if got == want {
		return nil
	}
	return batchFailures(max(want-got, 1))
}
