//go:build e2e

package test

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"
	"github.com/thesyncim/gopus"

	"github.com/estuary-media/estuary/test/harness"
)

// audioViewer is a pion WHEP client that keeps every RTP packet (with its arrival time) and every
// RTCP sender report it receives, by track kind ("video", "audio").
type audioViewer struct {
	pc        *webrtc.PeerConnection
	connected time.Time
	mu        sync.Mutex
	pkts      map[string][]audioRecv
	srs       map[string][]audioSR
	mime      map[string]string
	fmtp      map[string]string
}

type audioRecv struct {
	at  time.Time
	pkt *rtp.Packet
}

type audioSR struct {
	at time.Time
	sr rtcp.SenderReport
}

// audioWHEP plays key from node over WHEP (retrying until the stream exists) and returns once the
// PeerConnection is connected.
func audioWHEP(t *testing.T, node *harness.Node, key string) *audioViewer {
	t.Helper()
	v := &audioViewer{pkts: map[string][]audioRecv{}, srs: map[string][]audioSR{}, mime: map[string]string{}, fmtp: map[string]string{}}
	v.pc, v.connected = whepDial(t, node, key, v.read)
	return v
}

func (v *audioViewer) read(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	kind := tr.Kind().String()
	v.mu.Lock()
	v.mime[kind] = tr.Codec().MimeType
	v.fmtp[kind] = tr.Codec().SDPFmtpLine
	v.mu.Unlock()
	go func() {
		for {
			pkts, _, err := recv.ReadRTCP()
			if err != nil {
				return
			}
			now := time.Now()
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok {
					v.mu.Lock()
					v.srs[kind] = append(v.srs[kind], audioSR{at: now, sr: *sr})
					v.mu.Unlock()
				}
			}
		}
	}()
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		v.mu.Lock()
		v.pkts[kind] = append(v.pkts[kind], audioRecv{at: time.Now(), pkt: p})
		v.mu.Unlock()
	}
}

func (v *audioViewer) packets(kind string) []audioRecv {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.pkts[kind])
}

func (v *audioViewer) senderReports(kind string) []audioSR {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.srs[kind])
}

// audioDecodeOpus decodes the Opus packets (in arrival order; a gap in sequence numbers fails the
// test) with gopus into interleaved float32 at 48 kHz, and returns the samples and the RTP timestamp
// of the first one.
func audioDecodeOpus(t *testing.T, pkts []audioRecv, channels int) ([]float32, uint32) {
	t.Helper()
	require.NotEmpty(t, pkts)
	dec, err := gopus.NewDecoder(gopus.DefaultDecoderConfig(48000, channels))
	require.NoError(t, err)
	buf := make([]float32, 5760*channels)
	var pcm []float32
	for i, p := range pkts {
		if i > 0 {
			prev := pkts[i-1].pkt
			require.Equal(t, prev.SequenceNumber+1, p.pkt.SequenceNumber, "Opus packet %d: sequence gap", i)
			require.Equal(t, uint32(960), p.pkt.Timestamp-prev.Timestamp, "Opus packet %d: timestamp step", i)
		}
		n, err := dec.Decode(p.pkt.Payload, buf)
		require.NoError(t, err, "Opus packet %d", i)
		require.Equal(t, 960, n, "Opus packet %d: samples", i)
		pcm = append(pcm, buf[:n*channels]...)
	}
	return pcm, pkts[0].pkt.Timestamp
}

