package main

import (
	"github.com/estuary-media/estuary/bridge/hls"
)

func init() { wirings = append(wirings, wireHLS) }

// wireHLS serves HLS (bridge/hls) over the frames registry: GET /{app}/{stream}.m3u8 redirects to
// /n/{node_id}/hls/{app}/{stream}/index.m3u8, where the stream's muxer serves its files.
func wireHLS(a *app) error {
	srv, err := hls.New(hls.Config{
		NodeID:      a.cfg.NodeID,
		Variant:     hls.Variant(a.cfg.HLS.Variant),
		Segment:     a.cfg.HLS.Segment,
		Window:      a.cfg.HLS.Window,
		IdleTimeout: a.cfg.HLS.IdleTimeout,
	}, hls.Deps{Frames: framesRegistry(a), Logger: a.log})
	if err != nil {
		return err
	}
	a.files.Handle(".m3u8", srv)
	srv.Register(a.mux)
	a.lateURLs = append(a.lateURLs, func() {
		a.addURL("HLS play", a.httpURL(a.cfg.HTTP.Listen, "/live/{stream}.m3u8"))
	})
	// Muxers stop before the hub closes (waiting playlist requests get their answer).
	a.closers = append(a.closers, srv.Close)
	return nil
}
