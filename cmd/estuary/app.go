package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/estuary-media/estuary/api"
	"github.com/estuary-media/estuary/auth"
	"github.com/estuary-media/estuary/bridge/flv"
	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/cascade"
	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/sfu/rtc"
	"github.com/estuary-media/estuary/signaling"
	"github.com/estuary-media/estuary/signaling/calls"
	"github.com/estuary-media/estuary/signaling/turn"
)

// app is one running node: the hub, the HTTP servers and every adapter wired in.
type app struct {
	cfg Config
	log *slog.Logger

	hub *sfu.Hub
	// frames is the shared depacketizer registry of frame-based outputs (see framesRegistry).
	frames *frames.Registry
	// hubDeps are filled by the pre-hub wirings (cluster registry) before the hub is made.
	hubDeps sfu.Deps
	// afterHub run after the hub closed (cluster registry: releases leases, node record).
	afterHub []func()
	// clusterView answers /api/v1/cluster when set (cluster wiring).
	clusterView func(ctx context.Context) (any, error)
	// relay and puller are the cluster relay's two sides (origin/edge roles; nil standalone).
	relay  *cascade.Relay
	puller *cascade.Puller
	// registry is the cluster registry (memory or Redis), flvServer the HTTP-FLV server: read by metrics.
	registry  cascade.Registry
	flvServer *flv.Server
	// turn is the embedded TURN server (nil when off), authz the auth.* authorizer (made on first use
	// by the wirings that need it); both set while wiring, on one goroutine.
	turn  *turn.Server
	authz *auth.Authorizer
	// sig and callsServer are the WebRTC signaling and call servers (limits read their counts).
	sig         *signaling.Server
	engine      *rtc.Engine
	callsServer *calls.Server
	// middleware wraps the HTTP handler (outermost last), e.g. limits.max_connections.
	middleware []func(http.Handler) http.Handler
	// reloaders apply a reloaded config (SIGHUP) to what can change live (limits).
	reloaders []func(cfg Config)
	// limits enforces limits.max_connections (wire_limits.go).
	limits *limits
	mux    *http.ServeMux
	files  *fileRoutes // GET /{app}/{file}: .flv, .m3u8, ...
	pages  http.Handler
	api    *api.API

	draining atomic.Bool
	// readiness checks beyond draining (cluster: registry reachable); guarded by nothing: set before start.
	ready []func(ctx context.Context) error

	// services are started listeners; shutdown stops them all at once.
	services []service
	// closers run after the listeners stop accepting, in order (adapters, then the hub).
	closers []func()
	// finals run last (engines, samplers).
	finals []func()
	urls   []urlLine
	// pageURLs are paths of pages worth printing (set by the web wiring).
	pageURLs []urlLine
	// lateURLs add the adapters' banner lines after the HTTP ones.
	lateURLs []func()

	wg     sync.WaitGroup
	failed chan error
}

// service is one listener-owning component.
type service struct {
	name     string
	shutdown func(ctx context.Context) error
	close    func() error // forced stop when shutdown times out (may be nil)
}

// urlLine is one line of the start banner.
type urlLine struct{ what, url string }

func newApp(cfg Config, log *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: log, mux: http.NewServeMux(), failed: make(chan error, 8)}
	a.hubDeps = sfu.Deps{Logger: log}
	for _, wire := range preHubWirings {
		if err := wire(a); err != nil {
			a.runClosers()
			return nil, err
		}
	}
	a.hub = sfu.NewHub(sfu.Config{
		Grace:               cfg.SFU.Grace,
		Takeover:            cfg.SFU.Takeover,
		NoGOPCache:          !cfg.WebRTC.GOPCache,
		GOPCacheMaxDuration: cfg.SFU.GOPCacheMaxDuration,
		GOPCacheMaxBytes:    cfg.SFU.GOPCacheMaxBytes,
	}, a.hubDeps)
	a.files = &fileRoutes{}
	a.pages = http.HandlerFunc(a.serveIndex)

	a.api = api.New(api.Config{
		NodeID: cfg.NodeID, Role: cfg.Role, Token: cfg.HTTP.APIToken, Advertise: cfg.Cluster.Advertise,
		Version: version, HiddenProtocols: []string{frames.Protocol},
	}, api.Deps{Hub: a.hub, Logger: log, Cluster: a.clusterView, Viewers: flvViewers(a)})
	a.finals = append(a.finals, a.api.Close)
	a.api.Register(a.mux)

	// Each adapter wires itself in its own file (wire*.go); they run in this order.
	for _, wire := range wirings {
		if err := wire(a); err != nil {
			a.closers = append(append(a.closers, a.hub.Close), a.afterHub...)
			a.shutdown()
			return nil, err
		}
	}
	// The hub closes after the adapters (they end their own clients first), then what the hub uses.
	a.closers = append(append(a.closers, a.hub.Close), a.afterHub...)

	a.mux.HandleFunc("GET /healthz", a.handleHealth)
	a.mux.HandleFunc("GET /readyz", a.handleReady)
	// GET /{app}/{file} (.flv, .m3u8) is dispatched inside the catch-all, so no adapter's pattern can
	// conflict with it; everything else under / is the pages.
	a.files.fallback = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.pages.ServeHTTP(w, r) })
	a.mux.Handle("GET /", a.files)
	return a, nil
}