// audioGoertzel is the power of channel ch of x (interleaved) at freq.
func audioGoertzel(x []float32, channels, ch int, rate, freq float64) float64 {
	c := 2 * math.Cos(2*math.Pi*freq/rate)
	var s1, s2 float64
	for i := ch; i < len(x); i += channels {
		s1, s2 = float64(x[i])+c*s1-s2, s1
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

// audioDominant scans 50 Hz..4 kHz in 2 Hz steps over 0.5 s, then refines to 0.02 Hz over up to 5 s.
func audioDominant(x []float32, channels, ch int) float64 {
	short := min(len(x), 24000*channels)
	long := min(len(x), 240000*channels)
	best, bestP := 0.0, -1.0
	for f := 50.0; f <= 4000; f += 2 {
		if p := audioGoertzel(x[:short], channels, ch, 48000, f); p > bestP {
			best, bestP = f, p
		}
	}
	center := best
	bestP = -1
	for f := center - 2; f <= center+2; f += 0.02 {
		if p := audioGoertzel(x[:long], channels, ch, 48000, f); p > bestP {
			best, bestP = f, p
		}
	}
	return best
}

// audioContinuity fits a sine of freq to each 10 ms window of channel ch and returns: the largest
// phase step between the 100 ms before and the 100 ms after any window boundary (radians; the
// average over 10 windows on each side keeps coding noise out), the largest residual sample of a
// window's fit relative to the median amplitude, and the smallest window amplitude relative to the
// median: a slip, a click or a gap shows in one of them.
func audioContinuity(x []float32, channels, ch int, freq float64) (phaseStep, residual, minAmp float64) {
	const win, avg = 480, 10
	n := len(x) / channels
	var ps []complex128 // unit phasor of each window
	var amps, peaks []float64
	for s := 0; s+win <= n; s += win {
		var ss, cc, sc, sx, cx float64
		for i := s; i < s+win; i++ {
			ph := 2 * math.Pi * freq * float64(i) / 48000
			sn, cs := math.Sin(ph), math.Cos(ph)
			v := float64(x[i*channels+ch])
			ss, cc, sc, sx, cx = ss+sn*sn, cc+cs*cs, sc+sn*cs, sx+sn*v, cx+cs*v
		}
		det := ss*cc - sc*sc
		a, b := (sx*cc-cx*sc)/det, (cx*ss-sx*sc)/det
		var peak float64
		for i := s; i < s+win; i++ {
			ph := 2 * math.Pi * freq * float64(i) / 48000
			peak = max(peak, math.Abs(float64(x[i*channels+ch])-(a*math.Sin(ph)+b*math.Cos(ph))))
		}
		amp := math.Hypot(a, b)
		ps = append(ps, complex(a/amp, b/amp))
		amps = append(amps, amp)
		peaks = append(peaks, peak)
	}
	sorted := slices.Sorted(slices.Values(amps))
	med := sorted[len(sorted)/2]
	minAmp = math.Inf(1)
	for i := range amps {
		residual = max(residual, peaks[i]/med)
		minAmp = min(minAmp, amps[i]/med)
	}
	for i := avg; i+avg <= len(ps); i++ {
		var before, after complex128
		for j := range avg {
			before += ps[i-1-j]
			after += ps[i+j]
		}
		d := after / before
		phaseStep = max(phaseStep, math.Abs(math.Atan2(imag(d), real(d))))
	}
	return phaseStep, residual, minAmp
}

// audioSine makes a mono or stereo block of a sine (for checking the analysis itself).
func audioSine(n, channels int, freq float64) []float32 {
	x := make([]float32, n*channels)
	for i := range n {
		v := float32(0.25 * math.Sin(2*math.Pi*freq*float64(i)/48000))
		for c := range channels {
			x[i*channels+c] = v
		}
	}
	return x
}

// Limits of the continuity check (per 10 ms window).
const (
	audioMaxPhaseStep = 0.1  // radians between the 100 ms before and after a window boundary (1.7 samples)
	audioMaxResidual  = 0.35 // largest fit residual sample / median amplitude
	audioMinAmp       = 0.7  // smallest window amplitude / median
	audioSkip         = 0.25 // seconds left out at each end (decoder start, the push ending)
)

// TestAudioE2EAnalysis checks the analysis the e2e tests rely on: it finds another tone, and it sees
// a 2 ms and a 3-sample slip, a click and a 20 ms gap.
func TestAudioE2EAnalysis(t *testing.T) {
	x := audioSine(96000, 1, 523.3)
	require.InDelta(t, 523.3, audioDominant(x, 1, 0), 0.1)
	ph, res, amp := audioContinuity(x, 1, 0, 523.3)
	require.Less(t, ph, audioMaxPhaseStep)
	require.Less(t, res, audioMaxResidual)
	require.Greater(t, amp, audioMinAmp)
	slip := slices.Concat(x[:48000], x[48096:])
	ph, _, _ = audioContinuity(slip, 1, 0, 523.3)
	require.Greater(t, ph, audioMaxPhaseStep, "a 96-sample slip")
	slip = slices.Concat(x[:48000], x[48003:])
	ph, _, _ = audioContinuity(slip, 1, 0, 523.3)
	require.Greater(t, ph, audioMaxPhaseStep, "a 3-sample slip")
	click := slices.Clone(x)
	click[30000] += 0.5
	_, res, _ = audioContinuity(click, 1, 0, 523.3)
	require.Greater(t, res, audioMaxResidual, "a click")
	gap := slices.Clone(x)
	clear(gap[24000:24960])
	_, _, amp = audioContinuity(gap, 1, 0, 523.3)
	require.Less(t, amp, audioMinAmp, "a 20 ms gap")
}

// TestAudioE2ERTMPToOpus is issue 5's sound check through the binary: ffmpeg pushes H.264 and a 440 Hz
// sine as AAC (44.1 kHz stereo for 20 s; 48 kHz mono, 32 kHz stereo and 22.05 kHz mono for 6 s, all at
// once on one node); a pion WHEP viewer decodes the Opus with gopus and finds 440 Hz ± 5 Hz, the decoded
// duration within 2% of the wall time it took to arrive, and a continuous tone (no slip, click or gap).
func TestAudioE2ERTMPToOpus(t *testing.T) {
	node := harness.StartNode(t, harness.NodeOptions{})
	cases := []struct {
		name     string
		rate     int
		channels int
		listen   time.Duration
	}{
		{name: "44.1k stereo", rate: 44100, channels: 2, listen: 20 * time.Second},
		{name: "48k mono", rate: 48000, channels: 1, listen: 6 * time.Second},
		{name: "32k stereo", rate: 32000, channels: 2, listen: 6 * time.Second},
		{name: "22.05k mono", rate: 22050, channels: 1, listen: 6 * time.Second},
	}
	t.Run("rates", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				key := fmt.Sprintf("live/tone-%d-%d", c.rate, c.channels)
				ff := harness.FFmpegPush(t, node.RTMPURL(key), harness.FFmpegArgs{
					Duration: c.listen + 6*time.Second, Preset: "ultrafast", AudioRate: c.rate, AudioChannels: c.channels,
					Extra: []string{"-b:a", fmt.Sprint(64000 * c.channels)}})
				v := audioWHEP(t, node, key)
				time.Sleep(c.listen + 500*time.Millisecond)
				_ = v.pc.Close()
				select {
				case <-ff.Done():
					t.Fatalf("ffmpeg ended before the viewer had listened: %s", ff.Stderr())
				default:
				}
				ff.Stop()

				v.mu.Lock()
				mime, fmtp := v.mime["audio"], v.fmtp["audio"]
				v.mu.Unlock()
				require.Equal(t, webrtc.MimeTypeOpus, mime)
				// The answer says stereo=1 exactly when the source is stereo (browsers size their decoder from it).
				stereoSDP := strings.Contains(v.pc.RemoteDescription().SDP, "stereo=1")
				require.Equal(t, c.channels == 2, stereoSDP, "stereo=1 in the WHEP answer for a %d-channel source", c.channels)
				// The listening window: packets that arrived in the first c.listen after connecting.
				var pkts []audioRecv
				for _, p := range v.packets("audio") {
					if p.at.Sub(v.connected) <= c.listen {
						pkts = append(pkts, p)
					}
				}
				require.Greater(t, len(pkts), int(c.listen/(20*time.Millisecond))*9/10, "Opus packets in %v", c.listen)
				pcm, _ := audioDecodeOpus(t, pkts, c.channels)
				decoded := float64(len(pcm)/c.channels) / 48000
				wall := pkts[len(pkts)-1].at.Sub(pkts[0].at).Seconds() + 0.02
				durErr := (decoded - wall) / wall
				t.Logf("%s: %d Opus packets (offer fmtp %q, stereo=1 in the answer: %v); decoded %.3f s over %.3f s of wall time: %+.2f%%",
					c.name, len(pkts), fmtp, stereoSDP, decoded, wall, 100*durErr)
				require.Less(t, math.Abs(durErr), 0.02, "decoded duration against wall time")

				skip := int(audioSkip*48000) * c.channels
				body := pcm[skip : len(pcm)-skip]
				for ch := range c.channels {
					f := audioDominant(body, c.channels, ch)
					ph, res, amp := audioContinuity(body, c.channels, ch, f)
					t.Logf("%s ch%d: dominant %.2f Hz; over %.1f s in 10 ms windows: worst phase step %.3f rad, worst residual peak %.1f dB, smallest amplitude %.2f of median",
						c.name, ch, f, float64(len(body)/c.channels)/48000, ph, 20*math.Log10(res), amp)
					require.InDelta(t, 440, f, 5, "dominant frequency")
					require.Less(t, ph, audioMaxPhaseStep, "tone phase continuous")
					require.Less(t, res, audioMaxResidual, "no click")
					require.Greater(t, amp, audioMinAmp, "no gap")
				}
			})
		}
	})
}

