package signaling

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/sfu/rtc"
)

// TestSessionsCloseThemselves: a viewer that never sets the answer is closed after ConnectTimeout;
// a viewer that vanishes (its socket closed, no DTLS close) is closed when ICE fails.
func TestSessionsCloseThemselves(t *testing.T) {
	e := newEnvWith(t, sfu.Config{}, func(rc *rtc.Config, c *Config) {
		rc.ICEDisconnectedTimeout = time.Second
		rc.ICEFailedTimeout = time.Second
		c.ConnectTimeout = time.Second
	})
	startWHIP(t, e, "/whip/live/to")
	require.Equal(t, 1, e.srv.Sessions())

	t.Run("never connects", func(t *testing.T) {
		_, offer := newViewer(t)
		r := do(t, http.MethodPost, e.url+"/whep/live/to", "application/sdp", []byte(offer))
		require.Equal(t, http.StatusCreated, r.status, r.body)
		require.Equal(t, 2, e.srv.Sessions())
		start := time.Now()
		require.Eventually(t, func() bool { return e.srv.Sessions() == 1 }, 5*time.Second, 20*time.Millisecond)
		t.Logf("unconnected session closed after %v (ConnectTimeout 1s)", time.Since(start).Round(time.Millisecond))
	})

	t.Run("vanishes", func(t *testing.T) {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		v := &viewer{pc: newViewerPCWith(t, conn, false), tracks: map[string]*trackStats{}, start: time.Now()}
		v.pc.OnTrack(v.read)
		t.Cleanup(func() { _ = v.pc.Close() })
		offer := viewerOffer(t, v.pc)
		v.res = do(t, http.MethodPost, e.url+"/whep/live/to", "application/sdp", []byte(offer))
		require.Equal(t, http.StatusCreated, v.res.status, v.res.body)
		require.NoError(t, v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: v.res.body}))
		v.waitPackets(t, 0, 0, 20, 10*time.Second)
		require.Equal(t, 2, e.srv.Sessions())
		require.Len(t, e.hub.Stream("live/to").Subscribers(), 1)

		require.NoError(t, conn.Close()) // gone without a word
		start := time.Now()
		require.Eventually(t, func() bool { return e.srv.Sessions() == 1 }, 10*time.Second, 20*time.Millisecond)
		t.Logf("vanished viewer's session closed after %v (ICE disconnected 1s + failed 1s)", time.Since(start).Round(time.Millisecond))
		require.Empty(t, e.hub.Stream("live/to").Subscribers())
	})
}

// TestServerClose closes every PeerConnection and refuses later requests.
func TestServerClose(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	pub := startWHIP(t, e, "/whip/live/close")
	v := startWHEP(t, e, "/whep/live/close")
	v.waitPackets(t, 0, 0, 10, 10*time.Second)
	e.srv.Close()
	require.Equal(t, 0, e.srv.Sessions())
	require.Eventually(t, func() bool {
		return v.pc.ConnectionState() != webrtc.PeerConnectionStateConnected &&
			pub.pc.ConnectionState() != webrtc.PeerConnectionStateConnected
	}, 5*time.Second, 20*time.Millisecond, "clients still connected after Server.Close")
	_, offer := newViewer(t)
	r := do(t, http.MethodPost, e.url+"/whep/live/close", "application/sdp", []byte(offer))
	require.Equal(t, http.StatusServiceUnavailable, r.status, r.body)
}

// TestMaxSessions: beyond Config.MaxSessions a new session gets 503 (and an SRS code), the others flow.
func TestMaxSessions(t *testing.T) {
	e := newEnvWith(t, sfu.Config{}, func(_ *rtc.Config, c *Config) { c.MaxSessions = 2 })
	startWHIP(t, e, "/whip/live/max")
	v := startWHEP(t, e, "/whep/live/max")
	v.waitPackets(t, 0, 0, 10, 10*time.Second)
	_, offer := newViewer(t)
	r := do(t, http.MethodPost, e.url+"/whep/live/max", "application/sdp", []byte(offer))
	require.Equal(t, http.StatusServiceUnavailable, r.status, r.body)
	require.Contains(t, r.body, "too many")
	r = do(t, http.MethodPost, e.url+"/rtc/v1/play/", "application/json",
		[]byte(`{"streamurl":"webrtc://h/live/max","sdp":`+jsonString(offer)+`}`))
	require.Contains(t, r.body, `"code":5021`)
	v.flowing(t)
	require.NoError(t, v.pc.Close())
	require.Eventually(t, func() bool { return e.srv.Sessions() == 1 }, 5*time.Second, 20*time.Millisecond)
	startWHEP(t, e, "/whep/live/max").waitPackets(t, 0, 0, 10, 10*time.Second)
}
