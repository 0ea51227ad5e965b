package rtmp

import (
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

func TestIngestResolutionChange(t *testing.T) {
	_, hub, base := startServer(t, Config{}, sfu.Config{Grace: 5 * time.Second}, nil)
	opts := []string{"-profile:v", "baseline", "-g", "25"}
	ff := startFFmpeg(t, pushArgs(base+"/live/change", "320x240", 3, opts, true)...)
	sub, _ := subscribeWhenLive(t, hub, "live/change", 5*time.Second)
	require.NoError(t, ff.wait(t, 15*time.Second), ff.stderr.String())
	n1 := sub.count("video")
	ff = startFFmpeg(t, pushArgs(base+"/live/change", "640x360", 3, opts, true)...)
	require.NoError(t, ff.wait(t, 15*time.Second), ff.stderr.String())

	select {
	case <-sub.closed:
		t.Fatal("subscriber closed across the republish")
	default:
	}
	require.Greater(t, sub.count("video"), n1, "video after the republish")
	st := hub.Stream("live/change")
	require.NotNil(t, st)
	d := st.Track("video").Details()
	require.Equal(t, 640, d.Width)
	require.Equal(t, 360, d.Height)

	widths := ffprobeFrames(t, h264AnnexB(t, sub.packets("video")))
	i := slices.Index(widths, 640)
	t.Logf("decoded %d frames, first 640-wide at %d", len(widths), i)
	require.Positive(t, i)
	require.Equal(t, 320, widths[0])
	require.Equal(t, 640, widths[len(widths)-1])
}

func TestIngestRefusesLiveKey(t *testing.T) {
	_, hub, base := startServer(t, Config{}, sfu.Config{Grace: time.Second}, nil)
	opts := []string{"-profile:v", "baseline", "-g", "25"}
	ff := startFFmpeg(t, pushArgs(base+"/live/busy", "320x240", 5, opts, false)...)
	sub, _ := subscribeWhenLive(t, hub, "live/busy", 5*time.Second)
	pub := hub.Stream("live/busy").Publisher()

	second := startFFmpeg(t, pushArgs(base+"/live/busy?x=1", "320x240", 3, opts, false)...)
	err := second.wait(t, 10*time.Second)
	require.Error(t, err, "the second publisher must be refused")
	t.Logf("second ffmpeg: %s", strings.TrimSpace(second.stderr.String()))
	require.Contains(t, second.stderr.String(), "stream live/busy is already being published")

	bad := startFFmpeg(t, pushArgs(base+"/live/bad..key", "320x240", 3, opts, false)...)
	require.Error(t, bad.wait(t, 10*time.Second))
	require.Contains(t, bad.stderr.String(), "invalid stream key")

	n := sub.count("video")
	time.Sleep(500 * time.Millisecond)
	require.Greater(t, sub.count("video"), n, "the first publisher keeps going")
	require.Equal(t, pub, hub.Stream("live/busy").Publisher())
	ff.stop()
}

// rtmpHandshake does a plain client handshake on c.
func rtmpHandshake(t *testing.T, c net.Conn) {
	t.Helper()
	c1 := make([]byte, 1537)
	c1[0] = 3
	_, _ = rand.Read(c1[9:])
	_, err := c.Write(c1)
	require.NoError(t, err)
	s := make([]byte, 1+1536+1536)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadFull(c, s)
	require.NoError(t, err)
	_, err = c.Write(s[1 : 1+1536]) // C2 echoes S1
	require.NoError(t, err)
}

// expectClosed reads until the server closes c.
func expectClosed(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(within)))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if err != nil && (!errorsAs(err, &ne) || ne.Timeout()) {
		t.Fatalf("server did not close the connection: %v", err)
	}
}

