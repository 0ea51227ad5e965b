package cascade

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

const relayTestToken = "s3cret"

var relayTestTracks = []sfu.TrackInfo{
	{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/H264", ClockRate: 90000,
		Fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f"}},
	{ID: "aac", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/mpeg4-generic", ClockRate: 44100, Channels: 2,
		Fmtp: "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1210"}},
	{ID: "audio", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2,
		Fmtp: "minptime=10;useinbandfec=1"}},
	{ID: "video-webrtc", Kind: sfu.KindVideo, Variant: "webrtc", Codec: sfu.Codec{MimeType: "video/H264", ClockRate: 90000,
		Fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f"}},
}

// relayNode is one in-process cluster node: hub, registry, relay egress (HTTP on 127.0.0.1) and puller.
type relayNode struct {
	id     string
	srv    *httptest.Server
	reg    Registry
	hub    *sfu.Hub
	relay  *Relay
	puller *Puller
}

func startRelayNode(t *testing.T, id string, store *MemoryStore) *relayNode {
	t.Helper()
	mux := http.NewServeMux()
	n := &relayNode{id: id, srv: httptest.NewServer(mux)}
	log := testLogger(t).With("node", id)
	reg, err := NewMemory(Config{NodeID: id, Role: RoleOrigin, Advertise: n.srv.URL, NodeTTL: time.Second}, Deps{Memory: store, Logger: log})
	require.NoError(t, err)
	n.reg = reg
	n.puller, err = NewPuller(PullerConfig{NodeID: id, Token: relayTestToken, ListenIP: "127.0.0.1", Linger: 500 * time.Millisecond},
		PullerDeps{Registry: reg, Logger: log})
	require.NoError(t, err)
	n.hub = sfu.NewHub(sfu.Config{Grace: 5 * time.Second}, sfu.Deps{
		Logger: log, Puller: n.puller, Registry: NewHubRegistry(reg, HubRegistryConfig{}, Deps{Logger: log}),
	})
	n.puller.SetHub(n.hub)
	n.relay, err = NewRelay(RelayConfig{NodeID: id, Token: relayTestToken, ListenIP: "127.0.0.1"}, RelayDeps{Hub: n.hub, Logger: log})
	require.NoError(t, err)
	n.relay.Register(mux)
	t.Cleanup(n.close)

	return n
}

func (n *relayNode) close() {
	n.puller.Close()
	n.relay.Close()
	n.hub.Close()
	n.srv.Close()
	_ = n.reg.Close()
}

// testSource publishes synthetic H.264 (IDR every 10 frames), AAC and Opus at 50 packets/s each.
type testSource struct {
	id        string
	keyframes atomic.Int32
	closed    atomic.Bool
}

func (s *testSource) Info() sfu.ClientInfo      { return sfu.ClientInfo{ID: s.id, Protocol: "test"} }
func (s *testSource) Close() error              { s.closed.Store(true); return nil }
func (s *testSource) RequestKeyframe(id string) { s.keyframes.Add(1) }

// publishTest publishes key on hub and feeds it until stop is called (which closes the publication).
func publishTest(t *testing.T, hub *sfu.Hub, key string, ssrcBase uint32) (src *testSource, stop func()) {
	t.Helper()
	src, stop, err := tryPublishTest(hub, key, ssrcBase)
	require.NoError(t, err)

	return src, stop
}

func tryPublishTest(hub *sfu.Hub, key string, ssrcBase uint32) (src *testSource, stop func(), err error) {
	src = &testSource{id: sfu.NewClientID()}
	pub, err := hub.Publish(context.Background(), key, src, relayTestTracks)
	if err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var pkt rtp.Packet
		buf := make([]byte, 200)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			for j, tr := range pub.Tracks() {
				pkt.Header = rtp.Header{Version: 2, SSRC: ssrcBase + uint32(j), SequenceNumber: uint16(i), Marker: true,
					Timestamp: uint32(i) * tr.Codec().ClockRate / 50, PayloadType: 96}
				buf[0] = 0x41 // H.264 non-IDR slice
				if i%10 == 0 {
					buf[0] = 0x65 // IDR
				}
				buf[1] = byte(i)
				pkt.Payload = buf[:100+j]
				_ = tr.WriteRTP(&pkt)
			}
		}
	}()

	return src, func() {
		close(done)
		wg.Wait()
		pub.Close()
	}, nil
}

