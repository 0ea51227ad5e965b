package audio

import (
	"math"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sineCheck analyses decoded 48 kHz output of a transcoded 440 Hz sine whose AAC stream starts at
// AAC timestamp aacBase with ffmpeg's 1024 samples of encoder priming. It checks the frequency, the
// amplitude stability, the residual (no clicks), and that the tone's phase is where the timestamps
// say: decoded sample j of the first Opus frame (timestamp ts0) is AAC time ts0+j (48 kHz units).
func sineCheck(t *testing.T, pcm []float32, channels, rate int, firstTS uint32, aacBase uint32, skipFrom, skipTo int) {
	t.Helper()
	total := len(pcm) / channels
	for ch := range channels {
		f := dominantFrequency(pcm, channels, ch, 48000)
		t.Logf("ch%d dominant frequency %.1f Hz", ch, f)
		require.InDelta(t, 440, f, 5)

		ws := phaseTrack(pcm, channels, ch, 48000, 440, 9600, total-4800, 480) // 10 ms windows, from 0.2 s
		require.NotEmpty(t, ws)
		amps := make([]float64, 0, len(ws))
		for _, w := range ws {
			amps = append(amps, w.amp)
		}
		slices.Sort(amps)
		med := amps[len(amps)/2]
		// Expected phase: source sample s (at rate) is sin(2*pi*440*s/rate); decoded sample j sits at
		// AAC time (firstTS + j)*rate/48000 - aacBase*... in AAC samples, minus 1024 priming.
		aacBase48 := math.Floor(float64(aacBase) * 48000 / float64(rate))
		var worstPh, worstRes, worstAmp float64
		for _, w := range ws {
			if skipFrom >= 0 && w.start+480 > skipFrom && w.start < skipTo {
				continue
			}
			rel := float64(int32(firstTS - uint32(int64(aacBase48)))) // first frame's time since aacBase, 48 kHz
			srcTime := (rel+float64(w.start))/48000 - 1024/float64(rate)
			// The window's fitted phase is relative to sample 0: convert the expectation likewise.
			wantPhase := 2*math.Pi*440*(srcTime) - 2*math.Pi*440*float64(w.start)/48000
			// sin(wt + p): fitted phase atan2(b, a) with a*sin + b*cos => p.
			dp := wrapPi(w.phase - wantPhase)
			worstPh = max(worstPh, math.Abs(dp))
			worstRes = max(worstRes, w.residualRMS/med)
			worstAmp = max(worstAmp, math.Abs(20*math.Log10(w.amp/med)))
		}
		t.Logf("ch%d amplitude %.4f, worst: amplitude step %.2f dB, residual %.1f dB, phase error %.3f rad (%.3f ms)",
			ch, med, worstAmp, 20*math.Log10(worstRes), worstPh, worstPh/(2*math.Pi*440)*1000)
		require.Greater(t, med, 0.05, "tone present")
		require.Less(t, worstAmp, 1.0, "amplitude steady")
		require.Less(t, worstRes, 0.1, "residual below -20 dB: no clicks")
		require.Less(t, worstPh, 0.15, "phase continuous and where the timestamps say")
	}
}

func TestAACToOpusSine(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rate     int
		channels int
		base     uint32
	}{
		{name: "44.1k stereo", rate: 44100, channels: 2, base: 123456},
		{name: "48k mono", rate: 48000, channels: 1, base: 0},
		{name: "32k stereo", rate: 32000, channels: 2, base: 4294967295 - 50000}, // wraps
		{name: "22.05k mono", rate: 22050, channels: 1, base: 777},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := ffmpegAAC(t, 440, tc.rate, tc.channels, 4)
			require.Equal(t, tc.rate, src.conf.SampleRate)
			require.Equal(t, tc.channels, src.conf.Channels)
			tr, err := NewAACToOpus(src.asc, Config{})
			require.NoError(t, err)
			var c collectOpus
			spent := TranscodeTime()[DirAACToOpus]
			for i, au := range src.aus {
				require.NoError(t, tr.Transcode(au, tc.base+uint32(i*AACFrameSamples), c.emit))
			}
			spent = TranscodeTime()[DirAACToOpus] - spent
			t.Logf("transcode time counted: %v for %d AUs", spent, len(src.aus))
			require.Positive(t, spent, "the time spent transcoding is counted (/metrics)")
			require.NotEmpty(t, c.frames)
			wantFirst := uint32(int64(math.Floor(float64(tc.base)*48000/float64(tc.rate))) - int64(tr.lookahead))
			require.Equal(t, wantFirst, c.frames[0].ts)
			for i := 1; i < len(c.frames); i++ {
				require.Equal(t, uint32(OpusFrameSamples), c.frames[i].ts-c.frames[i-1].ts, "frame %d", i)
			}
			pcm := decodeOpus(t, c.frames, tc.channels)
			inDur := float64(len(src.aus)*AACFrameSamples) / float64(tc.rate)
			outDur := float64(len(pcm)/tc.channels) / 48000
			errPct := 100 * math.Abs(outDur-inDur) / inDur
			t.Logf("%d AUs (%.3f s) -> %d Opus frames (%.3f s): duration error %.2f%%; %d bytes/frame avg",
				len(src.aus), inDur, len(c.frames), outDur, errPct, tr.Stats().OpusBytes/tr.Stats().OpusFrames)
			require.Less(t, errPct, 2.0)
			sineCheck(t, pcm, tc.channels, tc.rate, c.frames[0].ts, tc.base, -1, -1)
			st := tr.Stats()
			require.Equal(t, uint64(len(src.aus)), st.AUs)
			require.Zero(t, st.CorruptAUs+st.DroppedAUs+st.GapSamples+st.Restarts+st.EncodeFailures)
		})
	}
}

