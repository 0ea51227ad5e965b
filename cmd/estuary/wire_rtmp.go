package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/estuary-media/estuary/bridge/flv"
	"github.com/estuary-media/estuary/bridge/rtmp"
	"github.com/estuary-media/estuary/sfu"
)

// transcodeHook is the AAC -> Opus hook handed to RTMP ingest (bridge/audio, wired in wire_audio.go
// when it exists); nil: RTMP streams with AAC get no Opus track.
var transcodeHook func(a *app) func(pub *sfu.Publication) (stop func())

// wireRTMP listens on rtmp.listen (and rtmp.tls_listen when rtmp.tls_cert/tls_key are set) and
// publishes RTMP streams into the hub.
func wireRTMP(a *app) error {
	c := a.cfg.RTMP
	if c.Listen == "" && (c.TLSCert == "" || c.TLSListen == "") {
		return nil
	}
	deps := rtmp.Deps{Hub: a.hub, Logger: a.log, Play: func(ctx context.Context, key, remoteAddr string) (rtmp.Viewer, error) {
		// RTMP play reads the FLV muxer of wire_flv.go (wired after this; found at play time).
		srv, ok := a.files.handler(".flv").(*flv.Server)
		if !ok {
			return nil, errRTMPPlayNoFLV
		}
		v, err := srv.Subscribe(ctx, key)
		if err != nil {
			return nil, err
		}
		v.SetRemoteAddr(remoteAddr, "rtmp")
		return v, nil
	}}
	if transcodeHook != nil {
		deps.Transcode = transcodeHook(a)
	}
	deps.Admit = a.limiter().admitRTMP // limits.max_connections.rtmp, after connect
	az, err := authorizer(a)
	if err != nil {
		return err
	}
	deps.Authorizer = az
	srv, err := rtmp.New(rtmp.Config{
		ChunkSize:      c.ChunkSize,
		MaxMessageSize: c.MaxMessageSize,
		NodeID:         a.cfg.NodeID,
		BFrames:        a.cfg.WebRTC.BFrames,
		Takeover:       a.cfg.SFU.Takeover,
	}, deps)
	if err != nil {
		return fmt.Errorf("rtmp: %w", err)
	}
	var lns []net.Listener
	fail := func(err error) error {
		for _, ln := range lns {
			ln.Close()
		}
		return err
	}
	if c.Listen != "" {
		ln, err := net.Listen("tcp", c.Listen)
		if err != nil {
			return fail(fmt.Errorf("rtmp listen %s: %w", c.Listen, err))
		}
		lns = append(lns, ln)
		a.lateURLs = append(a.lateURLs, func() {
			a.addURL("RTMP publish/play", "rtmp://"+urlHost(c.Listen)+"/live/{stream}")
		})
	}
	if c.TLSCert != "" && c.TLSKey != "" && c.TLSListen != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return fail(fmt.Errorf("rtmp.tls_cert/tls_key: %w", err))
		}
		ln, err := net.Listen("tcp", c.TLSListen)
		if err != nil {
			return fail(fmt.Errorf("rtmp tls listen %s: %w", c.TLSListen, err))
		}
		lns = append(lns, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
		a.lateURLs = append(a.lateURLs, func() {
			a.addURL("RTMPS publish/play", "rtmps://"+urlHost(c.TLSListen)+"/live/{stream}")
		})
	}
	for _, ln := range lns {
		a.goServe("rtmp", func() error { return srv.Serve(ln) })
	}
	a.services = append(a.services, service{name: "rtmp", shutdown: func(ctx context.Context) error { return srv.Shutdown(ctx) }})
	return nil
}

// errRTMPPlayNoFLV: RTMP play without the FLV output it reads from.
var errRTMPPlayNoFLV = errors.New("rtmp play: no FLV output on this node")

// handler returns the handler registered for suffix, or nil.
func (f *fileRoutes) handler(suffix string) http.Handler {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, rt := range f.routes {
		if rt.suffix == suffix {
			return rt.h
		}
	}
	return nil
}
