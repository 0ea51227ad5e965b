package rtmp

import (
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/bridge/flv"
	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/sfu"
)

// startPlayServer runs a Server whose Deps.Play subscribes bridge/flv viewers (as cmd/estuary wires it).
func startPlayServer(t *testing.T, cfg Config) (*sfu.Hub, string) {
	t.Helper()
	hub := sfu.NewHub(sfu.Config{Grace: time.Second}, sfu.Deps{})
	reg := frames.NewRegistry(frames.Config{}, frames.Deps{Hub: hub})
	fsrv, err := flv.New(flv.Config{}, flv.Deps{Frames: reg})
	require.NoError(t, err)
	srv, err := New(cfg, Deps{Hub: hub, Logger: testLogger(t), Play: func(ctx context.Context, key, addr string) (Viewer, error) {
		v, err := fsrv.Subscribe(ctx, key)
		if err != nil {
			return nil, err
		}
		v.SetRemoteAddr(addr, "rtmp")
		return v, nil
	}})
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
		fsrv.Close()
		hub.Close()
		reg.Close()
	})
	return hub, "rtmp://" + ln.Addr().String()
}

type playProbe struct {
	Streams []struct {
		Index     int    `json:"index"`
		CodecName string `json:"codec_name"`
		CodecType string `json:"codec_type"`
	} `json:"streams"`
	// With packets and frames both shown, ffprobe lists them together.
	Items []struct {
		Type        string `json:"type"` // "packet", "frame"
		StreamIndex int    `json:"stream_index"`
		DTS         string `json:"dts_time"`
		MediaType   string `json:"media_type"`
		PictType    string `json:"pict_type"`
	} `json:"packets_and_frames"`
}

// TestPlayFFmpeg: ffmpeg pushes H.264 High with B-frames + AAC (webrtc.bframes drop: the WebRTC variant
// drops them, RTMP play must not); ffprobe reads RTMP play: both streams, monotonic DTS, B pictures.
func TestPlayFFmpeg(t *testing.T) {
	hub, base := startPlayServer(t, Config{BFrames: "drop"})
	ff := startFFmpeg(t, pushArgs(base+"/live/test", "320x240", 10, []string{"-profile:v", "high", "-bf", "2", "-g", "25"}, true)...)
	defer ff.stop()
	subscribeWhenLive(t, hub, "live/test", 5*time.Second)

	t.Run("ffprobe", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-read_intervals", "%+3", "-show_entries",
			"stream=index,codec_name,codec_type:packet=stream_index,dts_time:frame=media_type,pict_type", "-of", "json", base+"/live/test").Output()
		require.NoError(t, err)
		var p playProbe
		require.NoError(t, json.Unmarshal(out, &p))
		codecs := map[int]string{}
		kinds := map[int]string{}
		for _, s := range p.Streams {
			codecs[s.Index], kinds[s.Index] = s.CodecName, s.CodecType
		}
		require.ElementsMatch(t, []string{"h264", "aac"}, []string{codecs[0], codecs[1]})
		last := map[string]float64{}
		first := map[string]float64{}
		count := map[string]int{}
		bs := 0
		for _, pk := range p.Items {
			if pk.Type == "frame" {
				if pk.MediaType == "video" && pk.PictType == "B" {
					bs++
				}
				continue
			}
			k := kinds[pk.StreamIndex]
			dts, err := strconv.ParseFloat(pk.DTS, 64)
			require.NoError(t, err)
			if count[k] > 0 {
				require.GreaterOrEqual(t, dts, last[k], "%s DTS monotonic", k)
			} else {
				first[k] = dts
			}
			last[k], count[k] = dts, count[k]+1
		}
		t.Logf("RTMP play read in %v: video %d packets %.3f..%.3f s, audio %d packets %.3f..%.3f s, %d B pictures",
			time.Since(start).Round(time.Millisecond), count["video"], first["video"], last["video"], count["audio"], first["audio"], last["audio"], bs)
		require.Greater(t, count["video"], 50)
		require.Greater(t, count["audio"], 80)
		require.InDelta(t, first["video"], first["audio"], 0.1, "audio and video start together")
		require.Positive(t, bs, "RTMP play keeps the B-frames")
	})

	t.Run("unknown stream", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", base+"/live/nobody").CombinedOutput()
		require.Error(t, err, string(out))
		require.NoError(t, ctx.Err(), "refused at once")
	})

	t.Run("bad key", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", base+"/live/a..b").CombinedOutput()
		require.Error(t, err, string(out))
		require.NoError(t, ctx.Err(), "refused at once")
	})
}

func TestAMFString(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
		rest int
		ok   bool
	}{
		{name: "onMetaData", in: append([]byte{2, 0, 10}, "onMetaData\x08\x00\x00\x00\x00"...), want: "onMetaData", rest: 5, ok: true},
		{name: "short", in: []byte{2, 0, 10, 'o'}},
		{name: "not a string", in: []byte{3, 0, 0}},
		{name: "empty", in: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, rest, ok := amfString(tc.in)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, s)
			require.Len(t, rest, tc.rest)
		})
	}
}

func FuzzAMFString(f *testing.F) {
	f.Add(append([]byte{2, 0, 10}, "onMetaData\x08\x00\x00\x00\x00"...))
	f.Add([]byte{2, 0, 10, 'o'})
	f.Add([]byte{3, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, rest, ok := amfString(b)
		if !ok {
			require.Empty(t, s)
			require.Nil(t, rest)
			return
		}
		require.Equal(t, len(b), 3+len(s)+len(rest))
		require.Equal(t, s, string(b[3:3+len(s)]))
	})
}
