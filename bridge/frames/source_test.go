package frames_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/sfu"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func split(fs []*frames.Frame) (video, audio []*frames.Frame) {
	for _, f := range fs {
		if f.Video() {
			video = append(video, f)
		} else {
			audio = append(audio, f)
		}
	}
	return video, audio
}

func TestSourceH264AAC(t *testing.T) {
	m := loadMedia(t)
	require.NotEmpty(t, m.video)
	require.NotEmpty(t, m.audio)
	for _, tc := range []struct {
		name  string
		proto string
	}{
		{name: "rtmp shared time base", proto: "rtmp"},
		{name: "webrtc arrival anchored", proto: "webrtc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
			defer hub.Close()
			p := &fakePub{proto: tc.proto}
			ps := publishMedia(t, hub, "live/a", m, p, 1000)
			src, err := frames.NewSource(context.Background(), hub, "live/a", frames.Config{}, nil)
			require.NoError(t, err)
			defer func() { _ = src.Close(); src.Wait() }()
			require.Equal(t, "mux", src.Info().Protocol)
			l, err := src.Listen(4096)
			require.NoError(t, err)

			ps.push(t, m, 0, 0)
			got := collect(t, l, len(m.video)+len(m.audio), 5*time.Second)
			video, audio := split(got)
			// The last video frame waits for the next one (no marker on a lone unit is not an issue:
			// the packetizer sets it), so every frame arrives.
			require.Len(t, video, len(m.video))
			require.Len(t, audio, len(m.audio))
			require.True(t, video[0].Key)
			require.Equal(t, m.sps[0], video[0].Config.SPS[0])
			require.Equal(t, m.asc, audio[0].Config.Record)

			reordered := false
			for i, f := range video {
				require.LessOrEqual(t, f.DTS, f.PTS, "frame %d", i)
				if i > 0 {
					require.Greater(t, f.DTS, video[i-1].DTS, "DTS strictly increasing at %d", i)
					if f.PTS < video[i-1].PTS {
						reordered = true
					}
				}
				// PTS keep the source's spacing exactly (to the millisecond).
				want := time.Duration(m.video[i].pts-m.video[0].pts) * time.Millisecond
				require.InDelta(t, want, f.PTS-video[0].PTS, float64(time.Millisecond), "frame %d", i)
				require.Equal(t, m.video[i].key, f.Key, "frame %d", i)
			}
			require.True(t, reordered, "the test file has B-frames")
			for i, f := range audio {
				require.Equal(t, m.audio[i].au, f.Data)
				require.True(t, f.Key)
			}
			if tc.proto == "rtmp" { // one time base: audio and video keep their relative position
				want := time.Duration(m.audio[0].ts-m.video[0].pts) * time.Millisecond
				require.InDelta(t, want, audio[0].PTS-video[0].PTS, float64(2*time.Millisecond))
			}
			require.Zero(t, l.Dropped())
		})
	}
}

// A new publisher (new SSRC, timestamps from elsewhere) after the grace period started: output
// timestamps go on, never backwards.
func TestSourcePublisherChangeContinuity(t *testing.T) {
	m := loadMedia(t)
	hub := sfu.NewHub(sfu.Config{Grace: 5 * time.Second}, sfu.Deps{})
	defer hub.Close()
	ps := publishMedia(t, hub, "live/c", m, &fakePub{proto: "webrtc"}, 1000)
	src, err := frames.NewSource(context.Background(), hub, "live/c", frames.Config{}, nil)
	require.NoError(t, err)
	defer func() { _ = src.Close(); src.Wait() }()
	l, err := src.Listen(8192)
	require.NoError(t, err)
	ps.push(t, m, 0, 0)
	first := collect(t, l, len(m.video)+len(m.audio), 5*time.Second)
	ps.pub.Close()

	ps2 := publishMedia(t, hub, "live/c", m, &fakePub{proto: "webrtc"}, 5000)
	ps2.vBase, ps2.aBase = 0x7fff0000, 0x12345678
	ps2.push(t, m, 0, 0)
	second := collect(t, l, len(m.video)+len(m.audio), 5*time.Second)
	v1, a1 := split(first)
	v2, a2 := split(second)
	require.NotEmpty(t, v2)
	require.NotEmpty(t, a2)
	require.True(t, v2[0].Key)
	require.Greater(t, v2[0].DTS, v1[len(v1)-1].DTS)
	require.Greater(t, a2[0].DTS, a1[len(a1)-1].DTS)
	// Continuous: the new source starts right after the old one (arrival time), not at its own base.
	require.Less(t, v2[0].DTS-v1[len(v1)-1].DTS, 2*time.Second)
}