func requireSameFrames(t *testing.T, want, got []opusFrame) {
	t.Helper()
	require.Equal(t, len(want), len(got), "frame count")
	for i := range want {
		require.Equal(t, want[i].ts, got[i].ts, "frame %d timestamp", i)
		require.True(t, slices.Equal(want[i].data, got[i].data), "frame %d data", i)
	}
}

func transcodeAll(t *testing.T, tr *AACToOpus, aus [][]byte, ts []uint32) *collectOpus {
	t.Helper()
	var c collectOpus
	for i, au := range aus {
		require.NoError(t, tr.Transcode(au, ts[i], c.emit), "AU %d", i)
	}
	return &c
}

func TestAACToOpusTiming(t *testing.T) {
	src := ffmpegAAC(t, 440, 44100, 2, 3)
	const base = 1_000_000
	n := len(src.aus)
	ideal := make([]uint32, n)
	for i := range ideal {
		ideal[i] = base + uint32(i*AACFrameSamples)
	}
	ref, err := NewAACToOpus(src.asc, Config{})
	require.NoError(t, err)
	want := transcodeAll(t, ref, src.aus, ideal)
	la := uint32(ref.lookahead)
	firstTS := uint32(base*48000/44100) - la

	t.Run("jitter is ignored", func(t *testing.T) {
		tr, err := NewAACToOpus(src.asc, Config{})
		require.NoError(t, err)
		ts := make([]uint32, n)
		for i := range ts {
			ts[i] = ideal[i]
			if i > 0 { // the first AU is the anchor
				ts[i] += uint32(int32((i*7919)%601 - 300)) // within ±300 samples
			}
		}
		got := transcodeAll(t, tr, src.aus, ts)
		t.Logf("%+v", tr.Stats())
		requireSameFrames(t, want.frames, got.frames)
	})

	t.Run("duplicate dropped", func(t *testing.T) {
		tr, err := NewAACToOpus(src.asc, Config{})
		require.NoError(t, err)
		aus := append(append(append([][]byte{}, src.aus[:40]...), src.aus[39]), src.aus[40:]...)
		ts := append(append(append([]uint32{}, ideal[:40]...), ideal[39]), ideal[40:]...)
		got := transcodeAll(t, tr, aus, ts)
		require.Equal(t, uint64(1), tr.Stats().DroppedAUs)
		requireSameFrames(t, want.frames, got.frames)
	})

	t.Run("lost frames stay a gap", func(t *testing.T) {
		tr, err := NewAACToOpus(src.asc, Config{})
		require.NoError(t, err)
		aus := append(append([][]byte{}, src.aus[:50]...), src.aus[53:]...)
		ts := append(append([]uint32{}, ideal[:50]...), ideal[53:]...)
		got := transcodeAll(t, tr, aus, ts)
		require.Equal(t, uint64(3*AACFrameSamples), tr.Stats().GapSamples)
		require.Equal(t, len(want.frames), len(got.frames))
		for i := range got.frames {
			require.Equal(t, want.frames[i].ts, got.frames[i].ts)
		}
		pcm := decodeOpus(t, got.frames, 2)
		// The gap is AAC samples 50*1024..53*1024 (+ the decoder's transition frames): skip those
		// windows; every other window keeps the source's phase.
		gapFrom := 50*AACFrameSamples*48000/44100 - 2000
		gapTo := 54*AACFrameSamples*48000/44100 + 2000
		sineCheck(t, pcm, 2, 44100, got.frames[0].ts, base, gapFrom, gapTo)
		// And the gap is silent-ish (not the tone slipped into it).
		mid := (51*AACFrameSamples*48000/44100 + int(la)) * 2
		require.Less(t, rms(pcm[mid:mid+2*960], 2, 0, 0, 960), 0.01)
	})

	t.Run("corrupt frame becomes a gap", func(t *testing.T) {
		tr, err := NewAACToOpus(src.asc, Config{})
		require.NoError(t, err)
		var c collectOpus
		for i, au := range src.aus {
			if i == 60 {
				err := tr.Transcode([]byte{0xff, 0xff, 0xff}, ideal[i], c.emit)
				require.ErrorIs(t, err, ErrCorruptFrame)
				continue
			}
			require.NoError(t, tr.Transcode(au, ideal[i], c.emit), "AU %d", i)
		}
		st := tr.Stats()
		require.Equal(t, uint64(1), st.CorruptAUs)
		require.Equal(t, uint64(AACFrameSamples), st.GapSamples)
		require.Equal(t, len(want.frames), len(c.frames))
		for i := range c.frames {
			require.Equal(t, want.frames[i].ts, c.frames[i].ts)
		}
	})

	t.Run("SBR payload is unsupported", func(t *testing.T) {
		tr, err := NewAACToOpus(src.asc, Config{})
		require.NoError(t, err)
		require.NoError(t, tr.Transcode(src.aus[0], 0, nil))
		require.ErrorIs(t, tr.Transcode(sbrAU, AACFrameSamples, nil), ErrUnsupported)
	})

	t.Run("jump restarts the timeline", func(t *testing.T) {
		tr, err := NewAACToOpus(src.asc, Config{})
		require.NoError(t, err)
		ts := append([]uint32{}, ideal...)
		const jump = 10 * 44100
		for i := 80; i < n; i++ {
			ts[i] += jump
		}
		got := transcodeAll(t, tr, src.aus, ts)
		require.Equal(t, uint64(1), tr.Stats().Restarts)
		require.Equal(t, firstTS, got.frames[0].ts)
		restartTS := uint32(int64(float64(ts[80])*48000/44100)) - la
		found := false
		for i := 1; i < len(got.frames); i++ {
			d := got.frames[i].ts - got.frames[i-1].ts
			if d != OpusFrameSamples {
				require.False(t, found, "one discontinuity")
				found = true
				require.Equal(t, restartTS, got.frames[i].ts)
			}
		}
		require.True(t, found)
	})
}

