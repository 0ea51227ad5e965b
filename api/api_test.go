package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/estuary-media/estuary/sfu"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClient is a publisher or subscriber with func-free counters.
type fakeClient struct {
	info   sfu.ClientInfo
	closed atomic.Int32
	bytes  atomic.Uint64
	mu     sync.Mutex
	tracks []string
}

func newFake(proto, addr string) *fakeClient {
	return &fakeClient{info: sfu.ClientInfo{ID: sfu.NewClientID(), Protocol: proto, RemoteAddr: addr, Started: time.Now().Add(-3 * time.Second)}}
}

func (f *fakeClient) Info() sfu.ClientInfo         { return f.info }
func (f *fakeClient) Close() error                 { f.closed.Add(1); return nil }
func (f *fakeClient) RequestKeyframe(string)       {}
func (f *fakeClient) Stats() sfu.WriterStats       { return sfu.WriterStats{Bytes: f.bytes.Load()} }
func (f *fakeClient) WriteRTP(p *rtp.Packet) error { f.bytes.Add(uint64(len(p.Payload))); return nil }
func (f *fakeClient) AddTrack(t *sfu.Track) (sfu.TrackWriter, error) {
	f.mu.Lock()
	f.tracks = append(f.tracks, t.ID())
	f.mu.Unlock()
	return f, nil
}

var (
	_ sfu.Publisher  = (*fakeClient)(nil)
	_ sfu.Subscriber = (*fakeClient)(nil)
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	hub  *sfu.Hub
	api  *API
	srv  *httptest.Server
	clk  *clock
	pub  *fakeClient
	p    *sfu.Publication
	subs []*fakeClient
}

// newFixture publishes live/test (H.264 video, AAC, Opus) with a WebRTC and an FLV viewer.
func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{hub: sfu.NewHub(sfu.Config{}, sfu.Deps{}), clk: &clock{t: time.Now()}}
	cfg.SampleInterval = time.Hour // the test drives sample() itself
	f.api = New(cfg, Deps{Hub: f.hub, Now: f.clk.now})
	mux := http.NewServeMux()
	f.api.Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() { f.srv.Close(); f.api.Close(); f.hub.Close() })

	f.pub = newFake("rtmp", "127.0.0.1:40000")
	var err error
	f.p, err = f.hub.Publish(context.Background(), "live/test", f.pub, []sfu.TrackInfo{
		{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "packetization-mode=1;profile-level-id=640028"}},
		{ID: "aac", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/mpeg4-generic", ClockRate: 44100, Channels: 2}},
		{ID: "audio", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}},
	})
	require.NoError(t, err)
	f.p.Track("video").SetDetails(sfu.Details{Profile: "High", Level: "4.0", Width: 1280, Height: 720})
	f.p.Track("aac").SetDetails(sfu.Details{Profile: "LC", SampleRate: 44100, Channels: 2})
	for _, proto := range []string{"webrtc", "flv"} {
		s := newFake(proto, "127.0.0.2:5000")
		unsub, err := f.hub.Subscribe(context.Background(), "live/test", s)
		require.NoError(t, err)
		t.Cleanup(unsub)
		f.subs = append(f.subs, s)
	}
	return f
}

// writeAudio writes n Opus packets of size bytes each.
func (f *fixture) writeAudio(t *testing.T, n, size int) {
	t.Helper()
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: 1}, Payload: make([]byte, size)}
	for i := 0; i < n; i++ {
		pkt.SequenceNumber++
		pkt.Timestamp += 960
		require.NoError(t, f.p.Track("audio").WriteRTP(&pkt))
	}
}

func getJSON(t *testing.T, url, token string, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, string(body))
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	if out != nil {
		require.NoError(t, json.Unmarshal(body, out), string(body))
	}
}

func TestStreamsEmpty(t *testing.T) {
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	a := New(Config{NodeID: "n1"}, Deps{Hub: hub})
	defer a.Close()
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var got map[string]any
	getJSON(t, srv.URL+"/api/v1/streams", "", 200, &got)
	require.Equal(t, map[string]any{"code": 0.0, "server": "n1", "streams": []any{}}, got)
	getJSON(t, srv.URL+"/api/v1/streams/live/none", "", 404, &got)
	require.Equal(t, 404.0, got["code"])
	getJSON(t, srv.URL+"/api/v1/nothing", "", 404, nil)
}

