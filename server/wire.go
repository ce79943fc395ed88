package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/handoff-health/handoff/hub"
	"github.com/handoff-health/handoff/internal/ablybridge"
	"github.com/handoff-health/handoff/internal/ablyrt"
	"github.com/handoff-health/handoff/internal/alex"
	"github.com/handoff-health/handoff/internal/auth"
	"github.com/handoff-health/handoff/internal/blob"
	"github.com/handoff-health/handoff/internal/capture"
	"github.com/handoff-health/handoff/internal/commit"
	"github.com/handoff-health/handoff/internal/config"
	"github.com/handoff-health/handoff/internal/publish"
	"github.com/handoff-health/handoff/internal/realtime"
	"github.com/handoff-health/handoff/internal/session"
	"github.com/handoff-health/handoff/webui"
)

// wire builds the adapters around the hub and mounts their routes. Order
// matters in one place: the Ably bridge installs the hub's publish hooks,
// so it is built before anything can publish.
func (s *Server) wire(ctx context.Context) error {
	verifier, err := s.newVerifier()
	if err != nil {
		return err
	}
	blobs, err := s.newBlobStore(ctx)
	if err != nil {
		return err
	}
	if err := s.sweepOrphans(ctx, blobs); err != nil {
		return err
	}
	sessions, err := s.newSessionStore()
	if err != nil {
		return err
	}
	s.sessions = sessions
	if s.cfg.AblyKey != "" {
		if err := s.wireAbly(verifier, sessions); err != nil {
			return err
		}
	}
	api, err := capture.New(capture.Config{
		PublicURL:       s.cfg.BaseURL(),
		MaxImages:       s.cfg.MaxImages,
		MaxImageBytes:   s.cfg.MaxImageBytes,
		MaxImagePixels:  s.cfg.MaxImagePixels,
		SessionTTL:      s.cfg.SessionTTL,
		ClaimsPerMinute: s.cfg.ClaimsPerMinute,

		MaxSessionBytes:            s.cfg.MaxSessionBytes,
		MaxSessionLifetime:         s.cfg.MaxSessionLifetime,
		MaxOpenSessionsPerFacility: s.cfg.MaxOpenSessionsPerFacility,
	}, capture.Deps{Hub: s.hub, Sessions: sessions, Blobs: blobs, Verifier: verifier, Log: s.log})
	if err != nil {
		return err
	}
	api.Register(s.mux)
	s.background = append(s.background, func(ctx context.Context) error { return api.RunSweeper(ctx) })
	s.checks = append(s.checks, readyCheck{"sessions+blobs", api.Ready})

	if err := s.wireCommit(api, sessions, blobs, verifier); err != nil {
		return err
	}

	rt := realtime.New(s.hub, verifier, realtime.Config{
		Authorize: api.Authorize, Registerer: s.registry, MaxUnauthPerAddr: s.cfg.MaxUnauthSocketsPerAddr,
		Presence: s.presence, Phone: phoneSocket(api),
	}, s.log)
	s.mux.Handle("GET /realtime", rt)
	s.shutdown = append(s.shutdown, rt.Shutdown)

	keys, err := s.apiKeys()
	if err != nil {
		return err
	}
	if s.cfg.WidgetKey != "" && s.cfg.AblyKey == "" {
		// The widget talks to handoff's own Ably socket: its channel is
		// the hub's session channel.
		key, _ := s.cfg.APIKeySecret(s.cfg.WidgetKey)
		if err := s.mountWidgetTokens(key, verifier, sessions, func(_ context.Context, id string) (string, error) {
			return "session:" + id, nil
		}); err != nil {
			return fmt.Errorf("--widget-key (%s): %w", config.EnvName("widget-key"), err)
		}
	}
	prefix := s.wireProvisioner(keys)
	pubCfg := publish.Config{ChannelPrefix: prefix, Presence: s.presence}
	if s.redis == nil {
		pubCfg.BatchWorkers = 1 // the memory hub: a publish has no round trip to overlap
	}
	publish.New(s.hub, keys, pubCfg, s.log).Register(s.mux)

	// The Ably realtime protocol on "/", over the same hub as /realtime:
	// only WebSocket upgrades; a plain GET / keeps the mux's 404.
	// With Redis, resumable connections and their msgSerial dedupe are
	// shared, so an SDK resumes on any node. Presence members live in the
	// node's registry (Redis with Redis: a resume elsewhere claims them).
	var connStore ablyrt.ConnStore
	if s.redis != nil {
		connStore = ablyrt.NewRedisStore(s.redis, s.cfg.RedisPrefix)
	}
	art := ablyrt.New(s.hub, keys, ablyrt.Config{Store: connStore, ChannelPrefix: prefix, Presence: s.presence}, s.log)
	s.mux.Handle("GET /{$}", art.OnlyUpgrades(http.NotFoundHandler()))
	s.shutdown = append(s.shutdown, art.Shutdown)

	pages := webui.Handler(webui.Options{Dev: s.cfg.Dev, HostOrigins: s.cfg.HostOriginList(), VolatileSessions: s.redis == nil})
	s.mux.Handle("GET /desktop", pages)
	s.mux.Handle("GET /m/{token}", pages)
	s.mux.Handle("GET /static/", pages)
	if s.cfg.Dev {
		s.mountDev(verifier)
	}
	return nil
}