// TestAudioE2EBrowserRTMPAAC: ffmpeg pushes H.264 and a 440 Hz sine as AAC 44.1 kHz stereo over
// RTMP; Chromium plays the stream through /play.html (WHEP, Opus made by the transcoder) and a WebAudio
// analyser on the received stream hears 440 Hz.
func TestAudioE2EBrowserRTMPAAC(t *testing.T) {
	b := harness.NewBrowser(t, harness.BrowserOptions{})
	node := harness.StartNode(t, harness.NodeOptions{})
	key := "live/aac-browser"
	ff := harness.FFmpegPush(t, node.RTMPURL(key), harness.FFmpegArgs{Duration: 20 * time.Second, Preset: "ultrafast"})
	page := b.NewPage()
	defer page.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, err := node.Get(t.Context(), "/api/v1/streams/"+key)
		require.NoError(t, err)
		if code == http.StatusOK {
			break
		}
		require.True(t, time.Now().Before(deadline), "stream not live: %s", ff.Stderr())
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, page.Open(node.HTTPURL+"/play.html?stream="+key+"&autoplay=1"))
	took, err := page.WaitFor(`window.estuary.session && window.estuary.stats && window.estuary.stats.inbound.audio && window.estuary.stats.inbound.audio.packets > 50`, 15*time.Second)
	require.NoError(t, err, "console: %v", page.Console())
	st, err := page.Stats("window.estuary.session.pc")
	require.NoError(t, err)
	require.Equal(t, "audio/opus", st.InAudio.Codec)
	tone, err := page.AudioTone("window.estuary.session.stream", 2*time.Second)
	require.NoError(t, err)
	t.Logf("Chromium: %d Opus packets (%d lost) %v after Play; analyser: %.1f Hz at %.1f dBFS (signal in %d of %d reads after %.0f ms); video %d frames decoded",
		st.InAudio.Packets, st.InAudio.PacketsLost, took.Round(time.Millisecond), tone.FrequencyHz, tone.LevelDBFS, tone.Frames, tone.Reads, tone.WarmupMs, st.InVideo.FramesDecoded)
	require.InDelta(t, 440, tone.FrequencyHz, 10, "dominant frequency heard")
	require.GreaterOrEqual(t, tone.Frames, 3, "the received audio is not silence")
	require.Greater(t, tone.LevelDBFS, -35.0, "the tone is loud enough")
	require.NoError(t, page.Eval(`window.estuary.stop()`, nil))
	ff.Stop()
}
