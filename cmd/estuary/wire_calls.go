package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/signaling/calls"
)

// wireCalls serves the one-to-one call signaling at GET /ws/call?room=... (calls.*): "joined"
// carries webrtc.ice_servers and, with the embedded TURN on, fresh TURN credentials.
func wireCalls(a *app) error {
	c := a.cfg.Calls
	static := iceServers(a.cfg.WebRTC.ICEServers)
	srv, err := calls.New(calls.Config{
		Mode:             c.Mode,
		HeartbeatTimeout: c.HeartbeatTimeout,
		MaxMessage:       c.MaxMessage,
		MaxConnections:   a.cfg.Limits.MaxConnections.WebSocket,
		Origin:           a.cfg.HTTP.CORS,
	}, calls.Deps{
		Logger: a.log,
		ICEServers: func(r *http.Request, user string) []calls.ICEServer {
			return callICEServers(a.iceServersFor(static, r, "call-"+user))
		},
	})
	if err != nil {
		return fmt.Errorf("calls: %w", err)
	}
	srv.Register(a.mux)
	a.callsServer = srv
	// Hijacked websockets are not tracked by http.Server.Shutdown: close them with the adapters.
	a.closers = append(a.closers, srv.Close)
	a.pageURLs = append(a.pageURLs, urlLine{"page: call", "/call.html"})
	a.lateURLs = append(a.lateURLs, func() {
		u := a.httpURL(a.cfg.HTTP.Listen, "/ws/call?room={room}")
		a.addURL("call signaling", "ws"+strings.TrimPrefix(u, "http"))
	})
	return nil
}

// callICEServers converts to the JSON shape of "joined" (credentials that are not strings dropped).
func callICEServers(in []webrtc.ICEServer) []calls.ICEServer {
	out := make([]calls.ICEServer, 0, len(in))
	for _, s := range in {
		cred, _ := s.Credential.(string)
		out = append(out, calls.ICEServer{URLs: s.URLs, Username: s.Username, Credential: cred})
	}
	return out
}
