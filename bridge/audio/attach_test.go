package audio

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/estuary-media/estuary/bridge/packetize"
	"github.com/estuary-media/estuary/sfu"
)

type testPub struct{}

func (testPub) Info() sfu.ClientInfo {
	return sfu.ClientInfo{ID: "pub", Protocol: "test", Started: time.Now()}
}
func (testPub) Close() error           { return nil }
func (testPub) RequestKeyframe(string) {}

// opusSub subscribes to "audio" only and keeps copies of what it gets.
type opusSub struct {
	mu   sync.Mutex
	pkts []rtp.Packet
}

func (s *opusSub) Info() sfu.ClientInfo { return sfu.ClientInfo{ID: "sub", Protocol: "test"} }
func (s *opusSub) Close() error         { return nil }
func (s *opusSub) AddTrack(t *sfu.Track) (sfu.TrackWriter, error) {
	if t.ID() != OpusTrackID {
		return nil, sfu.ErrTrackSkipped
	}
	return s, nil
}

func (s *opusSub) WriteRTP(p *rtp.Packet) error {
	c := *p
	c.Payload = append([]byte(nil), p.Payload...)
	s.mu.Lock()
	s.pkts = append(s.pkts, c)
	s.mu.Unlock()
	return nil
}

func (s *opusSub) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pkts)
}

func (s *opusSub) take() []rtp.Packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pkts
	s.pkts = nil
	return p
}

func publishAAC(t *testing.T, hub *sfu.Hub, key string, asc []byte, rate, channels int) *sfu.Publication {
	t.Helper()
	pub, err := hub.Publish(context.Background(), key, testPub{}, []sfu.TrackInfo{
		{ID: AACTrackID, Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: MimeTypeAAC, ClockRate: uint32(rate), Channels: uint16(channels), Fmtp: packetize.AACFmtp(asc)}},
		{ID: OpusTrackID, Kind: sfu.KindAudio, Codec: OpusCodec(channels)},
	})
	require.NoError(t, err)
	return pub
}

// expectedOpus is how many Opus frames n AAC frames at rate make (resampler delay discarded).
func expectedOpus(tr *AACToOpus, n, rate int) int {
	out := int(float64(n*AACFrameSamples)*48000/float64(rate)) - int(math.Round(tr.rs.Delay()))
	return out / OpusFrameSamples
}

func TestAttachOpusHub(t *testing.T) {
	defer goleak.VerifyNone(t)
	src := ffmpegAAC(t, 440, 44100, 2, 3)
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	pub := publishAAC(t, hub, "live/aac", src.asc, 44100, 2)
	defer pub.Close()
	stop := AttachOpus(pub, Config{}, slog.New(slog.DiscardHandler))
	defer stop()
	aacTrack, opusTrack := pub.Track(AACTrackID), pub.Track(OpusTrackID)
	pk := packetize.NewAAC(aacTrack, packetize.Config{SSRC: 42, PayloadType: 97})
	const base = 90_000
	next := 0
	feed := func(n int) {
		for range n {
			require.NoError(t, pk.WriteAU(src.aus[next%len(src.aus)], base+uint32(next*AACFrameSamples)))
			next++
		}
	}
	ref, err := NewAACToOpus(src.asc, Config{})
	require.NoError(t, err)

	// Nobody wants Opus: no transcoder on the AAC track.
	feed(10)
	require.Zero(t, aacTrack.Writers())
	require.Zero(t, opusTrack.Stats().Packets)

	sub := &opusSub{}
	unsub, err := hub.Subscribe(context.Background(), "live/aac", sub)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return aacTrack.Writers() == 1 }, 2*time.Second, time.Millisecond)

	// The first AAC frame after the viewer arrived is enough for a first Opus frame.
	firstAU := next
	start := time.Now()
	feed(1)
	require.Eventually(t, func() bool { return sub.count() >= 1 }, 2*time.Second, time.Millisecond)
	t.Logf("first Opus packet %v after the first AAC frame (1 AAC frame after the viewer came)", time.Since(start))

	// Feed in chunks the queue holds, waiting for the transcoder each time.
	for next-firstAU < 100 {
		feed(16)
		want := expectedOpus(ref, next-firstAU, 44100)
		require.Eventually(t, func() bool { return sub.count() >= want }, 5*time.Second, time.Millisecond, "want %d", want)
	}
	pkts := sub.take()
	require.Len(t, pkts, expectedOpus(ref, next-firstAU, 44100))
	wantTS := uint32(math.Floor(float64(base+firstAU*AACFrameSamples)*48000/44100)) - uint32(ref.lookahead)
	require.Equal(t, wantTS, pkts[0].Timestamp)
	for i, p := range pkts {
		require.Equal(t, uint8(OpusPayloadType), p.PayloadType)
		require.False(t, p.Marker)
		require.Equal(t, pkts[0].SSRC, p.SSRC)
		if i > 0 {
			require.Equal(t, pkts[i-1].SequenceNumber+1, p.SequenceNumber, "packet %d", i)
			require.Equal(t, pkts[i-1].Timestamp+OpusFrameSamples, p.Timestamp, "packet %d", i)
		}
	}
	frames := make([]opusFrame, len(pkts))
	for i, p := range pkts {
		frames[i] = opusFrame{data: p.Payload, ts: p.Timestamp}
	}
	pcm := decodeOpus(t, frames, 2)
	// AAC time of the first AU fed after the viewer came (it is not the stream's start: 10 AUs earlier, at base).
	sineCheck(t, pcm, 2, 44100, pkts[0].Timestamp, base, -1, -1)
	last := pkts[len(pkts)-1]

	// The viewer leaves: the transcoder stops (its writer leaves the AAC track), no more Opus.
	unsub()
	require.Eventually(t, func() bool { return aacTrack.Writers() == 0 }, 2*time.Second, time.Millisecond)
	sent := opusTrack.Stats().Packets
	feed(20)
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, sent, opusTrack.Stats().Packets, "no Opus without viewers")

	// A viewer comes back: same SSRC, sequence numbers continue, timestamps on the same AAC-derived clock.
	sub2 := &opusSub{}
	unsub2, err := hub.Subscribe(context.Background(), "live/aac", sub2)
	require.NoError(t, err)
	defer unsub2()
	require.Eventually(t, func() bool { return aacTrack.Writers() == 1 }, 2*time.Second, time.Millisecond)
	restartAU := next
	feed(16)
	require.Eventually(t, func() bool { return sub2.count() >= expectedOpus(ref, 16, 44100) }, 5*time.Second, time.Millisecond)
	again := sub2.take()
	require.Equal(t, last.SSRC, again[0].SSRC)
	require.Equal(t, last.SequenceNumber+1, again[0].SequenceNumber)
	require.Equal(t, uint32(math.Floor(float64(base+restartAU*AACFrameSamples)*48000/44100))-uint32(ref.lookahead), again[0].Timestamp)
	for i := 1; i < len(again); i++ {
		require.Equal(t, again[i-1].Timestamp+OpusFrameSamples, again[i].Timestamp)
	}

	// stop detaches for good.
	stop()
	require.Zero(t, aacTrack.Writers())
	unsub2()
	unsub3, err := hub.Subscribe(context.Background(), "live/aac", &opusSub{})
	require.NoError(t, err)
	defer unsub3()
	require.Zero(t, aacTrack.Writers(), "no transcoder after stop")
}