// testViewer is a subscriber whose DownTracks record what they send.
type testViewer struct {
	id   string
	mu   sync.Mutex
	got  map[string][]viewerPkt
	down []*sfu.DownTrack
}

type viewerPkt struct {
	sn  uint16
	at  time.Time
	len int
}

type viewerSink struct {
	v  *testViewer
	id string
}

func (s viewerSink) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	s.v.mu.Lock()
	s.v.got[s.id] = append(s.v.got[s.id], viewerPkt{sn: h.SequenceNumber, at: time.Now(), len: len(payload)})
	s.v.mu.Unlock()

	return len(payload), nil
}

func newTestViewer() *testViewer {
	return &testViewer{id: sfu.NewClientID(), got: map[string][]viewerPkt{}}
}

func (v *testViewer) Info() sfu.ClientInfo { return sfu.ClientInfo{ID: v.id, Protocol: "test"} }
func (v *testViewer) Close() error         { return nil }
func (v *testViewer) AddTrack(t *sfu.Track) (sfu.TrackWriter, error) {
	d := sfu.NewDownTrack(t, viewerSink{v: v, id: t.ID()}, sfu.DownTrackOptions{})
	v.mu.Lock()
	v.down = append(v.down, d)
	v.mu.Unlock()

	return d, nil
}

func (v *testViewer) stop() {
	v.mu.Lock()
	ds := v.down
	v.mu.Unlock()
	for _, d := range ds {
		_ = d.Close()
	}
}

func (v *testViewer) count(id string) int {
	v.mu.Lock()
	defer v.mu.Unlock()

	return len(v.got[id])
}

func (v *testViewer) packets(id string) []viewerPkt {
	v.mu.Lock()
	defer v.mu.Unlock()

	return append([]viewerPkt(nil), v.got[id]...)
}

func relayStatus(t *testing.T, method, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()

	return resp.StatusCode
}

// TestRelayPullAndFailover: origin A publishes; node B's viewers pull it over one relay (every track,
// AAC included); the relay needs the token and B serves no relay of a relayed stream; then the
// publisher moves to origin C and B re-attaches, its viewers continuing with continuous sequence
// numbers.
func TestRelayPullAndFailover(t *testing.T) {
	store := NewMemoryStore()
	a := startRelayNode(t, "a", store)
	b := startRelayNode(t, "b", store)
	c := startRelayNode(t, "c", store)
	const key = "live/test"

	srcA, stopA := publishTest(t, a.hub, key, 1000)
	stoppedA := false
	defer func() {
		if !stoppedA {
			stopA()
		}
	}()

	// The relay endpoint: token, 404 for streams not published here.
	require.Equal(t, http.StatusUnauthorized, relayStatus(t, http.MethodGet, a.srv.URL+"/relay/v1/"+key, ""))
	require.Equal(t, http.StatusUnauthorized, relayStatus(t, http.MethodPost, a.srv.URL+"/relay/v1/"+key, "wrong"))
	require.Equal(t, http.StatusNotFound, relayStatus(t, http.MethodGet, a.srv.URL+"/relay/v1/live/other", relayTestToken))
	require.Equal(t, http.StatusOK, relayStatus(t, http.MethodGet, a.srv.URL+"/relay/v1/"+key, relayTestToken))

	// Two viewers on B: one relay.
	start := time.Now()
	viewers := []*testViewer{newTestViewer(), newTestViewer()}
	for _, v := range viewers {
		unsub, err := b.hub.Subscribe(context.Background(), key, v)
		require.NoError(t, err)
		defer v.stop()
		defer unsub()
	}
	require.Eventually(t, func() bool {
		for _, v := range viewers {
			for _, tr := range relayTestTracks {
				if v.count(tr.ID) == 0 {
					return false
				}
			}
		}

		return true
	}, 10*time.Second, 10*time.Millisecond, "B's viewers get every track")
	t.Logf("relay join: every track at both viewers %s after the first subscribe", time.Since(start).Round(time.Millisecond))
	require.Equal(t, []RelayServed{{Key: key, Relays: 1}}, a.relay.Served())
	pulls := b.puller.Pulls()
	require.Len(t, pulls, 1)
	require.Equal(t, "a", pulls[0].NodeID)
	require.Equal(t, RelayProtocol, b.hub.Stream(key).Publisher().Info().Protocol)
	require.Positive(t, srcA.keyframes.Load(), "B's keyframe requests reach A's publisher")
	// B carries the stream through a relay: it serves no relay of it (relays never loop).
	require.Equal(t, http.StatusNotFound, relayStatus(t, http.MethodGet, b.srv.URL+"/relay/v1/"+key, relayTestToken))
	// B's lease table still names A: a relay takes no lease.
	rec, err := b.reg.Lookup(context.Background(), key)
	require.NoError(t, err)
	require.Equal(t, "a", rec.NodeID)

	// The publisher moves to C: B re-attaches; the viewers keep going.
	before := viewers[0].count("video")
	stopA()
	stoppedA = true
	moved := time.Now()
	_, stopC := publishTest(t, c.hub, key, 5000)
	defer stopC()
	require.Eventually(t, func() bool {
		return viewers[0].count("video") > before+20 && viewers[1].count("audio") > 0
	}, 10*time.Second, 10*time.Millisecond, "media again after the move")
	require.Eventually(t, func() bool { p := b.puller.Pulls(); return len(p) == 1 && p[0].NodeID == "c" }, 5*time.Second, 10*time.Millisecond)
	for _, v := range viewers {
		pk := v.packets("video")
		var gap time.Duration
		for i := 1; i < len(pk); i++ {
			require.Equal(t, pk[i-1].sn+1, pk[i].sn, "continuous sequence numbers at %d", i)
			if pk[i].at.After(moved) && pk[i].at.Sub(pk[i-1].at) > gap {
				gap = pk[i].at.Sub(pk[i-1].at)
			}
		}
		t.Logf("viewer %s: %d video packets, largest gap after the move %s", v.id, len(pk), gap.Round(time.Millisecond))
	}
	require.Equal(t, []RelayServed{{Key: key, Relays: 1}}, c.relay.Served())
	require.Eventually(t, func() bool { return len(a.relay.Served()) == 0 }, 5*time.Second, 10*time.Millisecond, "A's relay session ends")
}

