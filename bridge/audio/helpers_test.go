package audio

import (
	"bytes"
	"fmt"
	"math"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/thesyncim/gopus"
)

// adtsStream is an ffmpeg-made AAC stream split into raw access units.
type adtsStream struct {
	asc  []byte
	conf AudioConfig
	aus  [][]byte
}

// ffmpegAAC encodes a sine of freq Hz (seconds long) at rate Hz with the given channel count as
// AAC-LC in ADTS with ffmpeg's native encoder, and splits it into access units.
func ffmpegAAC(t testing.TB, freq, rate, channels int, seconds float64) adtsStream {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	require.NoError(t, err, "ffmpeg is required (scripts/deps.sh)")
	cmd := exec.Command(bin, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
		"-i", fmt.Sprintf("sine=frequency=%d:sample_rate=%d:duration=%g", freq, rate, seconds),
		"-ac", fmt.Sprint(channels), "-c:a", "aac", "-b:a", fmt.Sprint(64000*channels), "-f", "adts", "-")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	return splitADTS(t, out.Bytes())
}

func splitADTS(t testing.TB, b []byte) adtsStream {
	t.Helper()
	var s adtsStream
	for len(b) > 0 {
		h, err := ParseADTSHeader(b)
		require.NoError(t, err)
		require.LessOrEqual(t, h.FrameLen, len(b))
		require.Equal(t, 1, h.RawBlocks)
		if s.asc == nil {
			s.conf = h.Config
			s.asc = h.Config.Marshal()
		}
		s.aus = append(s.aus, b[h.HeaderLen:h.FrameLen])
		b = b[h.FrameLen:]
	}
	require.NotEmpty(t, s.aus)
	return s
}

type opusFrame struct {
	data []byte
	ts   uint32
}

// collectOpus is an EmitFunc that keeps copies.
type collectOpus struct{ frames []opusFrame }

func (c *collectOpus) emit(frame []byte, ts uint32) {
	c.frames = append(c.frames, opusFrame{data: append([]byte(nil), frame...), ts: ts})
}

// decodeOpus decodes frames with gopus's decoder into interleaved float32 at 48 kHz.
func decodeOpus(t testing.TB, frames []opusFrame, channels int) []float32 {
	t.Helper()
	dec, err := gopus.NewDecoder(gopus.DefaultDecoderConfig(48000, channels))
	require.NoError(t, err)
	buf := make([]float32, 5760*channels)
	var pcm []float32
	for _, f := range frames {
		n, err := dec.Decode(f.data, buf)
		require.NoError(t, err)
		require.Equal(t, OpusFrameSamples, n)
		pcm = append(pcm, buf[:n*channels]...)
	}
	return pcm
}

// goertzelPower is the power of x (one channel) at freq.
func goertzelPower(x []float32, channels, ch int, rate, freq float64) float64 {
	w := 2 * math.Pi * freq / rate
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for i := ch; i < len(x); i += channels {
		s0 := float64(x[i]) + c*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

// dominantFrequency scans 50 Hz..4 kHz in 4 Hz steps over 0.25 s (from 0.2 s), then refines to
// 0.1 Hz over 1.5 s.
func dominantFrequency(x []float32, channels, ch int, rate float64) float64 {
	best, bestP := 0.0, -1.0
	from, to, long := int(0.2*rate)*channels, int(0.45*rate)*channels, int(1.7*rate)*channels
	if long > len(x) {
		from, to, long = 0, len(x), len(x)
	}
	for f := 50.0; f <= 4000; f += 4 {
		if p := goertzelPower(x[from:to], channels, ch, rate, f); p > bestP {
			best, bestP = f, p
		}
	}
	center := best
	bestP = -1
	for f := center - 4; f <= center+4; f += 0.1 {
		if p := goertzelPower(x[from:long], channels, ch, rate, f); p > bestP {
			best, bestP = f, p
		}
	}
	return best
}

// phaseTrack fits a sine of freq to each window of win samples (one channel) from sample from, and
// returns per window its amplitude, phase (radians, relative to sample 0) and the RMS of the residual.
type window struct {
	start       int
	amp, phase  float64
	residualRMS float64
}

func phaseTrack(x []float32, channels, ch int, rate, freq float64, from, to, win int) []window {
	var ws []window
	for s := from; s+win <= to; s += win {
		var ss, cc, sc, sx, cx float64
		for i := s; i < s+win; i++ {
			ph := 2 * math.Pi * freq * float64(i) / rate
			sn, cs := math.Sin(ph), math.Cos(ph)
			v := float64(x[i*channels+ch])
			ss += sn * sn
			cc += cs * cs
			sc += sn * cs
			sx += sn * v
			cx += cs * v
		}
		det := ss*cc - sc*sc
		a := (sx*cc - cx*sc) / det
		b := (cx*ss - sx*sc) / det
		var res float64
		for i := s; i < s+win; i++ {
			ph := 2 * math.Pi * freq * float64(i) / rate
			d := float64(x[i*channels+ch]) - (a*math.Sin(ph) + b*math.Cos(ph))
			res += d * d
		}
		ws = append(ws, window{start: s, amp: math.Hypot(a, b), phase: math.Atan2(b, a), residualRMS: math.Sqrt(res / float64(win))})
	}
	return ws
}

// wrapPi maps a phase difference into (-pi, pi].
func wrapPi(p float64) float64 {
	for p > math.Pi {
		p -= 2 * math.Pi
	}
	for p <= -math.Pi {
		p += 2 * math.Pi
	}
	return p
}

// TestAnalysisHelpers checks the analysis itself: it must find another tone, and see a click.
func TestAnalysisHelpers(t *testing.T) {
	x := sineBlock(48000, 1, 96000, 523.3, 0.3)
	require.InDelta(t, 523.3, dominantFrequency(x, 1, 0, 48000), 0.2)
	// Drop 100 samples inside a window: a click the window's residual must show, and a phase jump
	// for every later window.
	y := append(append([]float32{}, x[:48240]...), x[48340:]...)
	ws := phaseTrack(y, 1, 0, 48000, 523.3, 9600, len(y)-4800, 480)
	var worst, lastPhase float64
	for _, w := range ws {
		worst = max(worst, w.residualRMS/w.amp)
		lastPhase = w.phase
	}
	require.Greater(t, worst, 0.1)
	require.Greater(t, math.Abs(wrapPi(lastPhase-ws[0].phase)), 0.5)
}
