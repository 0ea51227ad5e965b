package rtmp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

// ffmpegProc is an ffmpeg run by a test (test/harness is e2e-only, so package tests have their own).
type ffmpegProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startFFmpeg runs ffmpeg with args; Cleanup kills it by PID.
func startFFmpeg(t *testing.T, args ...string) *ffmpegProc {
	t.Helper()
	path, err := exec.LookPath("ffmpeg")
	require.NoError(t, err, "ffmpeg is required (scripts/deps.sh)")
	p := &ffmpegProc{stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(path, append([]string{"-hide_banner", "-nostdin", "-loglevel", "warning"}, args...)...)
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, p.cmd.Start())
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *ffmpegProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *ffmpegProc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.stop()
		t.Fatalf("ffmpeg did not end within %v; stderr:\n%s", timeout, p.stderr.String())
		return nil
	}
}

// pushArgs makes an ffmpeg RTMP push of testsrc (+ sine) for secs seconds.
func pushArgs(url string, size string, secs float64, videoOpts []string, audio bool) []string {
	args := []string{"-re", "-f", "lavfi", "-i", "testsrc=size=" + size + ":rate=25"}
	if audio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100")
	}
	// veryfast keeps B-frames and lets ffmpeg hold real time on a loaded 2-core machine.
	args = append(args, "-t", fmt.Sprint(secs), "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "veryfast")
	args = append(args, videoOpts...)
	if audio {
		args = append(args, "-c:a", "aac")
	} else {
		args = append(args, "-an")
	}
	return append(args, "-f", "flv", url)
}

// probeCount decodes a raw stream of the given ffmpeg format and returns its frame count; no errors.
func probeCount(t *testing.T, format string, data []byte) int {
	t.Helper()
	path, err := exec.LookPath("ffprobe")
	require.NoError(t, err, "ffprobe is required (scripts/deps.sh)")
	file := t.TempDir() + "/stream." + format
	require.NoError(t, writeFile(file, data))
	var out, stderr bytes.Buffer
	cmd := exec.Command(path, "-v", "error", "-f", format, "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	require.Empty(t, strings.TrimSpace(stderr.String()), "ffprobe reported decoding errors")
	var n int
	_, err = fmt.Sscan(strings.TrimSpace(out.String()), &n)
	require.NoError(t, err)
	return n
}

// ffprobeFrames decodes an Annex-B H.264 file and returns its frames' widths; stderr must stay empty.
func ffprobeFrames(t *testing.T, annexB []byte) (widths []int) {
	t.Helper()
	path, err := exec.LookPath("ffprobe")
	require.NoError(t, err, "ffprobe is required (scripts/deps.sh)")
	file := t.TempDir() + "/video.h264"
	require.NoError(t, writeFile(file, annexB))
	var out, stderr bytes.Buffer
	cmd := exec.Command(path, "-v", "error", "-f", "h264", "-show_entries", "frame=width", "-of", "csv=p=0", file)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	require.Empty(t, strings.TrimSpace(stderr.String()), "ffprobe reported decoding errors")
	for _, l := range strings.Fields(out.String()) {
		var w int
		_, _ = fmt.Sscan(strings.Trim(l, ","), &w)
		widths = append(widths, w)
	}
	return widths
}

// testSub is an sfu.Subscriber collecting a copy of every packet of the tracks it takes.
type testSub struct {
	id      string
	mu      sync.Mutex
	tracks  map[string]sfu.TrackInfo
	pkts    map[string][]recvPacket
	closed  chan struct{}
	once    sync.Once
	started time.Time
}

type recvPacket struct {
	at  time.Time
	pkt rtp.Packet
}

func newTestSub() *testSub {
	return &testSub{id: sfu.NewClientID(), tracks: map[string]sfu.TrackInfo{}, pkts: map[string][]recvPacket{}, closed: make(chan struct{}), started: time.Now()}
}

func (s *testSub) Info() sfu.ClientInfo {
	return sfu.ClientInfo{ID: s.id, Protocol: "test", Started: s.started}
}

func (s *testSub) Close() error { s.once.Do(func() { close(s.closed) }); return nil }

func (s *testSub) AddTrack(tr *sfu.Track) (sfu.TrackWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tracks[tr.ID()] = tr.Info()
	return &subWriter{s: s, id: tr.ID()}, nil
}

type subWriter struct {
	s  *testSub
	id string
}

func (w *subWriter) WriteRTP(p *rtp.Packet) error {
	q := rtp.Packet{Header: p.Header, Payload: append([]byte(nil), p.Payload...)}
	q.Header.CSRC = nil
	q.Header.Extensions = nil
	w.s.mu.Lock()
	w.s.pkts[w.id] = append(w.s.pkts[w.id], recvPacket{at: time.Now(), pkt: q})
	w.s.mu.Unlock()
	return nil
}

func (s *testSub) packets(id string) []recvPacket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recvPacket(nil), s.pkts[id]...)
}

func (s *testSub) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pkts[id])
}

// h264AnnexB depacketizes the packets (in order) with pion's H264 depacketizer.
func h264AnnexB(t *testing.T, pkts []recvPacket) []byte {
	t.Helper()
	var d codecs.H264Packet
	var out []byte
	for _, p := range pkts {
		b, err := d.Unmarshal(p.pkt.Payload)
		require.NoError(t, err)
		out = append(out, b...)
	}
	return out
}

// startServer runs a Server on a free 127.0.0.1 port with a real hub.
func startServer(t *testing.T, cfg Config, hubCfg sfu.Config, transcode func(*sfu.Publication) func()) (*Server, *sfu.Hub, string) {
	t.Helper()
	hub := sfu.NewHub(hubCfg, sfu.Deps{})
	srv, err := New(cfg, Deps{Hub: hub, Transcode: transcode, Logger: testLogger(t)})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.ErrorIs(t, <-errc, ErrServerClosed)
		hub.Close()
	})
	return srv, hub, "rtmp://" + ln.Addr().String()
}

// subscribeWhenLive subscribes as soon as the stream exists.
func subscribeWhenLive(t *testing.T, hub *sfu.Hub, key string, timeout time.Duration) (*testSub, func()) {
	t.Helper()
	sub := newTestSub()
	deadline := time.Now().Add(timeout)
	for {
		if st := hub.Stream(key); st != nil && st.Publisher() != nil {
			unsub, err := hub.Subscribe(context.Background(), key, sub)
			require.NoError(t, err)
			t.Cleanup(unsub)
			return sub, unsub
		}
		require.True(t, time.Now().Before(deadline), "stream %s not live within %v", key, timeout)
		time.Sleep(20 * time.Millisecond)
	}
}
