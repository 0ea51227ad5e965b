package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	gortmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// flvStream builds an FLV stream: header, a script tag, AVC and AAC sequence headers, then
// video tags at the given timestamps (every keyEvery-th a keyframe) each followed by an audio tag.
func flvStream(ts []uint32, keyEvery int) []byte {
	var b bytes.Buffer
	b.Write([]byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0})
	tag := func(typ byte, ts uint32, body []byte) {
		n := len(body)
		b.Write([]byte{typ, byte(n >> 16), byte(n >> 8), byte(n), byte(ts >> 16), byte(ts >> 8), byte(ts), byte(ts >> 24), 0, 0, 0})
		b.Write(body)
		p := n + 11
		b.Write([]byte{byte(p >> 24), byte(p >> 16), byte(p >> 8), byte(p)})
	}
	tag(18, 0, []byte{2, 0, 1, 'x'})
	tag(9, 0, []byte{0x17, 0, 0, 0, 0, 1})
	tag(8, 0, []byte{0xaf, 0, 0x12, 0x10})
	for i, t := range ts {
		ft := byte(0x27)
		if i%keyEvery == 0 {
			ft = 0x17
		}
		tag(9, t, append([]byte{ft, 1, 0, 0, 0}, bytes.Repeat([]byte{0xab}, 500)...))
		tag(8, t, []byte{0xaf, 1, 1, 2, 3})
	}
	return b.Bytes()
}

func testKind(name string, play playFunc) *kind {
	return newKind(name, "", 1, 3*time.Second, play)
}

