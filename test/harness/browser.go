//go:build e2e

package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// BrowserExecPath is Debian's Chromium, installed by scripts/deps.sh.
const BrowserExecPath = "/usr/bin/chromium"

// BrowserOptions configures NewBrowser. The zero value is valid.
type BrowserOptions struct {
	// FakeAudioFile is a WAV file the fake microphone plays in a loop
	// (--use-file-for-fake-audio-capture); empty means Chromium's own beeps.
	FakeAudioFile string
	// StartTimeout bounds the browser start (default 30 s).
	StartTimeout time.Duration
}

// Browser is one headless Chromium process driven over the DevTools protocol (chromedp), with the
// flags of DESIGN.md. Create it with NewBrowser; the test's Cleanup stops it and verifies that no
// process of it is left.
type Browser struct {
	t          testing.TB
	allocCtx   context.Context
	allocStop  context.CancelFunc
	ctx        context.Context // the browser's root context (first tab)
	stop       context.CancelFunc
	dataDir    string
	pid        int
	closeOnce  sync.Once
	pagesMu    sync.Mutex
	pages      []*BrowserPage
	outDirOnce sync.Once
	outDir     string
}

// BrowserFlags returns the command-line flags the harness starts Chromium with (besides
// --user-data-dir and the DevTools pipe that chromedp adds).
func BrowserFlags(opts BrowserOptions) []string {
	flags := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
		"--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
	}
	if opts.FakeAudioFile != "" {
		flags = append(flags, "--use-file-for-fake-audio-capture="+opts.FakeAudioFile)
	}
	return flags
}

// NewBrowser starts headless Chromium (/usr/bin/chromium) with a fresh user data directory. The test
// fails at once if Chromium is missing or does not start.
func NewBrowser(t testing.TB, opts BrowserOptions) *Browser {
	t.Helper()
	if _, err := os.Stat(BrowserExecPath); err != nil {
		t.Fatalf("browser: %s is missing (scripts/deps.sh installs Debian's chromium): %v", BrowserExecPath, err)
	}
	if opts.FakeAudioFile != "" {
		if _, err := os.Stat(opts.FakeAudioFile); err != nil {
			t.Fatalf("browser: fake audio file: %v", err)
		}
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	dataDir := t.TempDir()

	// Exactly BrowserFlags, turned into chromedp options (no chromedp defaults).
	allocOpts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(BrowserExecPath),
		chromedp.UserDataDir(dataDir),
	}
	for _, f := range BrowserFlags(opts) {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if hasValue {
			allocOpts = append(allocOpts, chromedp.Flag(name, value))
		} else {
			allocOpts = append(allocOpts, chromedp.Flag(name, true))
		}
	}
	allocCtx, allocStop := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	ctx, stop := chromedp.NewContext(allocCtx, chromedp.WithLogf(func(string, ...any) {}))
	b := &Browser{t: t, allocCtx: allocCtx, allocStop: allocStop, ctx: ctx, stop: stop, dataDir: dataDir}
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(b.Close)

	startCtx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx) }() // starts the browser; bound to ctx, not startCtx
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("browser: start %s: %v", BrowserExecPath, err)
		}
	case <-startCtx.Done():
		t.Fatalf("browser: %s did not start within %v", BrowserExecPath, opts.StartTimeout)
	}
	if c := chromedp.FromContext(ctx); c != nil && c.Browser != nil && c.Browser.Process() != nil {
		b.pid = c.Browser.Process().Pid
	}
	return b
}

// PID is the browser's main process id (0 if unknown).
func (b *Browser) PID() int { return b.pid }

