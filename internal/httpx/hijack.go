package httpx

import (
	"bufio"
	"net"
	"net/http"
)

// Buffer sizes of an upgraded WebSocket connection (the native /realtime
// socket and the Ably socket alike). net/http hands a hijacked connection
// 4 KiB read and write buffers, 8 KiB that an idle socket holds forever;
// with 10,000 sockets that is most of their memory.
const (
	// socketReadBufferSize only has to hold frame headers and small client
	// frames: bufio reads anything larger straight into the caller's slice.
	socketReadBufferSize = 512
	// socketWriteBufferSize holds a frame header plus most event frames, so
	// one event is usually one write syscall; larger frames (an
	// image.added with its signed URL can pass 1 KiB) cost a second one.
	// 1 KiB rather than 2 keeps an idle socket under 16 KiB of server
	// memory.
	socketWriteBufferSize = 1024
)

// SmallBuffers wraps a ResponseWriter so that coder/websocket's Accept
// (which hijacks through the http.Hijacker interface) gets a connection
// with small buffers: pass SmallBuffers{w} to websocket.Accept.
type SmallBuffers struct {
	http.ResponseWriter
}

// Hijack takes over the connection and swaps in small buffers. Bytes the
// client sent after its upgrade request, before the 101 (rare: a client
// waits for the handshake), sit in net/http's read buffer; then that
// buffer is kept so they are not lost.
func (w SmallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		return conn, brw, err
	}
	return conn, bufio.NewReadWriter(bufio.NewReaderSize(conn, socketReadBufferSize), bufio.NewWriterSize(conn, socketWriteBufferSize)), nil
}

// Unwrap lets http.ResponseController and coder/websocket reach the
// original writer's other interfaces.
func (w SmallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }
