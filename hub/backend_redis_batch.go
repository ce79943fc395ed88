package hub

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Group commit of Redis publishes. Each Publish queues its event; one
// flush at a time (the first publisher to find none running, then a
// flusher goroutine) takes everything queued and stores it with one
// publish.lua call (on a Cluster, one call per hash slot, sent
// concurrently), then answers every caller. While that round trip is in
// flight the next publishes queue, so under load a batch is as large as
// the concurrency and Redis sees one EVALSHA (and one INFO pair) per batch
// instead of per event; alone, a publish is sent by its own goroutine and
// costs what it did.
//
// Why the contract holds:
//   - Durable before return: a caller is answered only with its event as
//     publish.lua returned it, after the call that stored it.
//   - Atomic: each call is one script. A script error fails every event of
//     its call, which is "unknown whether stored": each is then in
//     history whole or nowhere, as for a timeout.
//   - Per-channel order: rounds are sent one after another, and a round
//     keeps queue order, so a caller's publish taken after its previous one
//     returned gets a later offset. Concurrent publishes have no order to
//     keep beyond the offsets Redis gives them.
//   - Rollback detection: publish.lua reads the generation inside the
//     same script that writes, so every event is checked against the
//     dataset it lands in, exactly as when each event had its own call.
const (
	// maxBatchEvents and maxBatchBytes bound one script call, so one batch
	// does not hold Redis (a single-threaded server) for long.
	maxBatchEvents = 128
	maxBatchBytes  = 1 << 20
)

// pubReq is one queued publish.
type pubReq struct {
	ctx     context.Context
	channel string
	pubsub  string // PubSub channel; the channel's "pub" key but in tests
	p       Publication
	res     string
	err     error
	done    chan struct{} // receives one value when res/err are set
}

var pubReqPool = sync.Pool{New: func() any { return &pubReq{done: make(chan struct{}, 1)} }}

// batcher is the Redis backend's publish queue.
type batcher struct {
	// mu guards queue and flushing. A leaf, never held across I/O.
	mu       sync.Mutex
	queue    []*pubReq
	spare    []*pubReq
	flushing bool
}

// submit queues req. If no flush is running, the caller leads: it sends
// everything queued (its own event included) itself, so a lone publish
// costs no goroutine handoff; publishes queued meanwhile are then sent by
// a flusher goroutine, while the leader returns.
func (r *Redis) submit(req *pubReq) {
	b := &r.batch
	b.mu.Lock()
	b.queue = append(b.queue, req)
	lead := !b.flushing
	b.flushing = true
	b.mu.Unlock()
	if lead && r.flushRound() {
		go r.flush()
	}
}

// flush sends rounds until the queue is empty.
func (r *Redis) flush() {
	for r.flushRound() {
	}
}

// flushRound sends everything queued, in batches of bounded size and in
// queue order. It reports whether more was queued meanwhile; if not, it
// has ended the flush (flushing is false).
func (r *Redis) flushRound() bool {
	b := &r.batch
	b.mu.Lock()
	batch := b.queue
	b.queue, b.spare = b.spare[:0], nil
	b.mu.Unlock()

	taken := batch
	for len(batch) > 0 {
		n, size := 0, 0
		for n < len(batch) && n < maxBatchEvents && (n == 0 || size+len(batch[n].p.Data) <= maxBatchBytes) {
			size += len(batch[n].p.Data)
			n++
		}
		r.send(batch[:n])
		batch = batch[n:]
	}
	clear(taken) // the requests go back to their pool

	b.mu.Lock()
	defer b.mu.Unlock()
	b.spare = taken[:0]
	more := len(b.queue) > 0
	b.flushing = more
	return more
}

// send stores one batch and answers its callers. Callers that gave up
// before it was sent are answered with their context's error and not
// stored.
func (r *Redis) send(batch []*pubReq) {
	live := batch[:0:0]
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.err = err
			req.done <- struct{}{}
			continue
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return
	}
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		r.sendCluster(cc, live)
	} else {
		r.call(live)
	}
	for _, req := range live {
		req.done <- struct{}{}
	}
}

// sendCluster sends one call per hash slot, concurrently: a script's keys
// must share a slot. Each slot's events keep their queue order.
func (r *Redis) sendCluster(cc *redis.ClusterClient, batch []*pubReq) {
	bySlot := make(map[int][]*pubReq)
	var order []int
	for _, req := range batch {
		s := keySlot(r.key(req.channel, "meta"))
		if _, ok := bySlot[s]; !ok {
			order = append(order, s)
		}
		bySlot[s] = append(bySlot[s], req)
	}
	if len(order) == 1 {
		r.call(batch)
		return
	}
	var wg sync.WaitGroup
	for _, s := range order {
		wg.Go(func() { r.call(bySlot[s]) })
	}
	wg.Wait()
}

// call runs publish.lua once for batch and sets each request's res or err.
func (r *Redis) call(batch []*pubReq) {
	keys := make([]string, 0, 2*len(batch))
	args := make([]any, 0, len(r.scriptArgs)+6*len(batch))
	args = append(args, r.scriptArgs[:]...)
	for _, req := range batch {
		keys = append(keys, r.key(req.channel, "meta"), r.key(req.channel, "stream"))
		if req.p.MsgID != "" {
			keys = append(keys, r.key(req.channel, "ids"), r.key(req.channel, "idt"))
		}
		args = append(args, NewEpoch(), req.pubsub, req.p.Type, []byte(req.p.Data), encodeOrigin(req.p.Origin), req.p.MsgID)
	}
	res, err := publishScript.Run(r.life, r.client, keys, args...).StringSlice()
	if err == nil && len(res) != len(batch) {
		err = errors.New("publish.lua answered a different number of events")
	}
	for i, req := range batch {
		if err != nil {
			req.err = err
		} else {
			req.res = res[i]
		}
	}
}

// keySlot is Redis Cluster's hash slot of key: CRC16 (XMODEM) of its hash
// tag (the text between the first '{' and the next '}', if not empty) or
// of the whole key, modulo 16384.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) & 16383
}
