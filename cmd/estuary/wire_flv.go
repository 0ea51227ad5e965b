package main

import (
	"sync"

	"github.com/estuary-media/estuary/bridge/audio"
	"github.com/estuary-media/estuary/bridge/flv"
	"github.com/estuary-media/estuary/bridge/frames"
)

// HTTP-FLV (bridge/flv) over the shared frames registry (bridge/frames): GET /{app}/{stream}.flv.
func init() { wirings = append(wirings, wireFLV) }

// framesRegistries holds each app's frames registry (one per node: every frame-based output, FLV,
// HLS, RTMP play, shares a stream's depacketizers). Use framesRegistry(a).
var framesRegistries sync.Map // *app -> *frames.Registry

// framesRegistry returns a's frames registry, making it (and its closer) on first use.
func framesRegistry(a *app) *frames.Registry {
	if r, ok := framesRegistries.Load(a); ok {
		return r.(*frames.Registry)
	}
	r := frames.NewRegistry(frames.Config{
		GOPMaxDuration: a.cfg.SFU.GOPCacheMaxDuration,
		GOPMaxBytes:    a.cfg.SFU.GOPCacheMaxBytes,
	}, frames.Deps{Hub: a.hub, Logger: a.log})
	if prev, loaded := framesRegistries.LoadOrStore(a, r); loaded {
		return prev.(*frames.Registry)
	}
	a.finals = append(a.finals, func() { r.Close(); framesRegistries.Delete(a) })
	return r
}

func wireFLV(a *app) error {
	reg := framesRegistry(a)
	srv, err := flv.New(flv.Config{
		OpusPassthrough:  a.cfg.FLV.Opus == "passthrough",
		AACBitrate:       a.cfg.Audio.AACBitrate,
		KeyframeInterval: a.cfg.WebRTC.KeyframeInterval,
		GOPMaxDuration:   a.cfg.SFU.GOPCacheMaxDuration,
		GOPMaxBytes:      a.cfg.SFU.GOPCacheMaxBytes,
	}, flv.Deps{
		Frames: reg,
		Logger: a.log,
		OpusToAAC: func(channels, bitrate int) (flv.OpusTranscoder, error) {
			t, err := audio.NewOpusToAAC(channels, bitrate)
			if err != nil {
				return nil, err
			}
			return t, nil
		},
	})
	if err != nil {
		return err
	}
	a.files.Handle(".flv", srv)
	// Viewers end before the hub closes (their hijacked connections are not the HTTP server's).
	a.closers = append(a.closers, srv.Close)
	return nil
}