// Close stops Chromium (cancelling the chromedp contexts kills it) and fails the test if any process
// started with this browser's user data directory is still alive afterwards. Safe to call twice.
func (b *Browser) Close() {
	b.closeOnce.Do(func() {
		b.pagesMu.Lock()
		pages := b.pages
		b.pagesMu.Unlock()
		for _, p := range pages {
			p.close()
		}
		b.stop()
		b.allocStop() // waits for the process to exit
		deadline := time.Now().Add(3 * time.Second)
		var left []int
		for {
			left = browserProcesses(b.dataDir)
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(left) > 0 {
			// Kill exactly those processes (found by our unique --user-data-dir), then report.
			for _, pid := range left {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
			b.t.Errorf("browser: %d Chromium process(es) still running after stop: %v", len(left), left)
		}
	})
}

// browserProcesses lists the PIDs whose command line has --user-data-dir=dir.
func browserProcesses(dir string) []int {
	want := "--user-data-dir=" + dir
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(cmdline), "\x00") {
			if arg == want {
				// A zombie is gone for our purposes once its parent reaped it; count it anyway only if
				// it is not a zombie.
				if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && browserIsZombie(string(stat)) {
					break
				}
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func browserIsZombie(stat string) bool {
	i := strings.LastIndexByte(stat, ')')
	return i >= 0 && len(stat) > i+2 && stat[i+2] == 'Z'
}

// OutDir is the test's output folder, test/out/<TestName>/ (relative to the test package's directory,
// gitignored), created on first use.
func (b *Browser) OutDir() string {
	b.outDirOnce.Do(func() { b.outDir = BrowserOutDir(b.t) })
	return b.outDir
}

var browserNameClean = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// BrowserOutDir returns (and creates) out/<TestName>/ under the current directory, which for tests in
// test/ is test/out/<TestName>/.
func BrowserOutDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("out", browserNameClean.ReplaceAllString(t.Name(), "_")))
	if err != nil {
		t.Fatalf("browser: out dir: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("browser: out dir: %v", err)
	}
	return dir
}

// BrowserToneWAV writes a mono 48 kHz 16-bit WAV sine of freq Hz (seconds long) into dir with
// ffmpeg, for --use-file-for-fake-audio-capture. Chromium loops it.
func BrowserToneWAV(t testing.TB, dir string, freq int, seconds int) string {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("browser: ffmpeg is missing (scripts/deps.sh installs it): %v", err)
	}
	out := filepath.Join(dir, fmt.Sprintf("tone-%dhz.wav", freq))
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=48000:duration=%d", freq, seconds),
		"-ac", "1", "-ar", "48000", "-c:a", "pcm_s16le", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("browser: ffmpeg tone: %v: %s", err, b)
	}
	return out
}

// BrowserPage is one tab.
type BrowserPage struct {
	b      *Browser
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	logs   []string // console messages and uncaught exceptions, for failure reports
}

// NewPage opens a new tab (about:blank) and collects its console output.
func (b *Browser) NewPage() *BrowserPage {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	p := &BrowserPage{b: b, ctx: ctx, cancel: cancel}
	// Creates the tab, with a desktop-sized viewport so screenshots show what a person sees.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		cancel()
		b.t.Fatalf("browser: new tab: %v", err)
	}
	if err := chromedp.Listen(ctx, p.onEvent); err != nil {
		cancel()
		b.t.Fatalf("browser: listen: %v", err)
	}
	b.pagesMu.Lock()
	b.pages = append(b.pages, p)
	b.pagesMu.Unlock()
	return p
}

func (p *BrowserPage) close() { p.cancel() }

// Close closes the tab (its PeerConnections and media go with it). Safe to call twice; the browser's
// Close closes every tab left open.
func (p *BrowserPage) Close() { p.cancel() }

func (p *BrowserPage) onEvent(ev any) {
	var line string
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		parts := make([]string, 0, len(e.Args))
		for _, a := range e.Args {
			parts = append(parts, browserRemoteText(a))
		}
		line = fmt.Sprintf("console.%s: %s", e.Type, strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		if d == nil {
			return
		}
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		line = fmt.Sprintf("exception: %s (%s:%d)", msg, d.URL, d.LineNumber)
	default:
		return
	}
	p.mu.Lock()
	if len(p.logs) < 500 {
		p.logs = append(p.logs, line)
	}
	p.mu.Unlock()
}

func browserRemoteText(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	if len(o.Value) > 0 {
		var s string
		if json.Unmarshal(o.Value, &s) == nil {
			return s
		}
		return string(o.Value)
	}
	if o.UnserializableValue != "" {
		return string(o.UnserializableValue)
	}
	return o.Description
}

// Console returns the page's console messages and uncaught exceptions so far.
func (p *BrowserPage) Console() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.logs...)
}

// Open navigates the tab to url and waits for the load event.
func (p *BrowserPage) Open(url string) error {
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return fmt.Errorf("open %s: %w", url, err)
	}
	return nil
}

// Eval evaluates a JavaScript expression (promises are awaited; it runs as if the user clicked, so
// AudioContext and play() are allowed) and decodes its JSON value into out (nil to ignore it).
func (p *BrowserPage) Eval(expr string, out any) error {
	return p.EvalTimeout(expr, out, 30*time.Second)
}

// EvalTimeout is Eval with its own deadline.
func (p *BrowserPage) EvalTimeout(expr string, out any, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	yes := true
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise,
		func(ep *runtime.EvaluateParams) { ep.UserGesture = &yes }))
	if err != nil {
		return fmt.Errorf("eval %s: %w", browserShort(expr), err)
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("eval %s: decode %s: %w", browserShort(expr), browserShort(string(raw)), err)
	}
	return nil
}

func browserShort(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}

// ErrBrowserTimeout is returned by WaitFor when the expression did not become true in time.
var ErrBrowserTimeout = errors.New("browser: condition not met before the deadline")

