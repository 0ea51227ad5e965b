package signaling

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

// TestWHEPOverICETCP: a viewer that can only use ICE-TCP gets the stream through pion's write path
// (the direct path and the batched UDP socket are for UDP pairs), alongside a UDP viewer that goes
// direct.
func TestWHEPOverICETCP(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	pub := startWHIP(t, e, "/whip/live/tcp")
	defer pub.close()

	me := &webrtc.MediaEngine{}
	require.NoError(t, me.RegisterDefaultCodecs())
	ir := &interceptor.Registry{}
	require.NoError(t, webrtc.RegisterDefaultInterceptors(me, ir))
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	tcp := &viewer{pc: pc, tracks: map[string]*trackStats{}, start: time.Now()}
	pc.OnTrack(tcp.read)
	t.Cleanup(func() { _ = pc.Close() })
	offer := viewerOffer(t, pc)
	r := do(t, http.MethodPost, e.url+"/whep/live/tcp", "application/sdp", []byte(offer))
	require.Equal(t, http.StatusCreated, r.status, r.body)
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: r.body}))
	tcp.flowing(t)
	pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	require.NoError(t, err)
	require.Equal(t, webrtc.ICEProtocolTCP, pair.Local.Protocol, "the viewer is on ICE-TCP")
	require.Zero(t, e.engine.SendStats().Datagrams, "nothing of the TCP viewer's went through the UDP batches")

	udp := startWHEP(t, e, "/whep/live/tcp")
	udp.flowing(t)
	tcp.flowing(t)
	require.Positive(t, e.engine.SendStats().Datagrams, "the UDP viewer's packets are batched")
	t.Logf("tcp viewer: %d video packets; udp viewer: %d; batched datagrams %d",
		tcp.snapshot("video").packets, udp.snapshot("video").packets, e.engine.SendStats().Datagrams)
	tcp.requireContinuous(t)
	udp.requireContinuous(t)
}