// phoneSocket lets a phone's mobile token open the realtime socket, for
// presence on its own session's channel (the desktop's "Phone connected").
func phoneSocket(api *capture.API) func(context.Context, string) (realtime.PhoneGrant, error) {
	return func(ctx context.Context, token string) (realtime.PhoneGrant, error) {
		channel, clientID, expires, err := api.PhoneSocket(ctx, token)
		if errors.Is(err, capture.ErrUnknownPhone) {
			return realtime.PhoneGrant{}, realtime.ErrPhoneUnknown
		}
		return realtime.PhoneGrant{Channel: channel, ClientID: clientID, Expires: expires}, err
	}
}

// newVerifier returns the desktop JWT verifier. In dev mode a random
// secret is made (config.Validate refuses --dev beside a configured one):
// dev tokens then only work until the process restarts, which is what a
// demo needs, and are worthless to any other node.
func (s *Server) newVerifier() (*auth.Verifier, error) {
	secret := []byte(s.cfg.JWTSecret)
	if s.cfg.Dev {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		s.warnDev()
	}
	return auth.NewVerifier(secret, auth.VerifierConfig{
		MaxLifetime: s.cfg.JWTMaxLifetime, Audience: s.cfg.JWTAudience, Issuer: s.cfg.JWTIssuer,
	})
}

// derivedKey derives a purpose-specific key from the JWT secret, so one
// configured secret can sign blob URLs too without reusing the key itself.
func derivedKey(secret, purpose string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("handoff/" + purpose))
	return m.Sum(nil)
}

// newBlobStore picks S3 when a bucket is configured, else a local directory
// served by this node under /blob/.
func (s *Server) newBlobStore(ctx context.Context) (blob.Store, error) {
	if s.cfg.S3Bucket != "" {
		return blob.NewS3(ctx, blob.S3Config{
			Endpoint: s.cfg.S3Endpoint, Region: s.cfg.S3Region, Bucket: s.cfg.S3Bucket,
			PathStyle: s.cfg.S3PathStyle, MaxBytes: s.cfg.MaxImageBytes,
		})
	}
	var secret []byte
	if s.cfg.JWTSecret != "" {
		secret = derivedKey(s.cfg.JWTSecret, "blob-urls")
	}
	local, err := blob.NewLocal(blob.LocalConfig{
		Dir: filepath.Join(s.cfg.DataDir, "blobs"), BaseURL: s.cfg.BaseURL(),
		Secret: secret, MaxBytes: s.cfg.MaxImageBytes,
		UploadTimeout: s.cfg.UploadTimeout, UploadMinRate: s.cfg.UploadMinRate,
	})
	if err != nil {
		return nil, fmt.Errorf("--data-dir (%s): %w", config.EnvName("data-dir"), err)
	}
	s.mux.Handle("/blob/", local.Handler())
	return local, nil
}

