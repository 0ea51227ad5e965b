package sfu

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzTrackPackets drives a video track (GOP cache on) with a packet sequence made from the input:
// each byte is a new source, a padding packet, a keyframe, a keyframe fragment or a delta frame.
// Sequence numbers upstream have no gaps, so two DownTracks (one from the start, one joining halfway
// through the GOP replay) must each output consecutive sequence numbers, starting with a keyframe.
func FuzzTrackPackets(f *testing.F) {
	f.Add([]byte{2, 3, 4, 4, 5, 2, 6, 7})
	f.Add([]byte{0, 1, 2, 1, 4, 0, 4, 2, 3, 4})
	f.Add([]byte{4, 4, 4, 2, 2, 2, 1, 1, 0, 0, 2, 5})
	f.Fuzz(runTrackPackets)
}

func runTrackPackets(t *testing.T, ops []byte) {
	{
		if len(ops) > 400 {
			ops = ops[:400]
		}
		h := NewHub(Config{}, Deps{})
		defer h.Close()
		p, err := h.Publish(context.Background(), "live/fuzz", &fakePub{ID: "a"}, []TrackInfo{videoInfo})
		require.NoError(t, err)
		tr := p.Track("video")
		sinks := []*recSink{{}, {}}
		first := NewDownTrack(tr, sinks[0], DownTrackOptions{ReplayRate: -1, QueuePackets: 4096})
		defer first.Close()
		defer tr.AddWriter(first)()
		var late *DownTrack
		g := &h264Gen{ssrc: 1, sn: 65000}
		for i, op := range ops {
			if i == len(ops)/2 {
				late = NewDownTrack(tr, sinks[1], DownTrackOptions{ReplayRate: -1, QueuePackets: 4096})
				defer late.Close()
				defer tr.AddWriter(late)()
			}
			switch op % 8 {
			case 0:
				g.ssrc++
				g.sn += uint16(op) * 97
				g.ts += uint32(op) * 7919
			case 1:
				require.NoError(t, tr.WriteRTP(g.pkt(nil, false)))
			case 2:
				writeAll(t, tr, g.keyframe())
			case 3: // an IDR fragment start on its own (a keyframe of one packet)
				require.NoError(t, tr.WriteRTP(g.pkt(fuIDRStart, true)))
				g.ts += 3000
			default:
				writeAll(t, tr, g.delta())
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for _, d := range []*DownTrack{first, late} {
			for d != nil && !d.settled() {
				require.True(t, time.Now().Before(deadline), "DownTrack did not drain")
				runtime.Gosched()
			}
		}
		for _, s := range sinks {
			v := s.get()
			if len(v) == 0 {
				continue
			}
			require.True(t, IsKeyframe("video/H264", v[0].Payload), "first packet is a keyframe")
			requireContinuous(t, v)
		}
	}
}