func TestIngestSurvivesBadInput(t *testing.T) {
	srv, hub, base := startServer(t, Config{NoMediaTimeout: 2 * time.Second}, sfu.Config{Grace: time.Second}, nil)
	addr := strings.TrimPrefix(base, "rtmp://")
	ff := startFFmpeg(t, pushArgs(base+"/live/victim", "320x240", 8, []string{"-profile:v", "baseline", "-g", "25"}, true)...)
	sub, _ := subscribeWhenLive(t, hub, "live/victim", 5*time.Second)

	// Random bytes after a real handshake, and random bytes instead of one.
	for _, handshake := range []bool{false, true} {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		if handshake {
			rtmpHandshake(t, c)
		}
		junk := make([]byte, 64<<10)
		_, _ = rand.Read(junk)
		_, _ = c.Write(junk)
		expectClosed(t, c, 5*time.Second)
		c.Close()
	}

	// A truncated handshake: the server drops it after NoMediaTimeout.
	trunc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = trunc.Write(make([]byte, 700))
	require.NoError(t, err)
	start := time.Now()
	expectClosed(t, trunc, 6*time.Second)
	t.Logf("truncated handshake dropped after %v", time.Since(start).Round(time.Millisecond))
	trunc.Close()

	// An oversized message: a 16 MB video message header.
	big, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	rtmpHandshake(t, big)
	hdr := []byte{0x03, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0}
	_, err = big.Write(append(hdr, make([]byte, 4096)...))
	require.NoError(t, err)
	expectClosed(t, big, 5*time.Second)
	big.Close()

	// Too many chunk streams.
	many, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	rtmpHandshake(t, many)
	for cs := 3; cs < 63; cs++ {
		msg := []byte{byte(cs), 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0}
		binary.BigEndian.PutUint16(msg[4:], 0)
		_, _ = many.Write(append(msg, make([]byte, 100)...))
	}
	expectClosed(t, many, 5*time.Second)
	many.Close()

	n := sub.count("video")
	time.Sleep(time.Second)
	require.Greater(t, sub.count("video"), n, "the live stream keeps flowing")
	select {
	case <-sub.closed:
		t.Fatal("the subscriber was closed")
	default:
	}
	require.NotNil(t, hub.Stream("live/victim").Publisher())
	require.Eventually(t, func() bool { return srv.Connections() == 1 }, 3*time.Second, 50*time.Millisecond, "only the publisher stays connected")
	ff.stop()
}

func TestIngestNoMediaTimeout(t *testing.T) {
	srv, hub, base := startServer(t, Config{NoMediaTimeout: 1500 * time.Millisecond}, sfu.Config{Grace: 500 * time.Millisecond}, nil)
	pub := dialPublisher(t, base, "live", "quiet")
	// A sequence header alone publishes nothing yet (it waits for the other kind), then silence.
	pub.audio(t, 0, []byte{0xaf, 0, 0x12, 0x10})
	start := time.Now()
	require.Eventually(t, func() bool { return srv.Connections() == 0 }, 5*time.Second, 50*time.Millisecond)
	took := time.Since(start)
	t.Logf("silent publisher closed after %v", took.Round(time.Millisecond))
	require.GreaterOrEqual(t, took, time.Second)
	require.Eventually(t, func() bool { return hub.Stream("live/quiet") == nil || hub.Stream("live/quiet").Publisher() == nil }, 3*time.Second, 50*time.Millisecond)
}

func TestIngestAudioOnlyWithTranscodeHook(t *testing.T) {
	type call struct {
		tracks  []string
		stopped chan struct{}
	}
	calls := make(chan *call, 2)
	transcode := func(p *sfu.Publication) func() {
		c := &call{stopped: make(chan struct{})}
		for _, tr := range p.Tracks() {
			c.tracks = append(c.tracks, tr.ID()+"="+tr.Codec().MimeType+"/"+tr.Codec().Fmtp)
		}
		calls <- c
		return func() { close(c.stopped) }
	}
	_, hub, base := startServer(t, Config{}, sfu.Config{Grace: 200 * time.Millisecond}, transcode)
	args := []string{"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "2", "-ac", "1", "-c:a", "aac", "-f", "flv", base + "/live/radio"}
	ff := startFFmpeg(t, args...)
	sub, _ := subscribeWhenLive(t, hub, "live/radio", 5*time.Second)
	var c *call
	select {
	case c = <-calls:
	case <-time.After(5 * time.Second):
		t.Fatal("Transcode not called")
	}
	require.Len(t, c.tracks, 2)
	require.Contains(t, c.tracks[0], "aac=audio/mpeg4-generic/streamtype=5;")
	require.Equal(t, "audio=audio/opus/minptime=10;useinbandfec=1", c.tracks[1], "mono: no stereo=1")
	require.NoError(t, ff.wait(t, 10*time.Second), ff.stderr.String())
	select {
	case <-c.stopped:
	case <-time.After(3 * time.Second):
		t.Fatal("Transcode stop not called when the publication ended")
	}
	require.Greater(t, sub.count("aac"), 50)
	require.Zero(t, sub.count("video"))
}

func TestPlayRefused(t *testing.T) {
	_, _, base := startServer(t, Config{}, sfu.Config{}, nil)
	args := []string{"-rw_timeout", "3000000", "-i", base + "/live/nothing", "-t", "1", "-f", "null", "-"}
	ff := startFFmpeg(t, args...)
	require.Error(t, ff.wait(t, 10*time.Second))
	t.Logf("ffmpeg play: %s", strings.TrimSpace(ff.stderr.String()))
	require.Contains(t, ff.stderr.String(), "not available")
}