func TestStreamsSRSShape(t *testing.T) {
	f := newFixture(t, Config{NodeID: "n1"})
	f.writeAudio(t, 10, 100)

	var raw map[string]any
	getJSON(t, f.srv.URL+"/api/v1/streams", "", 200, &raw)
	require.Equal(t, 0.0, raw["code"])
	require.Equal(t, "n1", raw["server"])
	streams := raw["streams"].([]any)
	require.Len(t, streams, 1)
	s := streams[0].(map[string]any)
	for _, k := range []string{"id", "name", "vhost", "app", "url", "live_ms", "clients", "send_bytes", "recv_bytes", "kbps", "publish", "video", "audio", "protocol", "viewers", "tracks"} {
		require.Contains(t, s, k)
	}
	require.Equal(t, "test", s["name"])
	require.Equal(t, "live", s["app"])
	require.Equal(t, "__defaultVhost__", s["vhost"])
	require.Equal(t, "/live/test", s["url"])
	require.Equal(t, 3.0, s["clients"])
	require.Equal(t, "rtmp", s["protocol"])
	require.Equal(t, map[string]any{"webrtc": 1.0, "flv": 1.0}, s["viewers"])
	require.Equal(t, map[string]any{"active": true, "cid": f.pub.info.ID}, s["publish"])
	require.Equal(t, map[string]any{"codec": "H264", "profile": "High", "level": "4.0", "width": 1280.0, "height": 720.0}, s["video"])
	require.Equal(t, map[string]any{"codec": "AAC", "sample_rate": 44100.0, "channel": 2.0, "profile": "LC"}, s["audio"])
	require.Equal(t, 1000.0, s["recv_bytes"])
	require.Equal(t, 2000.0, s["send_bytes"]) // both viewers got every packet
	require.Len(t, s["tracks"], 3)
	require.Contains(t, s["kbps"], "recv_30s")
	require.Contains(t, s["kbps"], "send_30s")

	// One stream by key and by SRS id.
	var one streamReply
	getJSON(t, f.srv.URL+"/api/v1/streams/live/test", "", 200, &one)
	require.Equal(t, "live/test", one.Stream.Key)
	require.Equal(t, s["id"], one.Stream.ID)
	var byID streamReply
	getJSON(t, f.srv.URL+"/api/v1/streams/"+one.Stream.ID, "", 200, &byID)
	require.Equal(t, "live/test", byID.Stream.Key)
	getJSON(t, f.srv.URL+"/api/v1/streams/vid-nope", "", 404, nil)
}

func TestStreamWithoutAACReportsOpus(t *testing.T) {
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	a := New(Config{}, Deps{Hub: hub})
	defer a.Close()
	pub := newFake("webrtc", "127.0.0.1:1")
	_, err := hub.Publish(context.Background(), "app/s", pub, []sfu.TrackInfo{
		{ID: "audio", Kind: sfu.KindAudio, Codec: sfu.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}},
	})
	require.NoError(t, err)
	s := a.streamJSON(hub.Stream("app/s"))
	require.Nil(t, s.Video)
	require.Equal(t, &audioJSON{Codec: "opus", SampleRate: 48000, Channel: 2}, s.Audio)
	require.Equal(t, 1, s.Clients)
	require.Empty(t, s.Viewers)
}

// TestKbps: byte deltas over the window, sampled once a second.
func TestKbps(t *testing.T) {
	f := newFixture(t, Config{})
	f.api.sample()
	for i := 0; i < 40; i++ { // 40 s at 10 packets of 125 bytes a second = 10 kbit/s in, 20 out
		f.clk.add(time.Second)
		f.writeAudio(t, 10, 125)
		f.api.sample()
	}
	k := f.api.kbps(f.hub.Stream("live/test"))
	t.Logf("measured kbps %+v", k)
	require.Equal(t, kbpsJSON{Recv30s: 10, Send30s: 20}, k)
	// Silence: the 30 s window empties out.
	for i := 0; i < 31; i++ {
		f.clk.add(time.Second)
		f.api.sample()
	}
	require.Equal(t, kbpsJSON{}, f.api.kbps(f.hub.Stream("live/test")))
}

func TestClientsAndKick(t *testing.T) {
	f := newFixture(t, Config{NodeID: "n1"})
	var list clientsReply
	getJSON(t, f.srv.URL+"/api/v1/clients", "", 200, &list)
	require.Len(t, list.Clients, 3)
	byID := map[string]clientJSON{}
	for _, c := range list.Clients {
		byID[c.ID] = c
		require.Equal(t, "live/test", c.Stream)
		require.NotEmpty(t, c.Start)
		require.InDelta(t, 3.0, c.Alive, 1.0)
	}
	pub := byID[f.pub.info.ID]
	require.Equal(t, "publisher", pub.Type)
	require.True(t, pub.Publish)
	require.Equal(t, "rtmp", pub.Protocol)
	require.Equal(t, "127.0.0.1", pub.IP)
	require.Equal(t, "127.0.0.1:40000", pub.RemoteAddr)
	require.Equal(t, "flv", byID[f.subs[1].info.ID].Protocol)

	var one clientReply
	getJSON(t, f.srv.URL+"/api/v1/clients/"+f.subs[0].info.ID, "", 200, &one)
	require.Equal(t, "webrtc", one.Client.Protocol)

	del := func(id string) int {
		req, err := http.NewRequest(http.MethodDelete, f.srv.URL+"/api/v1/clients/"+id, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 200, del(f.subs[1].info.ID))
	require.Equal(t, int32(1), f.subs[1].closed.Load())
	require.Equal(t, int32(0), f.subs[0].closed.Load(), "only the kicked client is closed")
	require.Equal(t, int32(0), f.pub.closed.Load())
	require.Equal(t, 404, del("nobody"))
}

func TestToken(t *testing.T) {
	f := newFixture(t, Config{Token: "s3cret"})
	resp, err := http.Get(f.srv.URL + "/api/v1/streams")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 401, resp.StatusCode)
	require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
	getJSON(t, f.srv.URL+"/api/v1/streams", "wrong", 401, nil)
	getJSON(t, f.srv.URL+"/api/v1/streams", "s3cret", 200, nil)
	getJSON(t, f.srv.URL+"/api/v1/summaries", "s3cret", 200, nil)
	req, _ := http.NewRequest(http.MethodDelete, f.srv.URL+"/api/v1/clients/"+f.pub.info.ID, nil)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 401, resp.StatusCode)
	require.Equal(t, int32(0), f.pub.closed.Load())
}

