package realtime

import "time"

// Defaults of the WebSocket transport, gathered in one place with the reason
// for each. Config fields left at zero take these values.
const (
	// DefaultHeartbeatInterval is how often the server pings an idle socket.
	// It stays under the 60 s idle timeout of common proxies and load
	// balancers (nginx, AWS ALB), so they never cut a healthy quiet socket,
	// and it is the interval browsers' realtime libraries settled on.
	DefaultHeartbeatInterval = 25 * time.Second

	// DefaultHeartbeatTimeout is how long a ping may go unanswered before the
	// peer is considered dead and its socket dropped. A live peer answers in
	// a round trip; 10 s tolerates a phone on a poor network.
	DefaultHeartbeatTimeout = 10 * time.Second

	// DefaultWriteTimeout bounds one frame write. A peer whose TCP window
	// stays shut that long is not reading; the writer gives up rather than
	// pinning its goroutine and queue.
	DefaultWriteTimeout = 10 * time.Second

	// DefaultAuthTimeout is how long a socket opened without a token may wait
	// before sending its auth frame. Browsers send it on open; anything
	// slower is holding a file descriptor without a purpose.
	DefaultAuthTimeout = 5 * time.Second

	// DefaultPhoneRecheck is how often an open phone socket's mobile token
	// is checked again. A phone revoked while its page stays open would
	// otherwise show as connected on the desktop until the session's
	// expiry; a minute bounds that lie at one store read per phone a
	// minute.
	DefaultPhoneRecheck = time.Minute

	// DefaultSendQueueMessages bounds the frames waiting for one socket's
	// writer. Resumes are streamed at the writer's pace (replay.go), so the
	// queue only absorbs live bursts: a capture session produces a few
	// events a minute, and a burst of 256 to one socket means its reader
	// has stopped.
	DefaultSendQueueMessages = 256

	// DefaultSendQueueBytes bounds the bytes waiting for one socket's
	// writer, which is what bounds memory when events are large (up to
	// hub.MaxDataBytes): a consumer that stops reading pins at most 1 MiB
	// before it is cut. Encoded event frames are shared between
	// subscribers, so the real cost is usually far lower.
	DefaultSendQueueBytes = 1 << 20

	// DefaultMaxFrameBytes bounds an inbound frame. Client frames are small
	// control operations; the largest is an auth frame carrying a JWT of at
	// most 4 KiB (auth's own limit), so 16 KiB leaves room without letting a
	// client make the server buffer large messages. Oversize closes with 1009.
	DefaultMaxFrameBytes = 16 << 10

	// DefaultMaxChannels bounds the subscriptions of one socket. A desktop
	// watches one capture session at a time; 64 covers integrators watching
	// many while bounding what one connection can make the hub hold.
	DefaultMaxChannels = 64

	// DefaultMaxBadFrames is how many malformed or unknown frames a socket
	// may send before it is closed with CloseBadRequest. A buggy client gets
	// error frames to debug with; a fuzzer does not get a free CPU.
	DefaultMaxBadFrames = 10

	// DefaultMaxUnauthPerAddr caps the sockets one client address holds
	// before they authenticate. A socket authenticates within a round trip
	// (token at the upgrade, or an auth frame on open), so even a clinic's
	// desktops behind one NAT address reconnecting at once after a node
	// restart stay far below 64; a flood of silent sockets does not.
	DefaultMaxUnauthPerAddr = 64
)

// Limits that are not configurable.
const (
	// opTimeout bounds the calls one client op makes (Config.Authorize,
	// which may read the session store, and hub.Subscribe, which may reach
	// Redis) so a stuck backend cannot pin a reader forever.
	opTimeout = 5 * time.Second

	// frameCacheSlots is the size of the server-wide cache of encoded event
	// frames (frameCache, in encode.go). It only needs to cover the events in
	// flight at once; a miss costs one extra encode, never correctness.
	frameCacheSlots = 4096
)
