package main

import (
	"github.com/estuary-media/estuary/bridge/audio"
	"github.com/estuary-media/estuary/sfu"
)

// The AAC -> Opus transcoder for RTMP streams (bridge/audio): RTMP ingest calls the hook for each
// publication with an AAC track, and the transcoder runs while the "audio" track has viewers.
func init() {
	transcodeHook = func(a *app) func(pub *sfu.Publication) (stop func()) {
		cfg := audio.Config{OpusBitrate: a.cfg.Audio.OpusBitrate}
		return func(pub *sfu.Publication) func() { return audio.AttachOpus(pub, cfg, a.log) }
	}
}
