package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/handoff-health/handoff/client"
	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/realtime"
)

// A client subscribes to a channel, runs, and receives what is published
// on it. The node here is in-process (a hub on the memory backend behind
// the realtime server); a real one is "wss://<host>/realtime".
func ExampleNew() {
	node := startExampleNode()
	defer node.stop()

	c, err := client.New(client.Config{URL: node.url, Token: node.token})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = c.Subscribe("session:demo", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	for ev := range c.Events() {
		switch ev.Kind {
		case client.KindSubscribed:
			fmt.Println("subscribed to", ev.Channel)
			node.publish("session:demo", "image.added", `{"imageId":"img-1"}`)
		case client.KindEvent:
			fmt.Println(ev.Type, string(ev.Data))
			cancel() // Run closes Events when it returns
		}
	}
	fmt.Println("run ended:", <-done)
	// Output:
	// subscribed to session:demo
	// image.added {"imageId":"img-1"}
	// run ended: context canceled
}

// Subscribe with since "0" replays the channel's retained history before
// live events; with the ID of an event it resumes right after that event.
func ExampleClient_Subscribe() {
	node := startExampleNode()
	defer node.stop()
	node.publish("session:demo", "image.added", `{"n":1}`)
	node.publish("session:demo", "image.added", `{"n":2}`)

	c, err := client.New(client.Config{URL: node.url, Token: node.token})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = c.Subscribe("session:demo", "0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = c.Run(ctx) }()

	seen := 0
	for ev := range c.Events() {
		if ev.Kind != client.KindEvent {
			continue
		}
		fmt.Println(ev.Channel, ev.Type, string(ev.Data))
		if seen++; seen == 2 {
			fmt.Println("cursor is the last event:", c.Cursor("session:demo") == ev.ID)
			cancel()
		}
	}
	// Output:
	// session:demo image.added {"n":1}
	// session:demo image.added {"n":2}
	// cursor is the last event: true
}

// exampleNode is an in-process handoff realtime node for the examples.
type exampleNode struct {
	url   string
	token func(context.Context) (string, error)
	hub   *hub.Hub
	stop  func()
}

func startExampleNode() *exampleNode {
	v, err := auth.NewVerifier([]byte("example-secret-example-secret-32"))
	if err != nil {
		panic(err)
	}
	backend := hub.NewMemory(hub.MemoryConfig{})
	h := hub.New(backend)
	ctx, cancel := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() { _ = h.Run(ctx); close(hubDone) }()
	rt := realtime.New(h, v, realtime.Config{}, zerolog.Nop())
	hs := httptest.NewServer(rt)
	return &exampleNode{
		url: "ws" + strings.TrimPrefix(hs.URL, "http") + realtime.Path,
		token: func(context.Context) (string, error) {
			return v.Issue(auth.Claims{Facility: "fac", Provider: "gp", Expires: time.Now().Add(time.Hour)})
		},
		hub: h,
		stop: func() {
			sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer scancel()
			_ = rt.Shutdown(sctx)
			hs.Close()
			cancel()
			_ = backend.Close()
			<-hubDone
		},
	}
}

func (n *exampleNode) publish(channel, typ, data string) {
	if _, err := n.hub.Publish(context.Background(), channel, hub.Publication{Type: typ, Data: []byte(data)}); err != nil {
		panic(err)
	}
}