// sweepOrphans deletes, at start, the photos of sessions lost with the last
// run: with sessions in this process's memory (no Redis) and images in the
// local directory, every stored or uploaded blob belongs to no session any
// more, and the sweeper, which follows sessions, would never remove it
// (issue 15). It logs how many, never which. With S3 the bucket's
// lifecycle rule is the backstop (README).
func (s *Server) sweepOrphans(ctx context.Context, blobs blob.Store) error {
	local, ok := blobs.(*blob.Local)
	if s.redis != nil || !ok {
		return nil
	}
	n, err := local.DeleteAllTemporary(ctx)
	if err != nil {
		return fmt.Errorf("deleting photos left by the last run under --data-dir (%s): %w", config.EnvName("data-dir"), err)
	}
	if n > 0 {
		s.log.Warn().Int("photos", n).Msg("sessions are kept in memory: deleted the photos the last run left unfiled")
	}
	return nil
}

func (s *Server) newSessionStore() (session.Store, error) {
	if s.redis == nil {
		return session.NewMemoryStore(), nil
	}
	return session.NewRedisStore(s.redis, session.RedisStoreConfig{Prefix: s.cfg.RedisPrefix})
}

// wireAbly mirrors every session event to Ably and serves scoped Ably
// tokens to desktops; a token is only signed for a session that
// session.Lookup finds for the desktop's facility.
func (s *Server) wireAbly(verifier *auth.Verifier, sessions session.Store) error {
	names, err := ablybridge.ParseEventNames(s.cfg.AblyEventNames)
	if err != nil {
		return fmt.Errorf("--ably-event-names (%s): %w", config.EnvName("ably-event-names"), err)
	}
	var progress ablybridge.Progress = ablybridge.NewMemoryProgress()
	if s.redis != nil {
		if progress, err = ablybridge.NewRedisProgress(ablybridge.RedisProgressConfig{Client: s.redis, Prefix: s.cfg.RedisPrefix}); err != nil {
			return err
		}
	}
	// The bridge names a session's Ably channel for events the server
	// itself published, so it asks the store directly: there is no caller
	// whose facility to check.
	encounterOf := func(ctx context.Context, id string) (string, error) {
		sess, err := sessions.Get(ctx, id, time.Now())
		if errors.Is(err, session.ErrNotFound) {
			return "", ablybridge.ErrUnknownSession
		}
		return sess.EncounterID, err
	}
	bridge, err := ablybridge.New(s.hub, ablybridge.Config{
		Key: s.cfg.AblyKey, ChannelTemplate: s.cfg.AblyChannelTemplate, EventNames: names,
	}, progress, encounterOf, s.registry, s.log)
	if err != nil {
		return err
	}
	s.background = append(s.background, bridge.Run)
	return s.mountWidgetTokens(s.cfg.AblyKey, verifier, sessions, bridge.AblyChannel)
}

// mountWidgetTokens serves POST /api/medtech/session/ably-token: a
// TokenRequest signed with key for the Ably channel of a session that
// session.Lookup finds for the desktop's facility. With --ably-key the key
// is Ably's, and handoff accepts it too, so the same TokenRequest works
// whether the widget talks to Ably or to handoff; with --widget-key it is
// one of handoff's own API keys and the channel is the hub's.
func (s *Server) mountWidgetTokens(key string, verifier *auth.Verifier, sessions session.Store,
	channelOf func(ctx context.Context, sessionID string) (string, error)) error {
	lookup := session.NewLookup(sessions, time.Now)
	tokens, err := ablybridge.TokenHandler(key, verifier, func(ctx context.Context, c auth.Claims, id string) (string, error) {
		// Another practice's session is answered as unknown, not forbidden.
		_, err := lookup.Session(ctx, c.Facility, id)
		switch {
		case errors.Is(err, session.ErrNotFound):
			return "", ablybridge.ErrUnknownSession
		case err != nil:
			return "", err
		}
		return channelOf(ctx, id)
	}, 0)
	if err != nil {
		return err
	}
	s.mux.Handle("POST /api/medtech/session/ably-token", tokens)
	return nil
}