func TestSummaries(t *testing.T) {
	f := newFixture(t, Config{NodeID: "n1", Version: "v9"})
	f.clk.add(90 * time.Second)
	var got summariesReply
	getJSON(t, f.srv.URL+"/api/v1/summaries", "", 200, &got)
	require.True(t, got.Data.OK)
	require.Equal(t, os.Getpid(), got.Data.Self.PID)
	require.Equal(t, "v9", got.Data.Self.Version)
	require.Greater(t, got.Data.Self.Goroutines, 1)
	require.Greater(t, got.Data.Self.MemKByte, uint64(0))
	require.Greater(t, got.Data.System.MemRAMKByte, uint64(0))
	require.Equal(t, int64(90), got.Data.Self.SRSUptime)
	require.Equal(t, 1, got.Data.Streams)
	require.Equal(t, 3, got.Data.Clients)
	t.Logf("rss %d KiB, goroutines %d", got.Data.Self.MemKByte, got.Data.Self.Goroutines)
}

func TestCPUSample(t *testing.T) {
	var c cpuSample
	t0 := time.Unix(0, 0)
	c.update(cpuReading{at: t0, procTicks: 100, sysTotal: 1000, idle: 800, ok: true})
	require.False(t, c.hasPercent)
	c.update(cpuReading{at: t0.Add(2 * time.Second), procTicks: 150, sysTotal: 1400, idle: 1100, ok: true})
	require.InDelta(t, 25.0, c.procPct, 0.001) // 50 ticks = 0.5 s over 2 s
	require.InDelta(t, 25.0, c.sysPct, 0.001)  // 100 busy of 400
	f := procStatFields([]byte("123 (a b) S 1 2 3 4 5 6 7 8 9 10 11 12"))
	require.Equal(t, "(a b)", f[1])
	require.Equal(t, "11", f[13])
	require.Equal(t, "12", f[14])
}

func TestCluster(t *testing.T) {
	f := newFixture(t, Config{NodeID: "n1", Advertise: "http://127.0.0.1:1"})
	var got struct {
		Code    int               `json:"code"`
		Cluster standaloneCluster `json:"cluster"`
	}
	getJSON(t, f.srv.URL+"/api/v1/cluster", "", 200, &got)
	require.Equal(t, "standalone", got.Cluster.Role)
	require.Len(t, got.Cluster.Nodes, 1)
	require.Equal(t, "n1", got.Cluster.Nodes[0].NodeID)
	require.True(t, got.Cluster.Nodes[0].Self)
	require.Equal(t, 1, got.Cluster.Nodes[0].Streams)
	require.Equal(t, 3, got.Cluster.Nodes[0].Clients)
	require.Equal(t, []clusterLease{{Key: "live/test", NodeID: "n1"}}, got.Cluster.Leases)
}

func TestClusterDeps(t *testing.T) {
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	a := New(Config{}, Deps{Hub: hub, Cluster: func(ctx context.Context) (any, error) {
		return map[string]any{"nodes": []string{"a", "b"}}, nil
	}})
	defer a.Close()
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var got map[string]any
	getJSON(t, srv.URL+"/api/v1/cluster", "", 200, &got)
	require.Equal(t, map[string]any{"nodes": []any{"a", "b"}}, got["cluster"])
}

// TestStreamGoneAfterUnpublish: the stream stays during grace (publish inactive) and the rates follow
// a new life of the key.
func TestPublishInactiveDuringGrace(t *testing.T) {
	f := newFixture(t, Config{})
	f.p.Close()
	var one streamReply
	getJSON(t, f.srv.URL+"/api/v1/streams/live/test", "", 200, &one)
	require.False(t, one.Stream.Publish.Active)
	require.Equal(t, "", one.Stream.Protocol)
	require.Equal(t, 2, one.Stream.Clients)
}
