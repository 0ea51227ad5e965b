package hls

import (
	"context"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/bridge/codec"
	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/bridge/packetize"
	"github.com/estuary-media/estuary/sfu"
)

// hevcAUs splits testdata/nob.h265 (testsrc 320x180@25, 1 s, libx265 bframes=0 keyint=25, Annex B)
// into access units, each as AVCC.
func hevcAUs(t testing.TB) (aus [][]byte, vps, sps, pps [][]byte) {
	b, err := os.ReadFile("testdata/nob.h265")
	require.NoError(t, err)
	var nalus h264.AnnexB // the start codes are the same for H.265
	require.NoError(t, nalus.Unmarshal(b))
	var cur []byte
	vcl := false
	for _, n := range nalus {
		typ := codec.H265NALType(n)
		isVCL := typ < 32
		if vcl && (!isVCL || len(n) > 2 && n[2]&0x80 != 0) {
			aus = append(aus, cur)
			cur, vcl = nil, false
		}
		switch typ {
		case codec.H265NALVPS:
			vps = append(vps, n)
		case codec.H265NALSPS:
			sps = append(sps, n)
		case codec.H265NALPPS:
			pps = append(pps, n)
		}
		cur = binary.BigEndian.AppendUint32(cur, uint32(len(n)))
		cur = append(cur, n...)
		vcl = vcl || isVCL
	}
	return append(aus, cur), vps, sps, pps
}

// TestServerHEVCGoesFMP4: an H.265 stream (which MPEG-TS cannot carry here) is served as fMP4 with the
// default variant: hvc1 in the playlist, an init segment with an hvcC box, .mp4 segments.
func TestServerHEVCGoesFMP4(t *testing.T) {
	aus, vps, sps, pps := hevcAUs(t)
	require.Len(t, aus, 25)
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	reg := frames.NewRegistry(frames.Config{}, frames.Deps{Hub: hub})
	defer reg.Close()
	srv, err := New(Config{NodeID: "n1", Segment: time.Second}, Deps{Frames: reg})
	require.NoError(t, err)
	defer srv.Close()
	mux := http.NewServeMux()
	srv.Register(mux)
	mux.HandleFunc("GET /{app}/{file}", srv.ServeHTTP)
	ts := httptest.NewServer(mux)
	defer ts.Close()

	pub, err := hub.Publish(context.Background(), "live/h", &testPub{}, []sfu.TrackInfo{
		{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/H265", ClockRate: 90000}},
	})
	require.NoError(t, err)
	p := packetize.NewH265(pub.Track("video"), packetize.Config{SSRC: 3, MaxPayload: 1200})
	p.SetParameterSets(vps, sps, pps)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { // real time, looped with continuous timestamps
		defer close(done)
		start := time.Now()
		for i := 0; ; i++ {
			_ = p.WriteAVCC(aus[i%len(aus)], 4, uint32(i*3600))
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(time.Duration(i+1) * 40 * time.Millisecond))):
			}
		}
	}()
	defer func() { cancel(); <-done; pub.Close() }()
	time.Sleep(200 * time.Millisecond)

	start := time.Now()
	code, _, body := getBody(t, ts.Client(), ts.URL+"/live/h.m3u8")
	t.Logf("H.265 fMP4 first playlist: %d after %v", code, time.Since(start).Round(time.Millisecond))
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "hvc1.")
	uris := regexp.MustCompile(`(?m)^[^#\s].*$`).FindAllString(body, -1)
	require.NotEmpty(t, uris, body)
	base := ts.URL + "/n/n1/hls/live/h/"
	code, _, media := getBody(t, ts.Client(), base+uris[0])
	require.Equal(t, http.StatusOK, code)
	init := regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`).FindStringSubmatch(media)
	require.Len(t, init, 2, media)
	code, _, initSeg := getBody(t, ts.Client(), base+init[1])
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, initSeg, "hvcC")
	var segs []string
	for _, l := range strings.Split(media, "\n") {
		if strings.HasSuffix(l, ".mp4") {
			segs = append(segs, l)
		}
	}
	require.NotEmpty(t, segs, media)
	code, _, seg := getBody(t, ts.Client(), base+segs[0])
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, seg, "moof")
}