func ascBits(fields ...[2]int) []byte {
	var w bitWriter
	for _, f := range fields {
		w.write(uint32(f[0]), f[1])
	}
	return w.bytes()
}

var ascCases = []struct {
	name string
	asc  []byte
	err  error
	conf AudioConfig
}{
	{name: "LC 44.1k stereo", asc: []byte{0x12, 0x10}, conf: AudioConfig{ObjectType: 2, SampleRate: 44100, Channels: 2}},
	{name: "LC 48k mono", asc: []byte{0x11, 0x88}, conf: AudioConfig{ObjectType: 2, SampleRate: 48000, Channels: 1}},
	{name: "LC 8k mono", asc: AudioConfig{ObjectType: 2, SampleRate: 8000, Channels: 1}.Marshal(), conf: AudioConfig{ObjectType: 2, SampleRate: 8000, Channels: 1}},
	{name: "LC 96k stereo", asc: AudioConfig{ObjectType: 2, SampleRate: 96000, Channels: 2}.Marshal(), conf: AudioConfig{ObjectType: 2, SampleRate: 96000, Channels: 2}},
	{name: "HE-AAC explicit", asc: ascBits([2]int{5, 5}, [2]int{6, 4}, [2]int{2, 4}, [2]int{3, 4}, [2]int{2, 5}, [2]int{0, 3}), err: ErrUnsupported},
	{name: "HE-AACv2 explicit", asc: ascBits([2]int{29, 5}, [2]int{6, 4}, [2]int{1, 4}, [2]int{3, 4}, [2]int{2, 5}, [2]int{0, 3}), err: ErrUnsupported},
	{name: "LC 5.1", asc: AudioConfig{ObjectType: 2, SampleRate: 48000, Channels: 6}.Marshal(), err: ErrUnsupported},
	{name: "LC PCE", asc: AudioConfig{ObjectType: 2, SampleRate: 48000, Channels: 0}.Marshal(), err: ErrUnsupported},
	{name: "AAC Main", asc: AudioConfig{ObjectType: 1, SampleRate: 48000, Channels: 2}.Marshal(), err: ErrUnsupported},
	{name: "escape object type", asc: AudioConfig{ObjectType: 42, SampleRate: 48000, Channels: 2}.Marshal(), err: ErrUnsupported},
	{name: "960 frames", asc: AudioConfig{ObjectType: 2, SampleRate: 48000, Channels: 2, FrameLength960: true}.Marshal(), err: ErrUnsupported},
	{name: "explicit rate", asc: AudioConfig{ObjectType: 2, SampleRate: 44000, Channels: 2}.Marshal(), err: ErrUnsupported},
	{name: "reserved rate index", asc: ascBits([2]int{2, 5}, [2]int{13, 4}, [2]int{2, 4}, [2]int{0, 3}), err: ErrInvalidConfig},
	{name: "one byte", asc: []byte{0x12}, err: ErrInvalidConfig},
	{name: "empty", asc: nil, err: ErrInvalidConfig},
	{name: "truncated GA config", asc: ascBits([2]int{2, 5}, [2]int{4, 4}, [2]int{2, 4})[:2], conf: AudioConfig{ObjectType: 2, SampleRate: 44100, Channels: 2}},
}

