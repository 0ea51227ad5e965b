package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/pion/webrtc/v4"

	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/sfu/rtc"
	"github.com/estuary-media/estuary/signaling"
)

// wireWebRTC starts the pion engine (ICE UDP mux on webrtc.udp_port, ICE-TCP on webrtc.tcp_port; pion
// logs go to slog through sfu/rtc) and registers WHIP, WHEP and the SRS RTC API.
func wireWebRTC(a *app) error {
	c := a.cfg.WebRTC
	ice := iceServers(c.ICEServers)
	az, err := authorizer(a)
	if err != nil {
		return err
	}
	engine, err := rtc.NewEngine(rtc.Config{
		ListenIP:   c.ListenIP,
		UDPPort:    c.UDPPort,
		TCPPort:    c.TCPPort,
		NoTCP:      c.TCPPort == 0,
		PublicIPs:  c.PublicIPs,
		ICEServers: ice,
		NoNACK:     !c.NACK,
		NoTWCC:     !c.TWCC,
		NoBatch:    !c.Batch,
		NoGSO:      !c.GSO,
		NoDirect:   !c.Direct,
	}, rtc.Deps{Logger: a.log})
	if err != nil {
		return fmt.Errorf("webrtc: %w", err)
	}
	a.finals = append(a.finals, engine.Close)
	a.engine = engine
	// Viewers' DownTracks are drained by GOMAXPROCS workers once their tracks are up.
	writers := sfu.NewWriterPool(0)
	a.finals = append(a.finals, writers.Close)
	sig, err := signaling.New(signaling.Config{
		NodeID:     a.cfg.NodeID,
		ICEServers: ice,
		CORS:       a.cfg.HTTP.CORS,
		NoCORS:     a.cfg.HTTP.CORS == "",
	}, signaling.Deps{Hub: a.hub, Engine: engine, Logger: a.log, ICEServers: a.turnICEFunc(ice), Authorizer: az, Writers: writers})
	if err != nil {
		engine.Close()
		return fmt.Errorf("signaling: %w", err)
	}
	sig.Register(a.mux)
	a.sig = sig
	a.closers = append(a.closers, sig.Close)

	a.lateURLs = append(a.lateURLs, func() {
		a.addURL("WHIP publish", a.httpURL(a.cfg.HTTP.Listen, "/whip/live/{stream}"))
		a.addURL("WHEP play", a.httpURL(a.cfg.HTTP.Listen, "/whep/live/{stream}"))
		if l := a.cfg.HTTP.SRSAPIListen; l != "" {
			host := urlHost(l)
			if _, port, err := net.SplitHostPort(l); err == nil && port == "1985" {
				host, _, _ = net.SplitHostPort(host)
			}
			a.addURL("SRS player (webrtc://)", "webrtc://"+host+"/live/{stream}")
		}
		media := "udp " + strconv.Itoa(c.UDPPort)
		if c.TCPPort != 0 {
			media += ", tcp " + strconv.Itoa(c.TCPPort)
		}
		a.addURL("WebRTC media", media)
	})
	return nil
}

// iceServers converts webrtc.ice_servers to pion's type.
func iceServers(in []ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(in))
	for _, s := range in {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}