// wirings are the adapters' set-up functions, one file each (wire_*.go), run in this order: each may
// register HTTP routes, file suffixes, URLs, services, closers and readiness checks on a.
var preHubWirings = []func(a *app) error{
	wireCluster,
}

// wirings run after the hub exists (see preHubWirings for those the hub needs).
var wirings = []func(a *app) error{
	wireRelay,
	wireWeb,
	wireTURN, // before wireWebRTC and wireCalls: they hand out its credentials
	wireRTMP,
	wireWebRTC,
	wireFLV,
	wireCalls,
}

// start opens the HTTP listeners (the adapters opened theirs when wired) and serves.
func (a *app) start() error {
	var h http.Handler = a.cors(a.mux)
	for _, m := range a.middleware {
		h = m(h)
	}
	if err := a.serveHTTP("http", a.cfg.HTTP.Listen, h); err != nil {
		return err
	}
	if a.cfg.HTTP.SRSAPIListen != "" {
		if err := a.serveHTTP("srs_api", a.cfg.HTTP.SRSAPIListen, h); err != nil {
			return err
		}
	}
	// Banner: publish/play URLs first, then pages, API and health.
	for _, f := range a.lateURLs {
		f()
	}
	a.addURL("pages", a.httpURL(a.cfg.HTTP.Listen, "/"))
	for _, p := range a.pageURLs {
		a.addURL(p.what, a.httpURL(a.cfg.HTTP.Listen, p.url))
	}
	a.addURL("API", a.httpURL(a.cfg.HTTP.Listen, "/api/v1/streams"))
	if a.cfg.HTTP.SRSAPIListen != "" {
		a.addURL("SRS API", a.httpURL(a.cfg.HTTP.SRSAPIListen, "/api/v1/streams"))
	}
	a.addURL("health", a.httpURL(a.cfg.HTTP.Listen, "/healthz"))
	a.addURL("metrics", a.httpURL(a.cfg.HTTP.Listen, "/metrics"))
	a.log.Info("started", "role", a.cfg.Role, "node_id", a.cfg.NodeID, "version", version)
	return nil
}

// serveHTTP listens on addr and serves h (HTTPS when http.tls_cert/tls_key are set).
func (a *app) serveHTTP(name, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s listen %s: %w", name, addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.With("component", "http", "server", name).Handler(), slog.LevelDebug),
	}
	tlsOn := a.cfg.HTTP.TLSCert != "" && a.cfg.HTTP.TLSKey != ""
	a.goServe(name, func() error {
		if tlsOn {
			return srv.ServeTLS(ln, a.cfg.HTTP.TLSCert, a.cfg.HTTP.TLSKey)
		}
		return srv.Serve(ln)
	})
	a.services = append(a.services, service{name: name, shutdown: srv.Shutdown, close: srv.Close})
	a.log.Info("listening", "server", name, "addr", ln.Addr().String(), "tls", tlsOn)
	return nil
}

// goServe runs serve in a goroutine; an unexpected end is reported on a.failed.
func (a *app) goServe(name string, serve func() error) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		err := serve()
		if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) || a.draining.Load() {
			return
		}
		select {
		case a.failed <- fmt.Errorf("%s: %w", name, err):
		default:
		}
	}()
}

// shutdown drains: readiness goes false, every listener stops accepting and is shut down while the
// adapters and the hub close their clients, all within shutdown_timeout. It reports whether it
// finished in time.
func (a *app) shutdown() bool {
	a.draining.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()

	var swg sync.WaitGroup
	var timedOut atomic.Bool
	for _, s := range a.services {
		swg.Add(1)
		go func() {
			defer swg.Done()
			if err := s.shutdown(ctx); err != nil {
				timedOut.Store(true)
				a.log.Warn("shutdown", "server", s.name, "err", err)
				if s.close != nil {
					_ = s.close()
				}
			}
		}()
	}
	a.runClosers()
	done := make(chan struct{})
	go func() { swg.Wait(); a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		timedOut.Store(true)
		for _, s := range a.services {
			if s.close != nil {
				_ = s.close()
			}
		}
		select {
		case <-done:
		case <-time.After(time.Second):
			a.log.Warn("some servers did not stop")
		}
	}
	for i := len(a.finals) - 1; i >= 0; i-- {
		a.finals[i]()
	}
	return !timedOut.Load()
}

// runClosers runs the closers in order, each at most once.
func (a *app) runClosers() {
	cs := a.closers
	a.closers = nil
	for _, c := range cs {
		c()
	}
}

func (a *app) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
}

func (a *app) handleReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if a.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "draining")
		return
	}
	for _, check := range a.ready {
		if err := check(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready: "+err.Error())
			return
		}
	}
	_, _ = io.WriteString(w, "ready")
}

// urlHost is the host to print for a listen address (localhost for all interfaces).
func urlHost(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func (a *app) httpURL(listen, path string) string {
	scheme := "http"
	if a.cfg.HTTP.TLSCert != "" && a.cfg.HTTP.TLSKey != "" {
		scheme = "https"
	}
	return scheme + "://" + urlHost(listen) + path
}

func (a *app) addURL(what, url string) { a.urls = append(a.urls, urlLine{what, url}) }

// printURLs writes the start banner.
func (a *app) printURLs(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "Estuary %s: %s node %q\n", version, a.cfg.Role, a.cfg.NodeID)
	for _, u := range a.urls {
		fmt.Fprintf(&b, "  %-22s %s\n", u.what, u.url)
	}
	_, _ = io.WriteString(w, b.String())
}
