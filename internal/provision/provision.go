// Package provision is the test-app provisioner that Ably's SDK test
// harnesses call: POST /apps creates an app with its keys, DELETE
// /apps/{id} removes it. It exists only for make conformance: the server
// mounts it only with --test-provisioner, which config validation refuses
// unless the node listens on loopback.
//
// Each app is isolated from every other: its keys are named
// "<appId>.<keyId>", and its Ably channel "x" is the hub channel
// "<appId>@x" (ChannelPrefix), applied by internal/publish and
// internal/ablyrt where they call the hub and never visible to a client.
// Namespaces are accepted and need nothing (every channel keeps history).
// Presence fixtures (channels[].presence) are entered into the registry, when
// there is one (WithPresence), as members of a synthetic connection of the
// app that never leaves until the app is deleted (fixtures.go).
package provision

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/presence"
)

// MaxBodyBytes bounds a POST /apps body.
const MaxBodyBytes = 64 << 10

// maxKeys bounds the keys of one app.
const maxKeys = 16

// Key is one key of an app, as the harness sends and reads it.
type Key struct {
	ID         string `json:"id"`
	Value      string `json:"value"`
	KeyName    string `json:"keyName"`
	KeyStr     string `json:"keyStr"`
	Capability string `json:"capability"`
}

// App is the body of POST /apps and of its reply: the request's fields
// are kept (so the harness's decode into its own Config keeps its
// namespaces and channels) and appId, id and the keys are filled in.
type App struct {
	ID          string            `json:"id"`
	AppID       string            `json:"appId"`
	Keys        []Key             `json:"keys"`
	Namespaces  []json.RawMessage `json:"namespaces"`
	Channels    []json.RawMessage `json:"channels"`
	Connections []json.RawMessage `json:"connections,omitempty"`
}

// Provisioner creates and deletes test apps, adding their keys to the
// node's key store at runtime.
type Provisioner struct {
	keys     *auth.APIKeys
	presence presence.Registry // nil: fixtures are ignored

	mu   sync.Mutex
	apps map[string][]string // appId → its key names
}

// New returns a provisioner that adds keys to keys.
func New(keys *auth.APIKeys) *Provisioner {
	return &Provisioner{keys: keys, apps: make(map[string][]string)}
}

// Register mounts POST /apps and DELETE /apps/{id} on mux.
func (p *Provisioner) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /apps", p.create)
	mux.HandleFunc("DELETE /apps/{id}", p.delete)
}

// ChannelPrefix is the hub-channel prefix of the app whose key is
// keyName: "<appId>@" for a provisioned app, "" for any other key.
func (p *Provisioner) ChannelPrefix(keyName string) string {
	appID, _, ok := strings.Cut(keyName, ".")
	if !ok {
		return ""
	}
	p.mu.Lock()
	_, known := p.apps[appID]
	p.mu.Unlock()
	if !known {
		return ""
	}
	return appID + "@"
}

// Apps returns the number of live apps.
func (p *Provisioner) Apps() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.apps)
}

func (p *Provisioner) create(w http.ResponseWriter, r *http.Request) {
	var app App
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err := dec.Decode(&app); err != nil {
		writeError(w, http.StatusBadRequest, 40000, "the body must be a JSON app: "+err.Error())
		return
	}
	if len(app.Keys) == 0 {
		app.Keys = []Key{{}}
	}
	if len(app.Keys) > maxKeys {
		writeError(w, http.StatusBadRequest, 40000, fmt.Sprintf("at most %d keys per app", maxKeys))
		return
	}
	caps := make([]auth.Capability, len(app.Keys))
	for i, k := range app.Keys {
		if k.Capability == "" {
			caps[i] = auth.AllowAll
			app.Keys[i].Capability = `{"*":["*"]}`
			continue
		}
		c, err := auth.ParseCapability(k.Capability)
		if err != nil {
			writeError(w, http.StatusBadRequest, 40000, fmt.Sprintf("key %d: %v", i+1, err))
			return
		}
		caps[i] = c
	}
	app.AppID = "t" + randomHex(6)
	app.ID = app.AppID
	names := make([]string, len(app.Keys))
	for i := range app.Keys {
		k := &app.Keys[i]
		k.ID = fmt.Sprintf("k%d%s", i, randomHex(3))
		k.Value = randomHex(16)
		k.KeyName = app.AppID + "." + k.ID
		k.KeyStr = k.KeyName + ":" + k.Value
		names[i] = k.KeyName
	}
	// The app is known before its keys work, so ChannelPrefix never
	// answers "" for a key that authenticates.
	p.mu.Lock()
	p.apps[app.AppID] = names
	p.mu.Unlock()
	for i, k := range app.Keys {
		if err := p.keys.Add(k.KeyName, k.Value, caps[i]); err != nil {
			p.remove(app.AppID)
			writeError(w, http.StatusInternalServerError, 50000, "could not add the app's keys")
			return
		}
	}
	if err := p.enterFixtures(r.Context(), app.AppID, app.Channels); err != nil {
		p.remove(app.AppID)
		writeError(w, http.StatusBadRequest, 40000, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(app)
}

// delete removes the app named in the path; the caller must authenticate
// with one of its keys (Basic auth, as the harness does).
func (p *Provisioner) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	name, secret, ok := r.BasicAuth()
	appID, _, _ := strings.Cut(name, ".")
	if !ok || subtle.ConstantTimeCompare([]byte(appID), []byte(id)) != 1 || !p.keys.Check(name, secret) {
		writeError(w, http.StatusUnauthorized, 40101, "authenticate with one of the app's keys")
		return
	}
	p.remove(id)
	w.WriteHeader(http.StatusNoContent)
}

func (p *Provisioner) remove(appID string) {
	p.mu.Lock()
	names := p.apps[appID]
	delete(p.apps, appID)
	p.mu.Unlock()
	for _, n := range names {
		p.keys.Remove(n)
	}
	p.leaveFixtures(appID)
}

// writeError writes Ably's error body.
func writeError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Ably-Errorcode", fmt.Sprint(code))
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "statusCode": status, "message": msg}})
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
