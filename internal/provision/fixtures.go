package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/handoff-health/handoff/ablyproto"
	"github.com/handoff-health/handoff/presence"
)

// WithPresence makes the provisioner enter apps' presence fixtures into
// reg; it returns p.
func (p *Provisioner) WithPresence(reg presence.Registry) *Provisioner {
	p.presence = reg
	return p
}

// fixtureChannel is a channel of the app body with its presence fixtures,
// as ably-go's ablytest.DefaultConfig and ably-js's test-app-setup send
// them: data is the member's data as a string, encoding how to read it.
type fixtureChannel struct {
	Name     string `json:"name"`
	Presence []struct {
		ClientID string          `json:"clientId"`
		Data     json.RawMessage `json:"data"`
		Encoding string          `json:"encoding"`
	} `json:"presence"`
}

// fixtureConn is the synthetic connection that holds an app's fixtures.
func fixtureConn(appID string) string { return "fixtures-" + appID }

// enterFixtures enters every channel's presence fixtures as members of
// the app's fixture connection, which is never detached, so they stay
// until the app is deleted. Data with an encoding handoff does not store
// (binary, encrypted) is an error, as a realtime ENTER of it would be.
func (p *Provisioner) enterFixtures(ctx context.Context, appID string, channels []json.RawMessage) error {
	if p.presence == nil {
		return nil
	}
	conn := fixtureConn(appID)
	n := 0
	for _, raw := range channels {
		var ch fixtureChannel
		if err := json.Unmarshal(raw, &ch); err != nil {
			return fmt.Errorf("a channel is not {name, presence}: %v", err)
		}
		for _, f := range ch.Presence {
			data, err := ablyproto.StoredData(f.Data, f.Encoding)
			if err != nil {
				return fmt.Errorf("channel %q, presence %q: %v", ch.Name, f.ClientID, err)
			}
			enc := ""
			if f.Encoding == "json" {
				enc = "json"
			}
			c := presence.Change{Action: presence.Enter, Channel: appID + "@" + ch.Name, ClientID: f.ClientID,
				ConnectionID: conn, ID: conn + ":0:" + strconv.Itoa(n), Data: data, Encoding: enc}
			n++
			if _, _, err := p.presence.Apply(ctx, c); err != nil {
				return fmt.Errorf("channel %q, presence %q: %v", ch.Name, f.ClientID, err)
			}
		}
	}
	if n > 0 {
		_, err := p.presence.Claim(ctx, conn)
		return err
	}
	return nil
}

// leaveFixtures removes the app's fixture members (synthesized LEAVEs).
func (p *Provisioner) leaveFixtures(appID string) {
	if p.presence == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.presence.CloseConnection(ctx, fixtureConn(appID))
}