func TestParseASC(t *testing.T) {
	for _, tc := range ascCases {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := ParseASC(tc.asc)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				t.Logf("%v", err)
				_, err = NewAACToOpus(tc.asc, Config{})
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.conf, conf)
			tr, err := NewAACToOpus(tc.asc, Config{})
			require.NoError(t, err)
			require.Equal(t, tc.conf.Channels, tr.Channels())
		})
	}
}

func TestParseADTSHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		err  error
	}{
		{name: "short", b: []byte{0xff, 0xf1, 0x50}, err: ErrInvalidConfig},
		{name: "no sync", b: []byte{0x00, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc}, err: ErrInvalidConfig},
		{name: "bad rate", b: []byte{0xff, 0xf1, 0x7c, 0x80, 0x02, 0x1f, 0xfc}, err: ErrInvalidConfig},
		{name: "short frame length", b: []byte{0xff, 0xf1, 0x50, 0x80, 0x00, 0x1f, 0xfc}, err: ErrInvalidConfig},
		{name: "44.1k stereo", b: []byte{0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseADTSHeader(tc.b)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, AudioConfig{ObjectType: 2, SampleRate: 44100, Channels: 2}, h.Config)
			require.Equal(t, 7, h.HeaderLen)
			require.Equal(t, 16, h.FrameLen)
			require.Equal(t, []byte{0x12, 0x10}, h.Config.Marshal())
		})
	}
}

func TestAACToOpusNoAllocs(t *testing.T) {
	src := ffmpegAAC(t, 440, 44100, 2, 1)
	tr, err := NewAACToOpus(src.asc, Config{})
	require.NoError(t, err)
	emit := func([]byte, uint32) {}
	i := 0
	step := func() {
		require.NoError(t, tr.Transcode(src.aus[i%len(src.aus)], uint32(i*AACFrameSamples), emit))
		i++
	}
	for range 2 * len(src.aus) { // warm up: buffers grow to the largest AU and encoder scratch sizes
		step()
	}
	require.Zero(t, testing.AllocsPerRun(len(src.aus), step))
}

// BenchmarkAACToOpus measures the whole transcoder (decode, resample, encode) on stereo 44.1 kHz
// AAC and reports milliseconds of CPU per second of audio (docs/benchmarks.md "AAC to Opus").
func BenchmarkAACToOpus(b *testing.B) {
	for _, tc := range []struct {
		name       string
		rate, chs  int
		complexity int
	}{
		{name: "44.1k-stereo-default", rate: 44100, chs: 2},
		{name: "44.1k-stereo-c10", rate: 44100, chs: 2, complexity: 10},
		{name: "44.1k-stereo-c0", rate: 44100, chs: 2, complexity: -1},
		{name: "48k-mono-default", rate: 48000, chs: 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			src := ffmpegAAC(b, 440, tc.rate, tc.chs, 5)
			tr, err := NewAACToOpus(src.asc, Config{OpusComplexity: tc.complexity})
			require.NoError(b, err)
			emit := func([]byte, uint32) {}
			i := 0
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				if err := tr.Transcode(src.aus[i%len(src.aus)], uint32(i*AACFrameSamples), emit); err != nil {
					b.Fatal(err)
				}
				i++
			}
			audioSec := float64(i*AACFrameSamples) / float64(tc.rate)
			// Wall time per audio second (the benchmark's own clock), and the process's CPU time
			// (getrusage) per audio second, which a loaded machine does not inflate.
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/audioSec, "ms-wall/audio-s")
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/audioSec, "ms-cpu/audio-s")
		})
	}
}

// processCPU is the user+system CPU time of this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
