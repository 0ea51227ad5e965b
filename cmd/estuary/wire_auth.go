package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/estuary-media/estuary/auth"
	"github.com/estuary-media/estuary/sfu"
)

func init() { wirings = append(wirings, wireAuth) }

// authConfig maps the auth section onto auth.Config.
func authConfig(c Config) auth.Config {
	return auth.Config{
		Publish: c.Auth.Publish, Play: c.Auth.Play, Secret: c.Auth.Secret, HookTimeout: c.Auth.HookTimeout,
		ServerID: c.NodeID,
		Hooks: auth.Hooks{OnPublish: c.Auth.Hooks.OnPublish, OnUnpublish: c.Auth.Hooks.OnUnpublish,
			OnPlay: c.Auth.Hooks.OnPlay, OnStop: c.Auth.Hooks.OnStop},
	}
}

// authorizer returns the app's Authorizer, made on first use (wirings run on one goroutine). SIGHUP
// swaps its config (a.reloaders): new clients see the new secret and hooks, live streams flow on.
func authorizer(a *app) (*auth.Authorizer, error) {
	if a.authz != nil {
		return a.authz, nil
	}
	az, err := auth.New(authConfig(a.cfg), auth.Deps{Logger: a.log})
	if err != nil {
		return nil, err
	}
	a.authz = az
	a.reloaders = append(a.reloaders, func(c Config) {
		if err := az.Reload(authConfig(c)); err != nil {
			a.log.Error("reload: auth not applied", "err", err)
			return
		}
		a.log.Info("reloaded auth", "auth.publish", c.Auth.Publish, "auth.play", c.Auth.Play)
	})
	a.finals = append(a.finals, func() { az.Close() })
	return az, nil
}

// wireAuth guards the HTTP play paths that have no adapter hook of their own: HTTP-FLV
// (GET /{app}/{stream}.flv), HLS (GET /{app}/{stream}.m3u8 and the muxer's /n/{node}/hls/{app}/{stream}/*,
// which carry the same ?token= on) and the call websocket (GET /ws/call?room=R: key call/R).
func wireAuth(a *app) error {
	az, err := authorizer(a)
	if err != nil {
		return err
	}
	g := &httpAuth{az: az, cors: a.cfg.HTTP.CORS, ok: map[string]time.Time{}}
	a.middleware = append(a.middleware, g.middleware)
	return nil
}

// httpAuth is the HTTP play guard. Allowed answers are remembered for a short while per
// (key, query, client IP), so an HLS player's playlist and segment requests do not call hooks each time.
type httpAuth struct {
	az   *auth.Authorizer
	cors string

	mu sync.Mutex
	ok map[string]time.Time // guarded by mu
}

// httpAuthCache is how long an allowed HTTP play stays allowed without asking again.
const httpAuthCache = 10 * time.Second

// playKey returns the stream key and protocol of a guarded request ("" if not guarded).
func playKey(r *http.Request) (key, proto string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", ""
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	if p == "ws/call" {
		return "call/" + r.URL.Query().Get("room"), "ws"
	}
	parts := strings.Split(p, "/")
	switch {
	case len(parts) == 2 && strings.HasSuffix(parts[1], ".flv"):
		return parts[0] + "/" + strings.TrimSuffix(parts[1], ".flv"), "flv"
	case len(parts) == 2 && strings.HasSuffix(parts[1], ".m3u8"):
		return parts[0] + "/" + strings.TrimSuffix(parts[1], ".m3u8"), "hls"
	case len(parts) == 6 && parts[0] == "n" && parts[2] == "hls":
		return parts[3] + "/" + parts[4], "hls"
	}
	return "", ""
}

func (g *httpAuth) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, proto := playKey(r)
		if key == "" {
			next.ServeHTTP(w, r)
			return
		}
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		token := r.URL.Query().Get("token")
		if token == "" {
			token = auth.TokenFromBearer(r.Header.Get("Authorization"))
		}
		param := ""
		if r.URL.RawQuery != "" {
			param = "?" + r.URL.RawQuery
		}
		ck := key + "\x00" + r.URL.RawQuery + "\x00" + ip
		now := time.Now()
		if proto == "hls" && g.cached(ck, now) {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		req := sfu.AuthRequest{Action: sfu.ActionPlay, Key: key, Token: token, Protocol: proto,
			ClientID: sfu.NewClientID(), ClientIP: ip, Param: param}
		err = g.az.Authorize(ctx, req)
		cancel()
		if err != nil {
			code := http.StatusForbidden
			if errors.Is(err, sfu.ErrUnauthorized) {
				code = http.StatusUnauthorized
				w.Header().Set("WWW-Authenticate", `Bearer realm="estuary"`)
			}
			if g.cors != "" {
				w.Header().Set("Access-Control-Allow-Origin", g.cors)
			}
			http.Error(w, "play "+key+" refused: "+err.Error(), code)
			return
		}
		if proto == "hls" {
			g.remember(ck, now) // HLS is request by request: no on_stop
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r) // HTTP-FLV and websockets last as long as the request
		sfu.AuthNotify(g.az, req)
	})
}

func (g *httpAuth) cached(k string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.ok[k]
	return ok && now.Sub(t) < httpAuthCache
}

func (g *httpAuth) remember(k string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.ok) > 4096 { // bounded: drop the expired, else everything
		for k2, t := range g.ok {
			if now.Sub(t) >= httpAuthCache {
				delete(g.ok, k2)
			}
		}
		if len(g.ok) > 4096 {
			clear(g.ok)
		}
	}
	g.ok[k] = now
}
