package ablyrt

import (
	"testing"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/internal/testutil"
)

// TestQueueBoundsCountFramesBeingWritten: the send-queue bounds cover the
// batch the writer has taken until it is written, so a writer stuck on a
// slow client cannot let twice the bound pile up (one batch in flight,
// another queued). The test plays the writer: writing is set, so enqueue
// starts none, and it takes and releases batches as writeLoop does.
func TestQueueBoundsCountFramesBeingWritten(t *testing.T) {
	t.Parallel()
	newConn := func() *conn {
		s := &Server{cfg: Config{SendQueueMessages: 2, SendQueueBytes: 10}.withDefaults(), frames: newFrameCache(), log: zerolog.Nop()}
		c := &conn{s: s, format: ablyproto.FormatJSON}
		c.q.writing = true
		return c
	}

	c := newConn()
	if !c.enqueue([]byte("a")) || !c.enqueue([]byte("b")) {
		t.Fatal("frames within the bounds were refused")
	}
	batch, _, ok, _ := c.q.next(nil)
	testutil.Equal(t, "batch taken", 2, len(batch))
	if !ok {
		t.Fatal("no batch")
	}
	if c.enqueue([]byte("c")) {
		t.Error("a third frame was accepted while two (the bound) were being written")
	}
	testutil.Equal(t, "disconnected as a slow consumer", true, c.ending.Load())

	c = newConn()
	c.enqueue([]byte("a"))
	c.enqueue([]byte("b"))
	batch, _, _, _ = c.q.next(nil)
	c.q.written(batch, false)
	if !c.enqueue([]byte("c")) || !c.enqueue([]byte("d")) {
		t.Error("frames were refused after the batch was written")
	}
	testutil.Equal(t, "still connected", false, c.ending.Load())

	c = newConn()
	c.enqueue([]byte("123456"))
	c.q.next(nil)
	if c.enqueue([]byte("7890a")) {
		t.Error("bytes over the bound were accepted while 6 of 10 were being written")
	}
}
