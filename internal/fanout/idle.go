package fanout

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// IdleResult is what an idle run measured.
type IdleResult struct {
	Scenario string  `json:"scenario"` // "idle"
	Server   string  `json:"server"`   // handoff, ably-json, ably-msgpack or centrifugo
	Target   string  `json:"target"`
	Sockets  int     `json:"sockets"`
	Channels int     `json:"channels"`
	Hold     float64 `json:"hold_s"`
	OpenTime float64 `json:"open_s"` // opening and subscribing every socket

	// Server RSS before the sockets opened, at the end of the hold, and the
	// highest and lowest seen during it.
	RSSBefore int64 `json:"server_rss_before_bytes"`
	RSSAfter  int64 `json:"server_rss_after_bytes"`
	RSSPeak   int64 `json:"server_rss_peak_bytes"`
	RSSLow    int64 `json:"server_rss_low_bytes"`
	// BytesPerSocket is (RSSAfter - RSSBefore) / Sockets.
	BytesPerSocket float64 `json:"server_bytes_per_socket"`
	// GeneratorBytesPerSocket is the bench's own RSS growth per socket.
	GeneratorBytesPerSocket float64 `json:"generator_bytes_per_socket"`

	Dropped   int            `json:"sockets_dropped"`
	DropCodes map[string]int `json:"drop_close_codes,omitempty"`
	OK        bool           `json:"ok"`
}

// IdleTargetBytes is the goal per idle socket (docs/benchmarks-realtime.md).
const IdleTargetBytes = 16 << 10

// RunIdle opens c.Sockets quiet, authenticated, subscribed sockets, holds
// them for c.Hold and reports the server's RSS growth per socket.
func RunIdle(ctx context.Context, c IdleConfig, progress io.Writer) (IdleResult, error) {
	say := func(format string, args ...any) {
		if progress != nil {
			fmt.Fprintf(progress, format+"\n", args...)
		}
	}
	res := IdleResult{Scenario: "idle", Server: c.Target.label(), Target: c.URL, Sockets: c.Sockets, Channels: c.Channels, Hold: c.Hold.Seconds()}
	if err := raiseFileLimit(c.Sockets + fdHeadroom); err != nil {
		return res, err
	}
	tok, err := token(ctx, c.Target)
	if err != nil {
		return res, err
	}
	if c.Server != ServerCentrifugo {
		say("creating %d capture sessions", c.Channels)
	}
	channels, err := createChannels(ctx, c.Target, tok, c.Channels)
	if err != nil {
		return res, err
	}
	// Let the server settle after setup before the baseline.
	if !sleep(ctx, 2*time.Second) {
		return res, ctx.Err()
	}
	if res.RSSBefore, err = rssBytes(c.PID); err != nil {
		return res, err
	}
	selfBefore, _ := rssBytes(os.Getpid())

	say("opening %d sockets", c.Sockets)
	rc := newReceiver()
	opened := time.Now()
	socks, err := openSockets(ctx, c.Target, tok, channels, c.Sockets, rc, progress)
	if err != nil {
		return res, err
	}
	defer func() {
		rc.closing.Store(true)
		closeSockets(socks)
	}()
	res.OpenTime = round2(time.Since(opened).Seconds())
	say("  %d sockets subscribed in %.1fs; holding %v", c.Sockets, res.OpenTime, c.Hold)

	res.RSSLow = 1<<63 - 1
	for end := time.Now().Add(c.Hold); ; {
		rss, err := rssBytes(c.PID)
		if err != nil {
			return res, err
		}
		res.RSSAfter = rss
		res.RSSPeak = max(res.RSSPeak, rss)
		res.RSSLow = min(res.RSSLow, rss)
		if !time.Now().Before(end) {
			break
		}
		if !sleep(ctx, min(time.Second, time.Until(end))) {
			return res, ctx.Err()
		}
	}
	selfAfter, _ := rssBytes(os.Getpid())
	res.BytesPerSocket = round2(float64(res.RSSAfter-res.RSSBefore) / float64(c.Sockets))
	res.GeneratorBytesPerSocket = round2(float64(selfAfter-selfBefore) / float64(c.Sockets))
	res.Dropped, res.DropCodes = rc.dropped()
	res.OK = res.Dropped == 0
	return res, nil
}

// WriteText prints the result for a person, ending with one RESULT line.
func (r IdleResult) WriteText(w io.Writer) {
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Fprintf(w, "idle (%s): %d sockets on %d channels, opened in %.1fs, held %gs\n", r.Server, r.Sockets, r.Channels, r.OpenTime, r.Hold)
	fmt.Fprintf(w, "  server RSS  %.1f MiB before, %.1f MiB after (peak %.1f, low %.1f during the hold)\n",
		mib(r.RSSBefore), mib(r.RSSAfter), mib(r.RSSPeak), mib(r.RSSLow))
	goal := "" // handoff's own goal; it says nothing of another server
	if r.Server == ServerHandoff {
		goal = fmt.Sprintf(" (goal < %d KiB)", IdleTargetBytes>>10)
	}
	fmt.Fprintf(w, "  per socket  %.0f bytes (%.1f KiB) on the server%s; %.1f KiB in this generator\n",
		r.BytesPerSocket, r.BytesPerSocket/1024, goal, r.GeneratorBytesPerSocket/1024)
	fmt.Fprintf(w, "  dropped     %d %v\n", r.Dropped, r.DropCodes)
	fmt.Fprintf(w, "RESULT idle server=%s sockets=%d bytes_per_socket=%.0f kib_per_socket=%.2f rss_before_mib=%.1f rss_after_mib=%.1f dropped=%d ok=%t\n",
		r.Server, r.Sockets, r.BytesPerSocket, r.BytesPerSocket/1024, mib(r.RSSBefore), mib(r.RSSAfter), r.Dropped, r.OK)
}