// TestRelayStopsAfterLastViewer: the relay comes down Linger after the last viewer left, and a pull
// of a stream nobody publishes fails after WaitForStream.
func TestRelayStopsAfterLastViewer(t *testing.T) {
	store := NewMemoryStore()
	a := startRelayNode(t, "a", store)
	b := startRelayNode(t, "b", store)
	const key = "live/linger"
	_, stopA := publishTest(t, a.hub, key, 1000)
	defer stopA()

	v := newTestViewer()
	unsub, err := b.hub.Subscribe(context.Background(), key, v)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return v.count("video") > 0 }, 10*time.Second, 10*time.Millisecond)
	unsub()
	v.stop()
	require.Eventually(t, func() bool {
		return len(a.relay.Served()) == 0 && len(b.puller.Pulls()) == 0 && b.hub.Stream(key) == nil
	},
		5*time.Second, 20*time.Millisecond, "relay down after the linger")

	b.puller.cfg.WaitForStream = 300 * time.Millisecond
	start := time.Now()
	_, err = b.hub.Subscribe(context.Background(), "live/nobody", newTestViewer())
	require.ErrorIs(t, err, sfu.ErrStreamNotFound)
	t.Logf("pull of an unknown stream failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
}

// TestPullerFallsBackToOrigins: with the registry unreachable (Redis on a closed port), the puller
// tries cluster.origins in order: the first does not carry the stream (404), the second does.
func TestPullerFallsBackToOrigins(t *testing.T) {
	store := NewMemoryStore()
	a := startRelayNode(t, "a", store)
	other := startRelayNode(t, "other", store)
	const key = "live/fallback"
	_, stopA := publishTest(t, a.hub, key, 1000)
	defer stopA()

	log := testLogger(t).With("node", "edge")
	reg, err := NewRedis(RedisConfig{Config: Config{NodeID: "edge", Role: RoleEdge, OpTimeout: 300 * time.Millisecond},
		URL: "redis://127.0.0.1:1/0"}, Deps{Logger: log})
	require.NoError(t, err)
	defer reg.Close()
	p, err := NewPuller(PullerConfig{NodeID: "edge", Token: relayTestToken, ListenIP: "127.0.0.1", Linger: 300 * time.Millisecond,
		Origins: []string{strings.TrimPrefix(other.srv.URL, "http://"), strings.TrimPrefix(a.srv.URL, "http://")}},
		PullerDeps{Registry: reg, Logger: log})
	require.NoError(t, err)
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{Logger: log, Puller: p})
	p.SetHub(hub)
	defer hub.Close()
	defer p.Close()

	v := newTestViewer()
	start := time.Now()
	unsub, err := hub.Subscribe(context.Background(), key, v)
	require.NoError(t, err)
	defer v.stop()
	defer unsub()
	require.Eventually(t, func() bool { return v.count("video") > 0 && v.count("aac") > 0 }, 10*time.Second, 10*time.Millisecond)
	t.Logf("pulled through cluster.origins %s after the subscribe (registry unreachable)", time.Since(start).Round(time.Millisecond))
	pulls := p.Pulls()
	require.Len(t, pulls, 1)
	require.Equal(t, strings.TrimPrefix(a.srv.URL, "http://"), pulls[0].NodeID)
	require.Equal(t, []RelayServed{{Key: key, Relays: 1}}, a.relay.Served())
	require.Empty(t, other.relay.Served())
}

