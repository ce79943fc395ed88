package ablyrt

import (
	"bufio"
	"net"
	"net/http"
)

// Buffer sizes of an upgraded Ably connection, as internal/realtime sizes
// the native socket's (its hijack.go): net/http hands a hijacked
// connection 4 KiB read and write buffers, 8 KiB that an idle socket holds
// forever.
const (
	// readBufferSize holds frame headers and small client frames; bufio
	// reads anything larger straight into the caller's slice.
	readBufferSize = 512
	// writeBufferSize holds a frame header plus a typical MESSAGE, so one
	// delivery is usually one write syscall; larger frames cost a second.
	writeBufferSize = 1024
)

// smallBuffers wraps a ResponseWriter so that coder/websocket's Accept
// (which hijacks through the http.Hijacker interface) gets a connection
// with small buffers.
type smallBuffers struct {
	http.ResponseWriter
}

// Hijack takes over the connection and swaps in small buffers. Bytes the
// client sent after its upgrade request, before the 101, sit in net/http's
// read buffer; then that buffer is kept so they are not lost.
func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		return conn, brw, err
	}
	return conn, bufio.NewReadWriter(bufio.NewReaderSize(conn, readBufferSize), bufio.NewWriterSize(conn, writeBufferSize)), nil
}
