package signaling

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

// TestWHIPWHEPThreeViewers is issue 2's "Must show": a WHIP publisher sending H.264 and Opus, three
// WHEP viewers; each gets video and audio, continuous sequence numbers, and a first video packet that
// belongs to a keyframe.
func TestWHIPWHEPThreeViewers(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	pub := startWHIP(t, e, "/whip/live/test")
	require.True(t, strings.HasPrefix(pub.res.header.Get("Location"), "/n/"+testNode+"/whip/"), pub.res.header.Get("Location"))
	require.NotEmpty(t, pub.res.header.Get("ETag"))
	require.Equal(t, "application/sdp", pub.res.header.Get("Content-Type"))
	require.Equal(t, "*", pub.res.header.Get("Access-Control-Allow-Origin"))
	links := pub.res.header.Values("Link")
	require.Len(t, links, 2)
	require.Contains(t, links[1], `username="1700000000:u"`)
	require.Contains(t, pub.res.body, "a=rtpmap:", "answer SDP")
	require.Contains(t, pub.res.body, "H264")
	require.Contains(t, pub.res.body, "tcptype passive", "ICE-TCP candidate")
	require.Contains(t, pub.res.body, "127.0.0.1")
	require.NotContains(t, pub.res.body, "VP8", "the publisher's transceiver is restricted to the chosen codec")

	// Let the GOP cache fill a little, so viewers start from the cache, not the live edge.
	time.Sleep(500 * time.Millisecond)
	var viewers []*viewer
	for range 3 {
		viewers = append(viewers, startWHEP(t, e, "/whep/live/test"))
	}
	for i, v := range viewers {
		took := v.waitPackets(t, 0, 0, 90, 10*time.Second)
		vs, as := v.snapshot("video"), v.snapshot("audio")
		t.Logf("viewer %d: first video packet %v after POST, 90 video packets after %v; video %d pkts, audio %d pkts",
			i, vs.firstAt.Sub(v.start).Round(time.Millisecond), took.Round(time.Millisecond), vs.packets, as.packets)
		require.Equal(t, webrtc.MimeTypeH264, vs.mime)
		require.Equal(t, webrtc.MimeTypeOpus, as.mime)
		require.True(t, sfu.IsKeyframe(vs.mime, vs.first), "first video packet must belong to a keyframe: % x", vs.first[:min(8, len(vs.first))])
		v.requireContinuous(t)
	}
	require.Equal(t, 4, e.srv.Sessions())

	// AES-GCM SRTP is negotiated (offered first by the server).
	for _, loc := range []string{pub.res.header.Get("Location"), viewers[0].res.header.Get("Location")} {
		ss, err := e.srv.lookup(testNode, loc[strings.LastIndex(loc, "/")+1:])
		require.NoError(t, err)
		cipher := ""
		for _, st := range ss.pc.GetStats() {
			if ts, ok := st.(webrtc.TransportStats); ok {
				cipher = ts.SRTPCipher
			}
		}
		t.Logf("%s: SRTP %s", loc, cipher)
		require.Contains(t, cipher, "AEAD_AES", "SRTP profile")
	}

	// A viewer's PLI reaches the publisher as a PLI on its own video SSRC.
	var videoSSRC uint32
	for _, tr := range viewers[0].pc.GetReceivers() {
		if tr.Track() != nil && tr.Track().Kind() == webrtc.RTPCodecTypeVideo {
			videoSSRC = uint32(tr.Track().SSRC())
		}
	}
	require.NotZero(t, videoSSRC)
	time.Sleep(600 * time.Millisecond) // past the hub's keyframe-request rate limit
	before := pub.plis.Load()
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, before, pub.plis.Load(), "no PLI reaches the publisher unasked (else this check proves nothing)")
	t.Logf("PLIs the publisher got while the viewers joined: %d", before)
	sent := time.Now()
	require.NoError(t, viewers[0].pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: videoSSRC}}))
	require.Eventually(t, func() bool { return pub.plis.Load() > before }, 3*time.Second, 10*time.Millisecond,
		"the publisher got no PLI")
	t.Logf("viewer PLI reached the publisher in %v", time.Since(sent))
	st := e.hub.Stream("live/test")
	require.NotNil(t, st)
	require.Len(t, st.Subscribers(), 3)

	// DELETE ends each session.
	for _, v := range viewers {
		r := do(t, http.MethodDelete, e.url+v.res.header.Get("Location"), "", nil)
		require.Equal(t, http.StatusOK, r.status)
	}
	r := do(t, http.MethodDelete, e.url+pub.res.header.Get("Location"), "", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, 0, e.srv.Sessions())
	r = do(t, http.MethodDelete, e.url+pub.res.header.Get("Location"), "", nil)
	require.Equal(t, http.StatusNotFound, r.status)
}

// TestGrace: the publisher drops (no DELETE) and a new one returns within sfu.grace; the viewers'
// sessions stay up and their sequence numbers stay continuous.
func TestGrace(t *testing.T) {
	e := newEnv(t, sfu.Config{Grace: 5 * time.Second})
	pub := startWHIP(t, e, "/whip/live/grace")
	viewers := []*viewer{startWHEP(t, e, "/whep/live/grace"), startWHEP(t, e, "/whep/live/grace")}
	for _, v := range viewers {
		v.waitPackets(t, 0, 0, 60, 10*time.Second)
	}
	before := make([]trackStats, len(viewers))
	for i, v := range viewers {
		before[i] = v.snapshot("video")
	}

	dropped := time.Now()
	pub.close()
	// A returning publisher retries while the server still sees the old one (409).
	var pub2 *publisher
	for time.Since(dropped) < 4*time.Second {
		p, offer := newPublisherPC(t, e)
		res := do(t, http.MethodPost, e.url+"/whip/live/grace", "application/sdp", []byte(offer))
		if res.status == http.StatusConflict {
			p.close()
			time.Sleep(100 * time.Millisecond)

			continue
		}
		require.Equal(t, http.StatusCreated, res.status, res.body)
		require.NoError(t, p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: res.body}))
		pub2 = p

		break
	}
	require.NotNil(t, pub2, "the returning publisher was refused for 4 s")
	t.Logf("new publisher accepted %v after the old one dropped", time.Since(dropped).Round(time.Millisecond))

	for i, v := range viewers {
		took := v.waitPackets(t, before[i].packets, v.snapshot("audio").packets, 60, 10*time.Second)
		vs, as := v.snapshot("video"), v.snapshot("audio")
		t.Logf("viewer %d: 60 more video packets %v after the switch; video %d pkts, audio %d pkts",
			i, took.Round(time.Millisecond), vs.packets, as.packets)
		require.Equal(t, webrtc.PeerConnectionStateConnected, v.pc.ConnectionState())
		v.requireContinuous(t)
		require.Equal(t, 1, vs.ssrcSeen, "the viewer's SSRC must not change")
	}
	require.Equal(t, 3, e.srv.Sessions())
}
