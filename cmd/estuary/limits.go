package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// Protocols counted by limits.max_connections.
const (
	limitRTMP = iota
	limitWebRTC
	limitHTTP
	limitWebSocket
	limitCount
)

var limitNames = [limitCount]string{"rtmp", "webrtc", "http", "websocket"}

// limits enforces limits.max_connections per protocol (0 = unlimited); SIGHUP changes the maxima live.
//   - rtmp: RTMP connections past connect (admitRTMP, the RTMP server's Deps.Admit); one over the limit
//     gets an error onStatus with the reason, then is closed;
//   - webrtc: live WHIP/WHEP/SRS sessions (signaling.Server.Sessions); a new offer over it gets 503;
//   - http: HTTP requests in flight (HTTP-FLV viewers and HLS requests included; health, readiness,
//     metrics, the API, relays and session resources are exempt), 503 over it;
//   - websocket: open call websockets (calls.Server.Conns), 503 over it.
type limits struct {
	log     *slog.Logger
	max     [limitCount]atomic.Int64
	refused [limitCount]atomic.Uint64
	rtmp    atomic.Int64 // admitted RTMP connections
	http    atomic.Int64 // HTTP requests in flight (counted ones)
	webrtc  func() int   // live WebRTC sessions (nil: none)
	ws      func() int   // open websockets (nil: none)
}

func (l *limits) set(c MaxConnections) {
	for i, v := range [limitCount]int{c.RTMP, c.WebRTC, c.HTTP, c.WebSocket} {
		l.max[i].Store(int64(v))
	}
}

// open returns the counted connections by protocol (for metrics).
func (l *limits) open() map[string]int {
	m := map[string]int{"rtmp": int(l.rtmp.Load()), "http": int(l.http.Load())}
	if l.webrtc != nil {
		m["webrtc"] = l.webrtc()
	}
	if l.ws != nil {
		m["websocket"] = l.ws()
	}
	return m
}

func (l *limits) refusedCounts() map[string]uint64 {
	m := make(map[string]uint64, limitCount)
	for i, n := range limitNames {
		m[n] = l.refused[i].Load()
	}
	return m
}

// full reports whether one more connection of protocol p would exceed its limit (and counts a refusal).
func (l *limits) full(p int, open int64) (bool, string) {
	max := l.max[p].Load()
	if max <= 0 || open < max {
		return false, ""
	}
	l.refused[p].Add(1)
	return true, fmt.Sprintf("limits.max_connections.%s reached (%d open, max %d): try again later or another node", limitNames[p], open, max)
}

// kind classifies a request for the limits: the protocol it counts against, or -1 (exempt).
func limitKind(r *http.Request) int {
	p := r.URL.Path
	switch {
	case p == "/healthz" || p == "/readyz" || p == "/metrics",
		strings.HasPrefix(p, "/api/"), strings.HasPrefix(p, "/relay/"), r.Method == http.MethodOptions:
		return -1
	case r.Method == http.MethodPost && (strings.HasPrefix(p, "/whip/") || strings.HasPrefix(p, "/whep/") ||
		p == "/rtc/v1/publish/" || p == "/rtc/v1/play/"):
		return limitWebRTC
	case strings.HasPrefix(p, "/n/") && r.Method != http.MethodGet:
		return -1 // PATCH/DELETE of an existing WHIP/WHEP session
	case strings.HasPrefix(p, "/ws/"):
		return limitWebSocket
	}
	return limitHTTP
}

// middleware refuses requests over their protocol's limit with 503 and the reason.
func (l *limits) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var open int64
		switch k := limitKind(r); k {
		case -1:
			next.ServeHTTP(w, r)
			return
		case limitWebRTC:
			if l.webrtc != nil {
				open = int64(l.webrtc())
			}
			if full, why := l.full(k, open); full {
				l.refuse(w, r, why)
				return
			}
			next.ServeHTTP(w, r)
		case limitWebSocket:
			if l.ws != nil {
				open = int64(l.ws())
			}
			if full, why := l.full(k, open); full {
				l.refuse(w, r, why)
				return
			}
			next.ServeHTTP(w, r)
		default:
			n := l.http.Add(1)
			defer l.http.Add(-1)
			if full, why := l.full(limitHTTP, n-1); full {
				l.refuse(w, r, why)
				return
			}
			next.ServeHTTP(w, r)
		}
	})
}

func (l *limits) refuse(w http.ResponseWriter, r *http.Request, why string) {
	l.log.Warn("connection refused", "remote_addr", r.RemoteAddr, "path", r.URL.Path, "reason", why)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Retry-After", "5")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(w, why+"\n")
}

// admitRTMP is the RTMP server's Deps.Admit (limits.max_connections.rtmp): asked after each connect,
// it counts the connection or refuses it with the reason, which bridge/rtmp sends to the client in an
// error onStatus before closing. release uncounts it once.
func (l *limits) admitRTMP() (release func(), err error) {
	n := l.rtmp.Add(1)
	if full, why := l.full(limitRTMP, n-1); full {
		l.rtmp.Add(-1)
		return nil, fmt.Errorf("connection limit reached (%d): %s", l.max[limitRTMP].Load(), why)
	}
	var once sync.Once
	return func() { once.Do(func() { l.rtmp.Add(-1) }) }, nil
}

// limiter returns the node's limits, made on first use (wirings run on one goroutine).
func (a *app) limiter() *limits {
	if a.limits == nil {
		a.limits = &limits{log: a.log.With("component", "limits")}
		a.limits.set(a.cfg.Limits.MaxConnections)
	}
	return a.limits
}
