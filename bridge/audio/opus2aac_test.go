package audio

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/thesyncim/gopus"
)

// opusTone encodes seconds of a stereo sine at freq Hz as 20 ms Opus packets.
func opusTone(t testing.TB, freq float64, seconds float64) [][]byte {
	enc, err := gopus.NewEncoder(gopus.EncoderConfig{SampleRate: 48000, Channels: 2, Application: gopus.ApplicationAudio})
	require.NoError(t, err)
	var pkts [][]byte
	pcm := make([]float32, 960*2)
	for i := 0; i < int(seconds*50); i++ {
		for j := 0; j < 960; j++ {
			v := float32(0.5 * math.Sin(2*math.Pi*freq*float64(i*960+j)/48000))
			pcm[2*j], pcm[2*j+1] = v, v
		}
		out := make([]byte, 1500)
		n, err := enc.Encode(pcm, out)
		require.NoError(t, err)
		pkts = append(pkts, out[:n])
	}
	return pkts
}

func TestOpusToAAC(t *testing.T) {
	pkts := opusTone(t, 440, 1)
	tr, err := NewOpusToAAC(2, 0)
	require.NoError(t, err)
	asc := tr.AudioSpecificConfig()
	conf, err := ParseASC(asc)
	require.NoError(t, err)
	require.Equal(t, 48000, conf.SampleRate)
	require.Equal(t, 2, conf.Channels)

	type au struct {
		data []byte
		pts  time.Duration
	}
	var aus []au
	base := 10 * time.Second
	emit := func(b []byte, pts time.Duration) { aus = append(aus, au{append([]byte(nil), b...), pts}) }
	spent := TranscodeTime()[DirOpusToAAC]
	for i, p := range pkts {
		require.NoError(t, tr.Transcode(p, base+time.Duration(i)*20*time.Millisecond, emit))
	}
	spent = TranscodeTime()[DirOpusToAAC] - spent
	t.Logf("transcode time counted: %v for %d packets", spent, len(pkts))
	require.Positive(t, spent, "the time spent transcoding is counted (/metrics)")
	// 1 s = 48000 samples = 46.875 AAC frames, one held back by the encoder's priming.
	require.InDelta(t, 46, len(aus), 1)
	frame := time.Duration(1024 * int64(time.Second) / 48000)
	require.Equal(t, base-frame, aus[0].pts, "the first unit is the priming frame")
	for i := 1; i < len(aus); i++ {
		require.InDelta(t, frame, aus[i].pts-aus[i-1].pts, float64(time.Microsecond))
	}

	dec, err := newAACDecoder(asc, conf)
	require.NoError(t, err)
	var pcm []float32
	for _, a := range aus {
		out, err := dec.decode(a.data)
		require.NoError(t, err)
		pcm = append(pcm, out...)
	}
	// Second half, left channel: loud, and a 440 Hz tone (zero crossings).
	left := make([]float64, 0, len(pcm)/4)
	for i := len(pcm) / 2; i+1 < len(pcm); i += 2 {
		left = append(left, float64(pcm[i]))
	}
	var sum float64
	cross := 0
	for i, v := range left {
		sum += v * v
		if i > 0 && (left[i-1] < 0) != (v < 0) {
			cross++
		}
	}
	rms := math.Sqrt(sum / float64(len(left)))
	freq := float64(cross) / 2 / (float64(len(left)) / 48000)
	t.Logf("decoded AAC: rms %.3f, %.1f Hz", rms, freq)
	require.Greater(t, rms, 0.2)
	require.InDelta(t, 440, freq, 20)

	// A jump in the input moves the output's base.
	aus = aus[:0]
	for i, p := range pkts[:10] {
		require.NoError(t, tr.Transcode(p, base+5*time.Second+time.Duration(i)*20*time.Millisecond, emit))
	}
	require.NotEmpty(t, aus)
	require.Greater(t, aus[0].pts, base+4*time.Second)
}

func TestOpusToAACErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		channels int
	}{
		{name: "no channels", channels: 0},
		{name: "three channels", channels: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewOpusToAAC(tc.channels, 0)
			require.ErrorIs(t, err, ErrInvalidRate)
		})
	}
}

func FuzzOpusToAAC(f *testing.F) {
	for _, p := range opusTone(f, 440, 0.1) {
		f.Add(p)
	}
	f.Add([]byte{})
	f.Add([]byte{0xfc, 0xff, 0xfe})
	tr, err := NewOpusToAAC(2, 0)
	if err != nil {
		f.Fatal(err)
	}
	var ts time.Duration
	f.Fuzz(func(t *testing.T, pkt []byte) {
		ts += 20 * time.Millisecond
		_ = tr.Transcode(pkt, ts, func([]byte, time.Duration) {})
	})
}