// apiKeys are the keys of handoff's Ably REST and realtime endpoints:
// --api-keys, and the Ably key (--ably-key) when there is one, limited to
// subscribe and history: it signs the desktop widget's TokenRequests, and
// handoff honours them when the widget talks to handoff instead of Ably.
// (Config validation keeps its name apart from the --api-keys names.)
func (s *Server) apiKeys() (*auth.APIKeys, error) {
	keys, err := auth.ParseAPIKeys(s.cfg.APIKeys, s.cfg.APIKeyCapabilities)
	if err != nil {
		return nil, fmt.Errorf("--api-keys (%s): %w", config.EnvName("api-keys"), err)
	}
	if name, secret, ok := strings.Cut(s.cfg.AblyKey, ":"); ok {
		if err := keys.Add(name, secret, ablyKeyCapability); err != nil {
			return nil, fmt.Errorf("--ably-key (%s), accepted by handoff's own Ably endpoints: %w", config.EnvName("ably-key"), err)
		}
	}
	return keys, nil
}

// ablyKeyCapability is what the Ably key may do on handoff's own Ably
// endpoints, whatever it may do on Ably: read, never publish.
var ablyKeyCapability = func() auth.Capability {
	c, err := auth.ParseCapability(`{"*":["subscribe","history"]}`)
	if err != nil {
		panic(err)
	}
	return c
}()

// wireCommit files images into ALEX: the real API when a base URL is
// configured, otherwise the outbox of FHIR files under the data directory.
func (s *Server) wireCommit(api *capture.API, sessions session.Store, blobs blob.Store, verifier *auth.Verifier) error {
	var committer alex.Committer
	if s.cfg.ALEXBaseURL != "" {
		c, err := alex.NewClient(alex.Config{
			BaseURL: s.cfg.ALEXBaseURL, TokenURL: s.cfg.ALEXTokenURL,
			ClientID: s.cfg.ALEXClientID, ClientSecret: s.cfg.ALEXClientSecret, Scope: s.cfg.ALEXScope,
			IdentifierSystem: s.cfg.ALEXIdentifierSystem, AppIDHeader: s.cfg.ALEXAppIDHeader, AppID: s.cfg.ALEXAppID,
		})
		if err != nil {
			return err
		}
		committer = c
	} else {
		o, err := alex.NewOutbox(filepath.Join(s.cfg.DataDir, "alex-outbox"))
		if err != nil {
			return err
		}
		committer = o
		s.log.Info().Msg("ALEX outbox mode: commits are written as FHIR JSON files under the data directory")
	}
	c, err := commit.New(commit.Config{SessionTTL: s.cfg.SessionTTL, Wait: s.cfg.CommitWait}, commit.Deps{
		Sessions: sessions, Blobs: blobs, Hub: s.hub, ALEX: committer,
		Verifier: verifier, Images: api, Log: s.log,
	})
	if err != nil {
		return err
	}
	c.Register(s.mux)
	s.shutdown = append(s.shutdown, c.Shutdown)
	return nil
}

// newRedisBackend builds the Redis hub backend.
func newRedisBackend(c redis.UniversalClient, cfg config.Config) (hub.Backend, error) {
	return hub.NewRedis(hub.RedisConfig{Client: c, Prefix: cfg.RedisPrefix, HistorySize: cfg.HistorySize, HistoryTTL: cfg.HistoryTTL,
		Dedupe: hub.DedupeConfig{Window: cfg.DedupeWindow}})
}