// WaitFor polls the JavaScript expression every 100 ms until it is truthy or timeout passes, and
// returns how long that took. On timeout the error carries the page's window.estuary state/error
// (when the page has that hook) and its last console lines.
func (p *BrowserPage) WaitFor(expr string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	var lastErr error
	for {
		var ok bool
		err := p.EvalTimeout("!!("+expr+")", &ok, 5*time.Second)
		if err == nil && ok {
			return time.Since(start), nil
		}
		if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-p.ctx.Done():
			return time.Since(start), p.ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	var hook string
	_ = p.EvalTimeout(`JSON.stringify(window.estuary ? {state: window.estuary.state, error: window.estuary.error} : null)`, &hook, 2*time.Second)
	logs := p.Console()
	if len(logs) > 8 {
		logs = logs[len(logs)-8:]
	}
	return time.Since(start), fmt.Errorf("%w: %s after %v (page hook %s, last eval error %v, console %q)",
		ErrBrowserTimeout, browserShort(expr), timeout, hook, lastErr, logs)
}

// Screenshot saves a PNG of the tab's viewport as <OutDir>/<name>.png and returns its path.
func (p *BrowserPage) Screenshot(name string) (string, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return "", fmt.Errorf("screenshot: %w", err)
	}
	path := filepath.Join(p.b.OutDir(), browserNameClean.ReplaceAllString(name, "_")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "", fmt.Errorf("screenshot: %w", err)
	}
	return path, nil
}

// BrowserRTP is one direction and kind of RTP from getStats() (inbound-rtp or outbound-rtp).
type BrowserRTP struct {
	Codec               string  `json:"codec"`
	Packets             int64   `json:"packets"`
	Bytes               int64   `json:"bytes"`
	PacketsLost         int64   `json:"packetsLost"`
	FramesDecoded       int64   `json:"framesDecoded"`
	FramesEncoded       int64   `json:"framesEncoded"`
	FramesSent          int64   `json:"framesSent"`
	FramesDropped       int64   `json:"framesDropped"`
	FPS                 float64 `json:"fps"`
	Width               int     `json:"width"`
	Height              int     `json:"height"`
	JitterBufferDelayMs float64 `json:"jitterBufferDelayMs"`
	NACKs               int64   `json:"nackCount"`
	PLIs                int64   `json:"pliCount"`
	TotalSamples        int64   `json:"totalSamplesReceived"`
}

// BrowserStats summarises RTCPeerConnection.getStats().
type BrowserStats struct {
	InVideo, InAudio, OutVideo, OutAudio BrowserRTP
	ConnectionState                      string  `json:"connectionState"`
	LocalCandidateType                   string  `json:"localCandidateType"`
	RemoteCandidateType                  string  `json:"remoteCandidateType"`
	RTTMs                                float64 `json:"rttMs"`
}

const browserStatsJS = `(async (pc) => {
  if (!pc) throw new Error('no RTCPeerConnection');
  const r = await pc.getStats();
  const byId = new Map(); r.forEach((s) => byId.set(s.id, s));
  const out = {InVideo: {}, InAudio: {}, OutVideo: {}, OutAudio: {}, connectionState: pc.connectionState};
  r.forEach((s) => {
    if (s.type !== 'inbound-rtp' && s.type !== 'outbound-rtp') return;
    const key = (s.type === 'inbound-rtp' ? 'In' : 'Out') + (s.kind === 'video' ? 'Video' : 'Audio');
    const c = s.codecId && byId.get(s.codecId);
    const e = {
      codec: c ? c.mimeType : '', packets: s.packetsReceived ?? s.packetsSent ?? 0,
      bytes: s.bytesReceived ?? s.bytesSent ?? 0, packetsLost: s.packetsLost || 0,
      framesDecoded: s.framesDecoded || 0, framesEncoded: s.framesEncoded || 0, framesSent: s.framesSent || 0,
      framesDropped: s.framesDropped || 0, fps: s.framesPerSecond || 0, width: s.frameWidth || 0, height: s.frameHeight || 0,
      jitterBufferDelayMs: s.jitterBufferEmittedCount ? 1000 * s.jitterBufferDelay / s.jitterBufferEmittedCount : 0,
      nackCount: s.nackCount || 0, pliCount: s.pliCount || 0, totalSamplesReceived: s.totalSamplesReceived || 0,
    };
    if (!out[key].bytes || e.bytes > out[key].bytes) out[key] = e;
  });
  r.forEach((s) => {
    if (s.type !== 'candidate-pair' || !s.nominated || s.state !== 'succeeded') return;
    const l = byId.get(s.localCandidateId), rm = byId.get(s.remoteCandidateId);
    out.localCandidateType = l ? l.candidateType : '';
    out.remoteCandidateType = rm ? rm.candidateType : '';
    out.rttMs = 1000 * (s.currentRoundTripTime || 0);
  });
  return out;
})(%s)`

