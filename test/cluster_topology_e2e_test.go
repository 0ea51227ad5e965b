//go:build e2e

package test

import (
	"context"
	"fmt"
	"hash/crc32"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// topologyViewersPerEdge is how many WHEP viewers each edge gets (the origin must still serve one
// relay per edge).
const topologyViewersPerEdge = 30

// relayHopLatency matches the video payloads a viewer on the origin and one on an edge received live
// (from since on; payloads seen more than once, like repeated parameter sets, are left out) and
// returns the p50 and p99 of the extra arrival delay on the edge.
func relayHopLatency(origin, edge []rtmpRecv, since time.Time) (p50, p99 time.Duration, n int) {
	type seen struct {
		at    time.Time
		count int
	}
	index := func(pkts []rtmpRecv) map[uint32]*seen {
		m := map[uint32]*seen{}
		for _, p := range pkts {
			if p.at.Before(since) {
				continue
			}
			c := crc32.ChecksumIEEE(p.pkt.Payload)
			if s := m[c]; s != nil {
				s.count++
			} else {
				m[c] = &seen{at: p.at, count: 1}
			}
		}
		return m
	}
	om, em := index(origin), index(edge)
	var d []time.Duration
	for c, e := range em {
		if o := om[c]; o != nil && o.count == 1 && e.count == 1 {
			d = append(d, e.at.Sub(o.at))
		}
	}
	if len(d) == 0 {
		return 0, 0, 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2], d[len(d)*99/100], len(d)
}

// TestClusterTopology (issue 9): the reference deployment on this machine: Redis; origins
// origin1-3 on 127.0.0.11-13; edges edge1-3 on 127.0.0.21-23 (SRS API on their own address); haproxy on
// 127.0.0.10:19350 over the origins and nginx on 127.0.0.10:8088 over the edges, from configs/haproxy.cfg
// and configs/nginx.conf with the addresses substituted. The nodes listen on the ports (origins
// RTMP :19350 and HTTP :9090, edges RTMP :1935 and HTTP :8080: each on its own loopback address, so
// fixed ports collide with nothing); WebRTC and SRS API ports are free ports of each node's address.
// ffmpeg pushes through haproxy; through nginx a pion WHEP viewer plays, ffprobe reads HTTP-FLV and
// HLS (the /live/test.m3u8 redirect to /n/{edge}/hls/... is routed by nginx to that edge);
// /api/v1/cluster names the origin; three edges with many viewers each cost the origin three relays;
// exactly one Access-Control-Allow-Origin header through nginx; the relay hop latency is printed; then
// kill -9 of the origin holding the stream, ffmpeg pushes again through haproxy and the viewers on the
// edges get media again within 3 s with continuous sequence numbers, and the FLV reader keeps reading.
func TestClusterTopology(t *testing.T) {
	redis := harness.StartRedis(t)
	var origins, edges []*harness.Node
	for i := 1; i <= 3; i++ {
		origins = append(origins, harness.StartNode(t, harness.NodeOptions{
			Addr: "127.0.0.1" + strconv.Itoa(i), NodeID: "origin" + strconv.Itoa(i), RTMPPort: 19350, HTTPPort: 9090, Set: map[string]any{
				"role": "origin", "cluster.redis": redis.URL(), "cluster.node_ttl": "1s",
				"cluster.token": clusterTestToken, "http.cors": "",
			}}))
	}
	var originAddrs []any
	for _, o := range origins {
		originAddrs = append(originAddrs, strings.TrimPrefix(o.HTTPURL, "http://"))
	}
	for i := 1; i <= 3; i++ {
		edges = append(edges, harness.StartNode(t, harness.NodeOptions{
			Addr: "127.0.0.2" + strconv.Itoa(i), NodeID: "edge" + strconv.Itoa(i), RTMPPort: 1935, HTTPPort: 8080, SRSAPI: true, Set: map[string]any{
				"role": "edge", "cluster.redis": redis.URL(), "cluster.node_ttl": "1s",
				"cluster.token": clusterTestToken, "cluster.origins": originAddrs, "http.cors": "",
			}}))
	}
	hap := harness.ClusterConfig(t, "haproxy.cfg")
	hap = harness.ClusterSubstitute(t, hap, "0.0.0.0:19350", "127.0.0.10:19350",
		"192.168.25.131:19350", origins[0].RTMPAddr, "192.168.25.132:19350", origins[1].RTMPAddr,
		"192.168.25.133:19350", origins[2].RTMPAddr)
	harness.StartHAProxy(t, hap, "127.0.0.10:19350")
	ngx := harness.ClusterConfig(t, "nginx.conf")
	ngx = harness.ClusterSubstitute(t, ngx, "listen 80;", "listen 127.0.0.10:8088;",
		"192.168.25.131:8080", strings.TrimPrefix(edges[0].HTTPURL, "http://"),
		"192.168.25.132:8080", strings.TrimPrefix(edges[1].HTTPURL, "http://"),
		"192.168.25.133:8080", strings.TrimPrefix(edges[2].HTTPURL, "http://"))
	harness.StartNginx(t, ngx, "127.0.0.10:8088")
	const nginxURL = "http://127.0.0.10:8088"
	const key = "live/test"
	byID := map[string]*harness.Node{}
	for _, o := range origins {
		byID[o.NodeID] = o
	}

	ff := harness.FFmpegPush(t, "rtmp://127.0.0.10:19350/"+key, harness.FFmpegArgs{})
	defer ff.Stop()
	holder := ""
	deadline := time.Now().Add(15 * time.Second)
	for holder == "" {
		require.True(t, time.Now().Before(deadline), "no origin took the stream; ffmpeg: %s", ff.Stderr())
		holder = clusterLeaseHolder(t, edges[0], key)
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the stream is on %s (through haproxy)", holder)
	origin := byID[holder]
	require.NotNil(t, origin)
	for _, o := range origins {
		require.Equal(t, o.Addr+":19350", o.RTMPAddr)
		require.Equal(t, "http://"+o.Addr+":9090", o.HTTPURL)
	}
	for _, e := range edges {
		require.Equal(t, e.Addr+":1935", e.RTMPAddr)
		require.Equal(t, "http://"+e.Addr+":8080", e.HTTPURL)
		require.True(t, strings.HasPrefix(e.SRSAPIURL, "http://"+e.Addr+":"), e.SRSAPIURL)
	}
	// Start each edge's HLS muxer now (a first request waits for a segment), so the HLS checks through
	// nginx below find segments on whichever edge they land on.
	hlsWarm := make(chan int, len(edges))
	for _, e := range edges {
		go func() {
			code := 0
			c := &http.Client{Timeout: 15 * time.Second}
			if resp, err := c.Get(e.HTTPURL + "/" + key + ".m3u8"); err == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
			hlsWarm <- code
		}()
	}

	// Through nginx: /api/v1/cluster names the origin, exactly one CORS header.
	resp, err := http.Get(nginxURL + "/api/v1/cluster")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, []string{"*"}, resp.Header.Values("Access-Control-Allow-Origin"), "exactly one header through nginx")
	require.Equal(t, holder, clusterLeaseHolder(t, &harness.Node{HTTPURL: nginxURL}, key))

	// A pion WHEP viewer through nginx, and one per edge plus one on the origin for the hop latency.
	viaNginx := rtmpWHEP(t, &harness.Node{HTTPURL: nginxURL}, key)
	onOrigin := rtmpWHEP(t, origin, key)
	var watched []*rtmpViewer
	for _, e := range edges {
		watched = append(watched, rtmpWHEP(t, e, key))
	}
	req, err := http.NewRequest(http.MethodOptions, nginxURL+"/whep/"+key, nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "http://example.test")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Len(t, resp.Header.Values("Access-Control-Allow-Origin"), 1, "preflight through nginx")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	flv := &flvReader{}
	flvDone := make(chan struct{})
	go func() { defer close(flvDone); flv.run(ctx, nginxURL+"/"+key+".flv") }()
	defer func() { cancel(); <-flvDone }()
	flvProbeURL(t, nginxURL+"/"+key+".flv", 2, 1, "h264", "aac")

	// Chromium plays /play.html (WHEP) through nginx.
	browser := harness.NewBrowser(t, harness.BrowserOptions{})
	player := browser.NewPage()
	defer player.Close()
	require.NoError(t, player.Open(nginxURL+"/play.html?stream="+key+"&autoplay=1"))
	browserPlayChecks(t, player, "H264")

	liveSince := time.Now() // both hop-latency viewers play live from here on

	// Many viewers per edge: still one relay per edge.
	for _, e := range edges {
		for range topologyViewersPerEdge - 1 {
			rtmpWHEP(t, e, key)
		}
	}
	require.Eventually(t, func() bool {
		for _, v := range append(watched, viaNginx, onOrigin) {
			if len(v.packets("video")) < 25 || len(v.packets("audio")) == 0 {
				return false
			}
		}
		return atomic.LoadInt64(&flv.bytes) > 10000
	}, 15*time.Second, 50*time.Millisecond, "every watched viewer plays")
	require.Equal(t, map[string]int{key: 3}, clusterRelays(t, origin), "the origin serves exactly three relays")
	// HLS through nginx (also gives the hop latency more samples): the entry point redirects to
	// /n/{edge}/hls/..., which nginx routes to that edge; ffprobe reads both streams.
	hlsStart := time.Now()
	for range edges {
		t.Logf("HLS warm-up request on an edge: %d", <-hlsWarm)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get(nginxURL + "/" + key + ".m3u8")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc := resp.Header.Get("Location")
	var hlsEdge *harness.Node
	for _, e := range edges {
		if loc == "/n/"+e.NodeID+"/hls/"+key+"/index.m3u8" {
			hlsEdge = e
		}
	}
	require.NotNil(t, hlsEdge, "the redirect names an edge's muxer: %q", loc)
	for range 3 { // several requests: round robin must not matter for /n/{node_id}/ paths
		r := hlsGet(t, nginxURL+loc)
		require.Equal(t, http.StatusOK, r.code, "%s through nginx: %s", loc, r.body)
		require.Equal(t, []string{"*"}, r.header.Values("Access-Control-Allow-Origin"), "one CORS header on HLS")
		uris := hlsURIs(r.body)
		require.NotEmpty(t, uris, r.body)
		m := hlsGet(t, r.url[:strings.LastIndexByte(r.url, '/')+1]+uris[0])
		require.Equal(t, http.StatusOK, m.code, "media playlist through nginx: %s", m.body)
	}
	flvProbeURL(t, nginxURL+"/"+key+".m3u8", 4, 2, "h264", "aac")
	t.Logf("HLS through nginx (redirected to %s) checked in %s", hlsEdge.NodeID, time.Since(hlsStart).Round(time.Millisecond))
	if d := time.Until(hlsStart.Add(2 * time.Second)); d > 0 {
		time.Sleep(d) // 2 s more samples for the hop latency
	}
	p50, p99, n := relayHopLatency(onOrigin.packets("video"), watched[0].packets("video"), liveSince)
	require.Positive(t, n, "packets matched between the origin and the edge")
	t.Logf("relay hop latency (edge viewer vs origin viewer, %d video packets): p50 %s, p99 %s", n, p50, p99)

	// Failover: kill -9 of the origin; ffmpeg pushes again through haproxy until an origin accepts.
	require.Error(t, origin.Kill())
	killed := time.Now()
	ff.Stop() // its connection died with the origin
	var accepted time.Time
	var lastPush time.Time
	newHolder := ""
	for accepted.IsZero() {
		require.Less(t, time.Since(killed), 15*time.Second, "no origin accepted the republish")
		if time.Since(lastPush) >= 500*time.Millisecond {
			p := harness.FFmpegPush(t, "rtmp://127.0.0.10:19350/"+key, harness.FFmpegArgs{})
			defer p.Stop()
			lastPush = time.Now()
		}
		if h := clusterLeaseHolder(t, edges[0], key); h != "" && h != holder {
			accepted, newHolder = time.Now(), h
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("republish through haproxy accepted by %s %s after kill -9 of %s", newHolder, accepted.Sub(killed).Round(time.Millisecond), holder)
	counts := make([]int, len(watched))
	for i, v := range watched {
		counts[i] = len(v.packets("video"))
	}
	flvBytes := atomic.LoadInt64(&flv.bytes)
	require.Eventually(t, func() bool {
		for i, v := range watched {
			if len(v.packets("video")) < counts[i]+25 {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "media again on every edge")
	for i, v := range append(watched, viaNginx) {
		missing, longest, resumed := videoGaps(v.packets("video"), killed)
		again := resumed.Sub(accepted)
		t.Logf("viewer %d: %d sequence numbers missing, longest gap %s, media again %s after the accepted republish",
			i, missing, longest.Round(time.Millisecond), again.Round(time.Millisecond))
		require.Less(t, again, 3*time.Second, "viewer %d: media again within 3 s", i)
		require.LessOrEqual(t, missing, 5, "viewer %d: continuous sequence numbers", i)
		require.Equal(t, "connected", v.pc.ConnectionState().String(), "viewer %d keeps its session", i)
	}
	var decoded int64
	require.NoError(t, player.Eval(`window.estuary.stats.inbound.video.framesDecoded`, &decoded))
	_, err = player.WaitFor(fmt.Sprintf(`window.estuary.stats.inbound.video.framesDecoded > %d`, decoded+25), 10*time.Second)
	require.NoError(t, err, "Chromium keeps decoding after the failover")
	require.Eventually(t, func() bool { return atomic.LoadInt64(&flv.bytes) > flvBytes+10000 }, 10*time.Second, 50*time.Millisecond,
		"the HTTP-FLV reader through nginx keeps reading (err %v)", flv.err)
	require.NoError(t, flv.err)
	require.Equal(t, map[string]int{key: 3}, clusterRelays(t, byID[newHolder]), "three relays from the new origin")
}
