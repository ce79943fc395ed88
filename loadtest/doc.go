// Package loadtest is the "100 GPs" simulation behind `handoff loadtest`.
//
// Each simulated GP runs the whole clinical flow end to end, over HTTP and
// the realtime socket exactly as the desktop widget and the phone page do:
// the desktop creates a capture session and subscribes to its channel on a
// socket it holds for the whole run; a fresh phone claims the QR token,
// uploads real JPEGs through the presigned URLs and registers them one by
// one; the desktop waits for every image.added, fetches the snapshot,
// commits, and waits for image.committed per image and session.committed.
// A round is one such session; GPs run their rounds one after another.
//
// # Delivery
//
// The run checks delivery, not only speed. An event is expected once a
// request that obliges the server to publish it has succeeded: the claim
// (mobile.connected), each register (image.added), each image the commit
// reply reports committed (image.committed) and a commit that closed the
// session (session.committed). Events are matched by logical key (type
// plus image id), so an event that beats its request's reply still
// counts. What has not arrived when the desktop's bounded wait ends is
// lost; an event id delivered twice, or one logical event published under
// two ids, is duplicated; an event no successful request asked for is an
// error. With a disconnect rate, desktops cut their TCP connection after
// random events (no close frame, as a network would) and the client
// resumes from its cursor.
//
// # Latency
//
// Every HTTP step is timed from request to reply, successful ones only
// (failures are counted as errors). registerToDesktop runs from the
// moment the phone's register reply (201) arrived to the moment the
// desktop's reader got image.added. The server publishes before it
// replies, so on a fast network the event often arrives first; that is
// recorded as 0, which is why registerSentToDesktop, from the moment the
// register request was sent, is reported beside it.
//
// # Resources
//
// For the embedded server, CPU time and peak RSS are the whole process's
// (getrusage): the server and the load generator share it, so the figures
// bound the server's use from above. For a separate server on this machine
// pass its pid (--server-pid) to read its own figures from /proc.
package loadtest