// Stats reads getStats() of the RTCPeerConnection that pcExpr evaluates to
// (e.g. "window.estuary.session.pc").
func (p *BrowserPage) Stats(pcExpr string) (BrowserStats, error) {
	var s BrowserStats
	err := p.Eval(fmt.Sprintf(browserStatsJS, pcExpr), &s)
	return s, err
}

// BrowserTone is what a WebAudio AnalyserNode heard on a track.
type BrowserTone struct {
	FrequencyHz float64 `json:"frequency"` // dominant frequency (parabolic interpolation between FFT bins)
	LevelDBFS   float64 `json:"levelDb"`   // RMS level while sounding (reads with signal), dBFS; -200 for silence
	PeakDB      float64 `json:"peakDb"`    // level of the dominant bin, dB
	SampleRate  float64 `json:"sampleRate"`
	Frames      int     `json:"frames"`   // analyser reads (every 100 ms) that had signal
	Reads       int     `json:"reads"`    // analyser reads in all
	WarmupMs    float64 `json:"warmupMs"` // time until the analyser first saw signal (at most 5 s)
}

// The analyser reads zeros unless the remote stream also plays in a media element (DESIGN.md), so a
// muted <audio> plays it during the measurement.
const browserToneJS = `(async (stream, ms) => {
  if (!stream || !stream.getAudioTracks || stream.getAudioTracks().length === 0) throw new Error('no audio track in the stream');
  const el = document.createElement('audio');
  el.muted = true; el.autoplay = true; el.srcObject = stream; el.style.display = 'none';
  document.body.appendChild(el);
  el.play().catch(() => {});
  const ctx = new AudioContext();
  await ctx.resume();
  const src = ctx.createMediaStreamSource(new MediaStream(stream.getAudioTracks()));
  const an = ctx.createAnalyser();
  an.fftSize = 8192; an.smoothingTimeConstant = 0;
  const sink = ctx.createGain(); sink.gain.value = 0;
  src.connect(an); an.connect(sink); sink.connect(ctx.destination);
  const bins = new Float32Array(an.frequencyBinCount), power = new Float64Array(an.frequencyBinCount);
  const time = new Float32Array(an.fftSize);
  let sumSq = 0, n = 0, frames = 0, reads = 0;
  // Warm-up: the element and the graph take a moment to start; wait (up to 5 s) for signal first.
  const t0 = performance.now();
  while (performance.now() - t0 < 5000) {
    await new Promise((r) => setTimeout(r, 50));
    an.getFloatTimeDomainData(time);
    if (time.some((v) => v !== 0)) break;
  }
  const warmupMs = performance.now() - t0;
  // At least ms and at least 10 reads (timers run late on a loaded machine), at most ms + 8 s.
  const end = performance.now() + ms, limit = end + 8000;
  while ((performance.now() < end || reads < 10) && performance.now() < limit) {
    await new Promise((r) => setTimeout(r, 100));
    an.getFloatTimeDomainData(time);
    let sq = 0; for (const v of time) sq += v * v;
    reads++;
    if (sq > 0) { frames++; sumSq += sq; n += time.length; }
    an.getFloatFrequencyData(bins);
    for (let i = 0; i < bins.length; i++) if (isFinite(bins[i])) power[i] += Math.pow(10, bins[i] / 10);
  }
  const hz = ctx.sampleRate / an.fftSize;
  let best = Math.ceil(20 / hz);
  for (let i = best; i < power.length - 1; i++) if (power[i] > power[best]) best = i;
  let f = best * hz;
  if (best > 0 && power[best] > 0) {
    const a = Math.log(power[best - 1] || 1e-30), b = Math.log(power[best]), c = Math.log(power[best + 1] || 1e-30);
    const d = a - 2 * b + c;
    if (d !== 0) f = (best + 0.5 * (a - c) / d) * hz;
  }
  const rms = n ? Math.sqrt(sumSq / n) : 0;
  const out = { frequency: f, levelDb: rms > 0 ? 20 * Math.log10(rms) : -200, peakDb: power[best] > 0 ? 10 * Math.log10(power[best] / Math.max(frames, 1)) : -200, sampleRate: ctx.sampleRate, frames, reads, warmupMs };
  await ctx.close();
  el.srcObject = null; el.remove();
  return out;
})(%s, %d)`

// AudioTone listens to the audio of the MediaStream that streamExpr evaluates to
// (e.g. "window.estuary.session.stream") for the given duration with a WebAudio AnalyserNode and
// returns its dominant frequency and loudness.
func (p *BrowserPage) AudioTone(streamExpr string, listen time.Duration) (BrowserTone, error) {
	var tone BrowserTone
	err := p.EvalTimeout(fmt.Sprintf(browserToneJS, streamExpr, listen.Milliseconds()), &tone, listen+15*time.Second)
	return tone, err
}