// A listener that does not read loses frames up to a keyframe; the source and other listeners go on.
func TestSourceSlowListener(t *testing.T) {
	m := loadMedia(t)
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	ps := publishMedia(t, hub, "live/s", m, &fakePub{proto: "rtmp"}, 1000)
	src, err := frames.NewSource(context.Background(), hub, "live/s", frames.Config{}, nil)
	require.NoError(t, err)
	defer func() { _ = src.Close(); src.Wait() }()
	slow, err := src.Listen(10)
	require.NoError(t, err)
	fast, err := src.Listen(4096)
	require.NoError(t, err)
	ps.push(t, m, 0, 0)
	got := collect(t, fast, len(m.video)+len(m.audio), 5*time.Second)
	require.GreaterOrEqual(t, len(got), len(m.video)+len(m.audio))
	require.Zero(t, fast.Dropped())
	require.NotZero(t, slow.Dropped())
	// What the slow one kept: its first 10 frames, then (after its drop) frames from a keyframe on.
	var kept []*frames.Frame
	for len(slow.Frames()) > 0 {
		kept = append(kept, <-slow.Frames())
	}
	require.Len(t, kept, 10)
	require.True(t, kept[0].Key && kept[0].Video())
}

// A listener that joins later starts at the kept GOP (a keyframe), with audio.
func TestSourceLateListenerGOP(t *testing.T) {
	m := loadMedia(t)
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	ps := publishMedia(t, hub, "live/g", m, &fakePub{proto: "rtmp"}, 1000)
	src, err := frames.NewSource(context.Background(), hub, "live/g", frames.Config{}, nil)
	require.NoError(t, err)
	defer func() { _ = src.Close(); src.Wait() }()
	l, err := src.Listen(4096)
	require.NoError(t, err)
	ps.push(t, m, 0, 0)
	collect(t, l, len(m.video)+len(m.audio), 5*time.Second)
	late, err := src.Listen(4096)
	require.NoError(t, err)
	var got []*frames.Frame
	for len(late.Frames()) > 0 {
		got = append(got, <-late.Frames())
	}
	require.NotEmpty(t, got)
	require.True(t, got[0].Video() && got[0].Key)
	_, audio := split(got)
	require.NotEmpty(t, audio)
}

func TestSourceUnknownStream(t *testing.T) {
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	_, err := frames.NewSource(context.Background(), hub, "live/none", frames.Config{}, nil)
	require.ErrorIs(t, err, sfu.ErrStreamNotFound)
}

func TestSourceEndsWithStream(t *testing.T) {
	m := loadMedia(t)
	hub := sfu.NewHub(sfu.Config{Grace: 50 * time.Millisecond}, sfu.Deps{})
	defer hub.Close()
	ps := publishMedia(t, hub, "live/e", m, &fakePub{proto: "rtmp"}, 1000)
	reg := frames.NewRegistry(frames.Config{}, frames.Deps{Hub: hub})
	defer reg.Close()
	src, release, err := reg.Acquire(context.Background(), "live/e")
	require.NoError(t, err)
	src2, release2, err := reg.Acquire(context.Background(), "live/e")
	require.NoError(t, err)
	require.Same(t, src, src2, "one source per stream")
	l, err := src.Listen(0)
	require.NoError(t, err)
	ps.pub.Close()
	select {
	case <-l.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("listener not ended with the stream")
	}
	release()
	release2()
	src.Wait()
}

// A source made while the stream runs gets the hub's cached GOP: it starts there at once, the GOP
// compressed in time so that video and audio start together.
func TestSourceHubReplay(t *testing.T) {
	m := loadMedia(t)
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	ps := publishMedia(t, hub, "live/r", m, &fakePub{proto: "rtmp"}, 1000)
	// 1.5 s into the second GOP (keyframes at 0 and 1 s): the hub caches the GOP from 1 s.
	cut := m.video[:0:0]
	for _, v := range m.video {
		if v.dts < 1500 {
			cut = append(cut, v)
		}
	}
	acut := m.audio[:0:0]
	for _, a := range m.audio {
		if a.ts < 1500 {
			acut = append(acut, a)
		}
	}
	first := &media{sps: m.sps, pps: m.pps, asc: m.asc, video: cut, audio: acut}
	ps.push(t, first, 0, 0)

	src, err := frames.NewSource(context.Background(), hub, "live/r", frames.Config{}, nil)
	require.NoError(t, err)
	defer func() { _ = src.Close(); src.Wait() }()
	l, err := src.Listen(4096)
	require.NoError(t, err)
	rest := &media{sps: m.sps, pps: m.pps, asc: m.asc, video: m.video[len(cut):], audio: m.audio[len(acut):]}
	ps.push(t, rest, 0, 0)
	got := collect(t, l, 40, 3*time.Second)
	video, audio := split(got)
	require.NotEmpty(t, video)
	require.NotEmpty(t, audio)
	require.True(t, video[0].Key, "starts at the cached GOP's keyframe")
	for i := 1; i < len(video); i++ {
		require.Greater(t, video[i].DTS, video[i-1].DTS)
		require.LessOrEqual(t, video[i].DTS, video[i].PTS)
	}
	d := audio[0].DTS - video[0].DTS
	t.Logf("replayed GOP: %d video frames before the first audio; audio starts %v after video", len(video), d)
	require.InDelta(t, 0, float64(d), float64(100*time.Millisecond), "audio and video start together")
}
