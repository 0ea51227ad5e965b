package rtc

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

// fakeContext is a TrackLocalContext whose WriteStream records the last header.
type fakeContext struct {
	id     string
	codecs []webrtc.RTPCodecParameters
	w      *fakeWriter
}

func (c fakeContext) CodecParameters() []webrtc.RTPCodecParameters           { return c.codecs }
func (c fakeContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (c fakeContext) SSRC() webrtc.SSRC                                      { return 0xabcd }
func (c fakeContext) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (c fakeContext) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (c fakeContext) WriteStream() webrtc.TrackLocalWriter                   { return c.w }
func (c fakeContext) ID() string                                             { return c.id }
func (c fakeContext) RTCPReader() interceptor.RTCPReader                     { return nil }

type fakeWriter struct {
	last  rtp.Header
	n     int
	bytes int
}

func (w *fakeWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.last = *h
	w.n++
	w.bytes += len(payload)

	return 12 + len(payload), nil
}

func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }

func h264Codecs() []webrtc.RTPCodecParameters {
	var out []webrtc.RTPCodecParameters
	for _, c := range Codecs(Config{}) {
		if c.MimeType == webrtc.MimeTypeH264 || c.MimeType == webrtc.MimeTypeVP8 {
			out = append(out, c)
		}
	}

	return out
}

func TestLocalTrackBind(t *testing.T) {
	info := sfu.TrackInfo{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/H264", ClockRate: 90000,
		Fmtp: "packetization-mode=1;profile-level-id=4d001f"}}
	lt := NewLocalTrack(info, LocalTrackOptions{})
	w := &fakeWriter{}
	ctx := fakeContext{id: "s1", codecs: h264Codecs(), w: w}
	c, err := lt.Bind(ctx)
	require.NoError(t, err)
	require.Equal(t, "4d001f", ParseFmtp(c.SDPFmtpLine)["profile-level-id"])

	h := rtp.Header{Version: 2, SSRC: 1, PayloadType: 1, SequenceNumber: 7, Extension: true,
		Extensions: []rtp.Extension{}, Padding: true, PaddingSize: 3}
	_, err = lt.WriteRTP(&h, []byte{1, 2, 3})
	require.NoError(t, err)
	require.Equal(t, uint32(0xabcd), w.last.SSRC)
	require.Equal(t, uint8(c.PayloadType), w.last.PayloadType)
	require.Equal(t, uint16(7), w.last.SequenceNumber)
	require.False(t, w.last.Extension)
	require.False(t, w.last.Padding)

	// Unbind by another sender's context is ignored; by ours it stops the writes.
	require.NoError(t, lt.Unbind(fakeContext{id: "other"}))
	_, _ = lt.WriteRTP(&h, []byte{1})
	require.Equal(t, 2, w.n)
	require.NoError(t, lt.Unbind(ctx))
	n, err := lt.WriteRTP(&h, []byte{1})
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, 2, w.n)

	// No matching codec: Bind fails.
	opus := NewLocalTrack(sfu.TrackInfo{ID: "audio", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/opus"}}, LocalTrackOptions{})
	_, err = opus.Bind(ctx)
	require.ErrorIs(t, err, ErrNoMatchingCodec)
}

// TestLocalTrackWriteAllocs: the per-packet write allocates nothing.
func TestLocalTrackWriteAllocs(t *testing.T) {
	lt := NewLocalTrack(sfu.TrackInfo{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/VP8"}}, LocalTrackOptions{})
	w := &fakeWriter{}
	_, err := lt.Bind(fakeContext{id: "s", codecs: h264Codecs(), w: w})
	require.NoError(t, err)
	payload := make([]byte, 1200)
	h := rtp.Header{Version: 2}
	allocs := testing.AllocsPerRun(1000, func() {
		h.SequenceNumber++
		_, _ = lt.WriteRTP(&h, payload)
	})
	require.Zero(t, allocs)
}

func BenchmarkLocalTrackWriteRTP(b *testing.B) {
	lt := NewLocalTrack(sfu.TrackInfo{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/VP8"}}, LocalTrackOptions{})
	w := &fakeWriter{}
	if _, err := lt.Bind(fakeContext{id: "s", codecs: h264Codecs(), w: w}); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1200)
	h := rtp.Header{Version: 2}
	b.ReportAllocs()
	for b.Loop() {
		h.SequenceNumber++
		_, _ = lt.WriteRTP(&h, payload)
	}
}