func TestFLVReader(t *testing.T) {
	// 30 fps, frames 5 and 6 missing (a server-side drop), keyframe every 10.
	var ts []uint32
	for i := range 20 {
		if i == 5 || i == 6 {
			continue
		}
		ts = append(ts, uint32(i*100/3))
	}
	body := flvStream(ts, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/live/test.flv" {
			http.Error(w, "stream not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "video/x-flv")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()

	cases := []struct {
		name     string
		url      string
		wantErr  error
		joined   bool
		units    int64
		keys     int64
		lost     int64
		reasonIn string
	}{
		{name: "plays to the end", url: srv.URL + "/live/test.flv", wantErr: ErrDisconnected, joined: true,
			units: int64(2*len(ts) + 2), keys: 2, lost: 2},
		{name: "unknown stream", url: srv.URL + "/live/nobody.flv", wantErr: ErrStatus, reasonIn: "404"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := testKind("flv", newFLV(c.url, srv.Client()))
			k.run(context.Background(), 0)
			s := k.c.Snapshot()
			failures, drops := k.reasons()
			if !c.joined {
				require.Zero(t, s.Joined)
				require.Equal(t, int64(1), s.Failed)
				require.Len(t, failures, 1)
				for why := range failures {
					require.Contains(t, why, c.reasonIn)
				}
				return
			}
			require.Equal(t, int64(1), s.Joined)
			require.Equal(t, int64(1), s.Dropped, "the server ended the stream: %v", drops)
			require.Equal(t, int64(len(body)), s.Bytes, "every byte counted")
			require.Equal(t, c.units, s.Units)
			require.Equal(t, c.keys, s.Keyframes)
			require.Equal(t, c.lost, s.Lost)
			require.Len(t, k.ttfmSnapshot(), 1)
		})
	}
}

func TestHLSReader(t *testing.T) {
	var polls atomic.Int32
	seg := bytes.Repeat([]byte{0x47}, 188*10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/live/test.m3u8":
			http.Redirect(w, r, "/hls/master.m3u8", http.StatusFound)
		case r.URL.Path == "/hls/master.m3u8":
			fmt.Fprint(w, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nmedia/index.m3u8\n")
		case r.URL.Path == "/hls/media/index.m3u8":
			// First poll: segments 10..12; second: 14..15 (13 was skipped), then the end.
			switch polls.Add(1) {
			case 1:
				fmt.Fprint(w, "#EXTM3U\n#EXT-X-TARGETDURATION:0\n#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:1,\ns10.mp4\n#EXTINF:1,\ns11.mp4\n#EXTINF:1,\ns12.mp4\n")
			default:
				fmt.Fprint(w, "#EXTM3U\n#EXT-X-TARGETDURATION:0\n#EXT-X-MEDIA-SEQUENCE:14\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:1,\ns14.mp4\n#EXTINF:1,\ns15.mp4\n#EXT-X-ENDLIST\n")
			}
		case strings.HasPrefix(r.URL.Path, "/hls/media/s"):
			_, _ = w.Write(seg)
		case r.URL.Path == "/hls/media/init.mp4":
			_, _ = w.Write([]byte("init"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()
	k := testKind("hls", newHLS(srv.URL+"/live/test.m3u8", srv.Client()))
	k.run(context.Background(), 0)
	s := k.c.Snapshot()
	_, drops := k.reasons()
	require.Equal(t, int64(1), s.Joined)
	require.Equal(t, int64(3), s.Units, "s12 (live edge), s14, s15")
	require.Equal(t, int64(3*len(seg)+4), s.Bytes)
	require.Equal(t, int64(1), s.Lost, "s13 skipped")
	require.Equal(t, int64(1), s.Gaps)
	require.Equal(t, int64(1), s.Dropped, "playlist ended: %v", drops)

	k404 := testKind("hls", newHLS(srv.URL+"/live/other.m3u8", srv.Client()))
	k404.run(context.Background(), 0)
	require.Equal(t, int64(1), k404.c.Failed.Load())
}

// rtmpTestHandler is a go-rtmp server handler whose play sends frames (video at 40 ms steps,
// frames 3 and 4 missing, keyframe every 5) or refuses with an onStatus error.
type rtmpTestHandler struct {
	gortmp.DefaultHandler
	conn   *gortmp.Conn
	refuse bool
}

func (h *rtmpTestHandler) OnServe(conn *gortmp.Conn) { h.conn = conn }

func (h *rtmpTestHandler) OnConnect(uint32, *message.NetConnectionConnect) error { return nil }

func (h *rtmpTestHandler) OnCreateStream(uint32, *message.NetConnectionCreateStream) error {
	return nil
}

func (h *rtmpTestHandler) OnPlay(sctx *gortmp.StreamContext, _ uint32, cmd *message.NetStreamPlay) error {
	if h.refuse || cmd.StreamName != "test" {
		return errors.New("refused")
	}
	// Written here, in the connection's handler goroutine: go-rtmp's writes are not safe to
	// run concurrently with its own status replies.
	id := sctx.StreamID
	ctx := context.Background()
	for i := range 10 {
		if i == 3 || i == 4 {
			continue
		}
		b0 := byte(0x27)
		if i%5 == 0 {
			b0 = 0x17
		}
		ts := uint32(i * 40)
		if err := h.conn.Write(ctx, 6, ts, &gortmp.ChunkMessage{StreamID: id,
			Message: &message.VideoMessage{Payload: bytes.NewReader(append([]byte{b0, 1, 0, 0, 0}, make([]byte, 300)...))}}); err != nil {
			return err
		}
		if err := h.conn.Write(ctx, 5, ts, &gortmp.ChunkMessage{StreamID: id,
			Message: &message.AudioMessage{Payload: bytes.NewReader([]byte{0xaf, 1, 9, 9})}}); err != nil {
			return err
		}
	}
	return nil
}

func TestRTMPReader(t *testing.T) {
	cases := []struct {
		name   string
		refuse bool
		stream string
	}{
		{name: "plays", stream: "test"},
		{name: "refused", stream: "other", refuse: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			srv := gortmp.NewServer(&gortmp.ServerConfig{OnConnect: func(conn net.Conn) (io.ReadWriteCloser, *gortmp.ConnConfig) {
				return conn, &gortmp.ConnConfig{Handler: &rtmpTestHandler{refuse: c.refuse},
					ControlState: gortmp.StreamControlStateConfig{DefaultBandwidthWindowSize: 6 * 1024 * 1024 / 8}}
			}})
			served := make(chan struct{})
			go func() { defer close(served); _ = srv.Serve(ln) }()
			defer func() { _ = srv.Close(); <-served }()

			play, err := newRTMP("rtmp://" + ln.Addr().String() + "/live/" + c.stream)
			require.NoError(t, err)
			k := testKind("rtmp", play)
			// The server sends its frames and stays connected: the run ends the player.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			k.run(ctx, 0)
			s := k.c.Snapshot()
			failures, drops := k.reasons()
			if c.refuse {
				require.Zero(t, s.Joined)
				require.Equal(t, int64(1), s.Failed, "%v", failures)
				return
			}
			require.Equal(t, int64(1), s.Joined, "failures %v", failures)
			require.Equal(t, int64(16), s.Units, "8 video + 8 audio messages")
			require.Equal(t, int64(2), s.Keyframes)
			require.Equal(t, int64(2), s.Lost, "frames 3 and 4 missing")
			require.Positive(t, s.Bytes)
			require.Zero(t, s.Dropped, "%v", drops)
			require.Zero(t, s.Active, "the player left at the end of the run")
		})
	}
}
