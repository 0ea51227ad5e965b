package main

import (
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/signaling/turn"
)

// wireTURN starts the embedded TURN server (turn.enabled, UDP and TCP on turn.listen).
func wireTURN(a *app) error {
	c := a.cfg.TURN
	if !c.Enabled || c.Listen == "" {
		return nil
	}
	srv, err := turn.New(turn.Config{
		Listen:        c.Listen,
		Realm:         c.Realm,
		Secret:        c.Secret,
		PublicIP:      c.PublicIP,
		DeniedPeers:   c.DeniedPeers,
		AllowLoopback: c.AllowLoopback,
		Quota:         c.Quota,
	}, turn.Deps{Logger: a.log})
	if err != nil {
		return fmt.Errorf("turn: %w", err)
	}
	a.turn = srv
	a.finals = append(a.finals, func() { _ = srv.Close() })
	a.lateURLs = append(a.lateURLs, func() {
		host := c.PublicIP
		if host == "" {
			host, _, _ = net.SplitHostPort(urlHost(c.Listen))
		}
		a.addURL("TURN (udp, tcp)", "turn:"+net.JoinHostPort(host, strconv.Itoa(srv.Port())))
	})
	return nil
}

// turnServer is a's embedded TURN server, nil when it is off.
func (a *app) turnServer() *turn.Server { return a.turn }

// iceServersFor returns static (webrtc.ice_servers) plus, when the embedded TURN runs, its TURN
// URLs (UDP, TCP) with fresh credentials for user and its STUN URL. The host in the URLs is
// turn.public_ip, else the host the client reached us by.
func (a *app) iceServersFor(static []webrtc.ICEServer, r *http.Request, user string) []webrtc.ICEServer {
	srv := a.turnServer()
	if srv == nil {
		return static
	}
	host := ""
	if a.cfg.TURN.PublicIP == "" && r != nil {
		host = r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
	}
	urls, stun := srv.URLs(host)
	username, password, _ := srv.Credentials(user)
	out := make([]webrtc.ICEServer, 0, len(static)+2)
	out = append(out,
		webrtc.ICEServer{URLs: urls, Username: username, Credential: password},
		webrtc.ICEServer{URLs: []string{stun}})
	return append(out, static...)
}

// turnICEFunc is signaling.Deps.ICEServers: each WHIP/WHEP answer's Link headers carry fresh TURN
// credentials (user "whip-<client id>"). Nil when the embedded TURN is off (signaling then
// announces the static list).
func (a *app) turnICEFunc(static []webrtc.ICEServer) func(r *http.Request) []webrtc.ICEServer {
	if a.turnServer() == nil {
		return nil
	}
	return func(r *http.Request) []webrtc.ICEServer {
		return a.iceServersFor(static, r, "whip-"+sfu.NewClientID())
	}
}