// TestRelayPublisherMovesToPullingNode: node B pulls from origin A for its viewers; A goes away and
// the publisher comes back on B itself: B's relay ends, the local publish is accepted, B's viewers
// continue on the same tracks and B stops pulling.
func TestRelayPublisherMovesToPullingNode(t *testing.T) {
	store := NewMemoryStore()
	a := startRelayNode(t, "a", store)
	b := startRelayNode(t, "b", store)
	const key = "live/moves"
	_, stopA := publishTest(t, a.hub, key, 1000)
	v := newTestViewer()
	unsub, err := b.hub.Subscribe(context.Background(), key, v)
	require.NoError(t, err)
	defer v.stop()
	defer unsub()
	require.Eventually(t, func() bool { return v.count("video") > 0 }, 10*time.Second, 10*time.Millisecond)

	stopA()
	a.close()
	gone := time.Now()
	var stopB func()
	for {
		_, stopB, err = tryPublishTest(b.hub, key, 9000)
		if err == nil {
			break
		}
		require.Less(t, time.Since(gone), 5*time.Second, "B never accepted the publisher: %v", err)
		time.Sleep(50 * time.Millisecond)
	}
	defer stopB()
	t.Logf("publish on B accepted %s after A went away", time.Since(gone).Round(time.Millisecond))
	before := v.count("video")
	require.Eventually(t, func() bool { return v.count("video") > before+10 }, 5*time.Second, 10*time.Millisecond, "B's viewer continues")
	require.Eventually(t, func() bool { return len(b.puller.Pulls()) == 0 }, 5*time.Second, 10*time.Millisecond, "B stops pulling")
	require.Equal(t, "test", b.hub.Stream(key).Publisher().Info().Protocol)
}

// TestRelayBadRequests: each malformed relay request gets its own status; the node stays up.
func TestRelayBadRequests(t *testing.T) {
	a := startRelayNode(t, "a", NewMemoryStore())
	const key = "live/bad"
	_, stopA := publishTest(t, a.hub, key, 1000)
	defer stopA()
	cases := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"no token", http.MethodPost, key, "", "v=0", http.StatusUnauthorized},
		{"wrong token", http.MethodGet, key, "nope", "", http.StatusUnauthorized},
		{"unknown stream", http.MethodGet, "live/none", relayTestToken, "", http.StatusNotFound},
		{"bad key", http.MethodGet, "live/a%20b", relayTestToken, "", http.StatusBadRequest},
		{"no offer", http.MethodPost, key, relayTestToken, "", http.StatusBadRequest},
		{"garbage offer", http.MethodPost, key, relayTestToken, "v=0\r\nthis is not SDP", http.StatusBadRequest},
		{"oversized offer", http.MethodPost, key, relayTestToken, strings.Repeat("a", maxOfferBytes+1), http.StatusBadRequest},
		{"delete unknown session", http.MethodDelete, key + "/nosuch", relayTestToken, "", http.StatusNotFound},
		{"track list", http.MethodGet, key, relayTestToken, "", http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, a.srv.URL+"/relay/v1/"+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, tc.want, resp.StatusCode)
		})
	}
	require.Empty(t, a.relay.Served())
}
