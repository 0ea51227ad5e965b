package main

import (
	"time"

	"github.com/estuary-media/estuary/api"
	"github.com/estuary-media/estuary/bridge/audio"
	"github.com/estuary-media/estuary/bridge/flv"
	"github.com/estuary-media/estuary/bridge/frames"
)

// framesRegistry returns the node's frames registry (bridge/frames: every frame-based output, FLV,
// HLS, RTMP play, shares a stream's depacketizers), making it on first use. Wirings run on one
// goroutine, so no lock is needed; it closes after the hub.
func framesRegistry(a *app) *frames.Registry {
	if a.frames != nil {
		return a.frames
	}
	a.frames = frames.NewRegistry(frames.Config{
		GOPMaxDuration: a.cfg.SFU.GOPCacheMaxDuration,
		GOPMaxBytes:    a.cfg.SFU.GOPCacheMaxBytes,
	}, frames.Deps{Hub: a.hub, Logger: a.log})
	a.finals = append(a.finals, a.frames.Close)
	return a.frames
}

// flvWriteInterval maps flv.write_interval to flv.Config.WriteInterval (0 there is the default;
// negative is a write per frame).
func flvWriteInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// wireFLV serves HTTP-FLV (bridge/flv) over the frames registry: GET /{app}/{stream}.flv.
func wireFLV(a *app) error {
	reg := framesRegistry(a)
	srv, err := flv.New(flv.Config{
		OpusPassthrough:  a.cfg.FLV.Opus == "passthrough",
		AACBitrate:       a.cfg.Audio.AACBitrate,
		KeyframeInterval: a.cfg.WebRTC.KeyframeInterval,
		GOPMaxDuration:   a.cfg.SFU.GOPCacheMaxDuration,
		GOPMaxBytes:      a.cfg.SFU.GOPCacheMaxBytes,
		WriteInterval:    flvWriteInterval(a.cfg.FLV.WriteInterval),
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
	a.flvServer = srv
	a.lateURLs = append(a.lateURLs, func() {
		a.addURL("HTTP-FLV play", a.httpURL(a.cfg.HTTP.Listen, "/live/{stream}.flv"))
	})
	// Viewers end before the hub closes (their hijacked connections are not the HTTP server's).
	a.closers = append(a.closers, srv.Close)
	return nil
}

// flvViewers lists the HTTP-FLV and RTMP play viewers (they read the FLV server) for the API; it reads
// a.flvServer per call, as the API is made before wireFLV runs.
func flvViewers(a *app) func() []api.Viewer {
	return func() []api.Viewer {
		srv := a.flvServer
		if srv == nil {
			return nil
		}
		vs := srv.Viewers()
		out := make([]api.Viewer, 0, len(vs))
		for _, v := range vs {
			out = append(out, api.Viewer{Info: v.Info(), Stream: v.StreamKey(), Bytes: v.Bytes(), Kick: v.Kick})
		}
		return out
	}
}
