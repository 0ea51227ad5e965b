package audio

import (
	"sync/atomic"
	"time"
)

// Transcoding directions, as TranscodeTime reports them (and /metrics labels them).
const (
	DirAACToOpus = "aac_to_opus"
	DirOpusToAAC = "opus_to_aac"
)

// transcodeNanos is the time spent in Transcode calls since start, process-wide, by direction:
// [0] AAC -> Opus, [1] Opus -> AAC. One atomic add per access unit / packet.
var transcodeNanos [2]atomic.Int64

// TranscodeTime is the wall time spent transcoding since the process started, by direction
// (DirAACToOpus, DirOpusToAAC): the time inside AACToOpus.Transcode and OpusToAAC.Transcode (decode,
// resample, encode and the emit callbacks), summed over every transcoder. As each transcoder runs on
// one goroutine without blocking, it approximates the CPU time they use.
func TranscodeTime() map[string]time.Duration {
	return map[string]time.Duration{
		DirAACToOpus: time.Duration(transcodeNanos[0].Load()),
		DirOpusToAAC: time.Duration(transcodeNanos[1].Load()),
	}
}

// since adds the time elapsed from start to acc (deferred around a Transcode call).
func since(acc *atomic.Int64, start time.Time) { acc.Add(int64(time.Since(start))) }