func TestAttachOpusProblems(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, tc := range []struct {
		name    string
		asc     []byte
		problem bool
	}{
		{name: "HE-AAC", asc: ascCases[4].asc, problem: true},
		{name: "5.1", asc: AudioConfig{ObjectType: 2, SampleRate: 48000, Channels: 6}.Marshal(), problem: true},
		{name: "LC stereo", asc: []byte{0x12, 0x10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
			defer hub.Close()
			pub := publishAAC(t, hub, "live/p", tc.asc, 48000, 2)
			defer pub.Close()
			stop := AttachOpus(pub, Config{}, nil)
			defer stop()
			unsub, err := hub.Subscribe(context.Background(), "live/p", &opusSub{})
			require.NoError(t, err)
			defer unsub()
			for _, id := range []string{AACTrackID, OpusTrackID} {
				p := pub.Track(id).Details().Problem
				t.Logf("%s: %q", id, p)
				if tc.problem {
					require.Contains(t, p, "AAC cannot be transcoded to Opus")
				} else {
					require.Empty(t, p)
				}
			}
			want := 1
			if tc.problem {
				want = 0
			}
			require.Equal(t, want, pub.Track(AACTrackID).Writers())
		})
	}
}

func TestAttachOpusNoTracks(t *testing.T) {
	defer goleak.VerifyNone(t)
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	pub, err := hub.Publish(context.Background(), "live/v", testPub{}, []sfu.TrackInfo{
		{ID: OpusTrackID, Kind: sfu.KindAudio, Codec: OpusCodec(2)},
	})
	require.NoError(t, err)
	defer pub.Close()
	stop := AttachOpus(pub, Config{}, nil)
	stop()
	stop()
	AttachOpus(nil, Config{}, nil)()
}

// sbrAU is a raw_data_block holding only a fill element whose payload is SBR data (extension type
// 0xD) and END: what an implicitly signalled HE-AAC stream carries (its ASC says plain AAC-LC).
var sbrAU = []byte{0xC3, 0xA1, 0xC0}

// TestAttachOpusImplicitHEAAC: an HE-AAC stream whose ASC looks like AAC-LC is found out by its first
// frame: one problem on the tracks, and no Opus from then on.
func TestAttachOpusImplicitHEAAC(t *testing.T) {
	defer goleak.VerifyNone(t)
	src := ffmpegAAC(t, 440, 48000, 1, 1)
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	pub := publishAAC(t, hub, "live/he", src.asc, 48000, 1)
	defer pub.Close()
	stop := AttachOpus(pub, Config{}, nil)
	defer stop()
	sub := &opusSub{}
	unsub, err := hub.Subscribe(context.Background(), "live/he", sub)
	require.NoError(t, err)
	defer unsub()
	pk := packetize.NewAAC(pub.Track(AACTrackID), packetize.Config{PayloadType: 97})
	for i := range 10 {
		require.NoError(t, pk.WriteAU(src.aus[i], uint32(i*AACFrameSamples)))
	}
	require.Eventually(t, func() bool { return sub.count() >= 9 }, 5*time.Second, time.Millisecond)
	require.Empty(t, pub.Track(OpusTrackID).Details().Problem)
	require.NoError(t, pk.WriteAU(sbrAU, 10*AACFrameSamples))
	require.Eventually(t, func() bool { return pub.Track(OpusTrackID).Details().Problem != "" }, 5*time.Second, time.Millisecond)
	t.Logf("problem: %q", pub.Track(AACTrackID).Details().Problem)
	require.Contains(t, pub.Track(AACTrackID).Details().Problem, "HE-AAC")
	n := sub.count()
	for i := 11; i < 30; i++ {
		require.NoError(t, pk.WriteAU(src.aus[i], uint32(i*AACFrameSamples)))
	}
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, n, sub.count(), "no Opus after the stream turned out to be HE-AAC")
}
