package audio

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func sineBlock(rate, channels, n int, freq, amp float64) []float32 {
	out := make([]float32, n*channels)
	for i := range n {
		v := float32(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
		for c := range channels {
			out[i*channels+c] = v
		}
	}
	return out
}

// fitAmplitude returns the least-squares amplitude of a sine of freq in x (one channel of an
// interleaved signal), over x[from:to] frames.
func fitAmplitude(x []float32, channels, ch int, rate, freq float64, from, to int) float64 {
	var ss, cc, sc, sx, cx float64
	for i := from; i < to; i++ {
		w := 2 * math.Pi * freq * float64(i) / rate
		s, c := math.Sin(w), math.Cos(w)
		v := float64(x[i*channels+ch])
		ss += s * s
		cc += c * c
		sc += s * c
		sx += s * v
		cx += c * v
	}
	// Solve [ss sc; sc cc] [a b] = [sx cx].
	det := ss*cc - sc*sc
	a := (sx*cc - cx*sc) / det
	b := (cx*ss - sx*sc) / det
	return math.Hypot(a, b)
}

func rms(x []float32, channels, ch, from, to int) float64 {
	var s float64
	for i := from; i < to; i++ {
		v := float64(x[i*channels+ch])
		s += v * v
	}
	return math.Sqrt(s / float64(to-from))
}

func TestResamplerPassband(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       int
		channels int
	}{
		{name: "44.1k stereo", in: 44100, channels: 2},
		{name: "22.05k mono", in: 22050, channels: 1},
		{name: "32k stereo", in: 32000, channels: 2},
		{name: "8k mono", in: 8000, channels: 1},
		{name: "11.025k mono", in: 11025, channels: 1},
		{name: "16k mono", in: 16000, channels: 1},
		{name: "88.2k stereo", in: 88200, channels: 2},
		{name: "96k stereo", in: 96000, channels: 2},
		{name: "48k bypass", in: 48000, channels: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nyq := float64(min(tc.in, 48000)) / 2
			for _, f := range []float64{50, 440, 0.1 * nyq, 0.3 * nyq, 0.5 * nyq, 0.7 * nyq, 0.8 * nyq} {
				r, err := NewResampler(tc.in, 48000, tc.channels)
				require.NoError(t, err)
				in := sineBlock(tc.in, tc.channels, tc.in/2, f, 0.5) // 0.5 s
				var out []float32
				for off := 0; off < len(in); off += 512 * tc.channels {
					out = r.Process(out, in[off:min(off+512*tc.channels, len(in))])
				}
				frames := len(out) / tc.channels
				require.InDelta(t, 24000, frames, 3)
				for c := range tc.channels {
					a := fitAmplitude(out, tc.channels, c, 48000, f, 2000, frames-100)
					db := 20 * math.Log10(a/0.5)
					t.Logf("%.0f Hz ch%d: %+.3f dB", f, c, db)
					require.Less(t, math.Abs(db), 0.5, "%.0f Hz", f)
				}
			}
		})
	}
}

func TestResamplerStopband(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   int
		freq float64
	}{
		{name: "96k 26kHz", in: 96000, freq: 26000},
		{name: "96k 30kHz", in: 96000, freq: 30000},
		{name: "96k 40kHz", in: 96000, freq: 40000},
		{name: "88.2k 30kHz", in: 88200, freq: 30000},
		{name: "64k 28kHz", in: 64000, freq: 28000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewResampler(tc.in, 48000, 1)
			require.NoError(t, err)
			in := sineBlock(tc.in, 1, tc.in/2, tc.freq, 0.5)
			out := r.Process(nil, in)
			n := len(out)
			att := 20 * math.Log10(rms(out, 1, 0, 2000, n-100)/(0.5/math.Sqrt2))
			t.Logf("%.0f Hz at %d Hz -> 48 kHz: %.1f dB", tc.freq, tc.in, att)
			require.Less(t, att, -40.0)
		})
	}
}

// TestResamplerBlockContinuity checks that random block sizes give the same output as one block (no
// clicks at block edges), and that the output is the ideal sine delayed by Delay().
func TestResamplerBlockContinuity(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       int
		channels int
	}{
		{name: "44.1k stereo", in: 44100, channels: 2},
		{name: "22.05k mono", in: 22050, channels: 1},
		{name: "96k mono", in: 96000, channels: 1},
		{name: "32k stereo", in: 32000, channels: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := sineBlock(tc.in, tc.channels, tc.in/4, 997, 0.5)
			one, err := NewResampler(tc.in, 48000, tc.channels)
			require.NoError(t, err)
			whole := one.Process(nil, in)

			r, err := NewResampler(tc.in, 48000, tc.channels)
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(1, 2))
			var pieces []float32
			for off := 0; off < len(in); {
				n := (1 + rng.IntN(3000)) * tc.channels
				end := min(off+n, len(in))
				pieces = r.Process(pieces, in[off:end])
				off = end
			}
			require.Equal(t, len(whole), len(pieces))
			for i := range whole {
				require.InDelta(t, whole[i], pieces[i], 1e-6, "sample %d", i)
			}
			// Against the ideal delayed sine: the worst sample error stays under -50 dB of the tone.
			d := one.Delay()
			var worst float64
			for k := 200; k < len(whole)/tc.channels-50; k++ {
				want := 0.5 * math.Sin(2*math.Pi*997*(float64(k)-d)/48000)
				worst = max(worst, math.Abs(float64(whole[k*tc.channels])-want))
			}
			t.Logf("delay %.2f samples, worst error %.1f dB", d, 20*math.Log10(worst/0.5))
			require.Less(t, 20*math.Log10(worst/0.5), -50.0)
		})
	}
}

func TestResamplerInvalid(t *testing.T) {
	for _, tc := range []struct {
		name           string
		in, out, chans int
	}{
		{name: "zero in", in: 0, out: 48000, chans: 1},
		{name: "zero out", in: 44100, out: 0, chans: 1},
		{name: "three channels", in: 44100, out: 48000, chans: 3},
		{name: "huge", in: 10_000_000, out: 48000, chans: 1},
		{name: "too many phases", in: 47999, out: 48000, chans: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewResampler(tc.in, tc.out, tc.chans)
			require.ErrorIs(t, err, ErrInvalidRate)
		})
	}
}

func TestResamplerNoAllocs(t *testing.T) {
	r, err := NewResampler(44100, 48000, 2)
	require.NoError(t, err)
	in := sineBlock(44100, 2, 1024, 440, 0.5)
	out := make([]float32, 0, 4096)
	out = r.Process(out[:0], in)
	allocs := testing.AllocsPerRun(100, func() { out = r.Process(out[:0], in) })
	require.Zero(t, allocs)
}

func BenchmarkResampler(b *testing.B) {
	for _, tc := range []struct {
		name     string
		in       int
		channels int
	}{
		{name: "44.1k-stereo", in: 44100, channels: 2},
		{name: "22.05k-mono", in: 22050, channels: 1},
		{name: "96k-stereo", in: 96000, channels: 2},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r, err := NewResampler(tc.in, 48000, tc.channels)
			require.NoError(b, err)
			in := sineBlock(tc.in, tc.channels, 1024, 440, 0.5)
			out := make([]float32, 0, 8192)
			b.ReportAllocs()
			b.SetBytes(int64(len(in) * 4))
			for b.Loop() {
				out = r.Process(out[:0], in)
			}
			// ms of CPU per second of audio
			perFrame := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(perFrame*float64(tc.in)/1024/1e6, "ms/audio-s")
		})
	}
}
