//go:build e2e

package test

import (
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// benchViewer is a light pion WHEP viewer that only counts the packets it reads.
type benchViewer struct {
	pc      *webrtc.PeerConnection
	packets atomic.Int64
}

func benchWHEP(tb testing.TB, api *webrtc.API, baseURL, key string) *benchViewer {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		require.NoError(tb, err)
		v := &benchViewer{pc: pc}
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			_, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
			require.NoError(tb, err)
		}
		pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			buf := make([]byte, 1500)
			for {
				if _, _, err := tr.Read(buf); err != nil {
					return
				}
				v.packets.Add(1)
			}
		})
		offer, err := pc.CreateOffer(nil)
		require.NoError(tb, err)
		gathered := webrtc.GatheringCompletePromise(pc)
		require.NoError(tb, pc.SetLocalDescription(offer))
		<-gathered
		resp, err := http.Post(baseURL+"/whep/"+key, "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
		require.NoError(tb, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			require.NoError(tb, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}))
			tb.Cleanup(func() { _ = pc.Close() })
			return v
		}
		_ = pc.Close()
		require.True(tb, time.Now().Before(deadline), "WHEP %s: %d %s", key, resp.StatusCode, body)
		time.Sleep(200 * time.Millisecond)
	}
}

func benchAPI(tb testing.TB) *webrtc.API {
	me := &webrtc.MediaEngine{}
	require.NoError(tb, me.RegisterDefaultCodecs())
	ir := &interceptor.Registry{}
	require.NoError(tb, webrtc.RegisterDefaultInterceptors(me, ir))
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// measureCPU plays viewers (spread over targets) for 8 s and returns the CPU time the pid used per
// second of wall time, and the packets the viewers got per second.
func measureCPU(b *testing.B, pid int, targets []string, viewers int, key string) (cpuPerSec float64, pps float64) {
	api := benchAPI(b)
	var vs []*benchViewer
	for i := range viewers {
		vs = append(vs, benchWHEP(b, api, targets[i%len(targets)], key))
	}
	time.Sleep(2 * time.Second) // past the GOP bursts
	var p0 int64
	for _, v := range vs {
		p0 += v.packets.Load()
	}
	c0, t0 := procCPU(b, pid), time.Now()
	time.Sleep(8 * time.Second)
	c1, el := procCPU(b, pid), time.Since(t0)
	var p1 int64
	for _, v := range vs {
		p1 += v.packets.Load()
		_ = v.pc.Close()
	}
	return (c1 - c0).Seconds() / el.Seconds(), float64(p1-p0) / el.Seconds()
}

// BenchmarkClusterOriginCPU (issue 9): the origin's CPU with three edges serving ESTUARY_BENCH_VIEWERS
// (default 300) WHEP viewers, against one standalone node serving them all.
// Run: go test -tags e2e -run '^$' -bench ClusterOriginCPU -benchtime 1x ./test/
func BenchmarkClusterOriginCPU(b *testing.B) {
	viewers := 300
	if v, err := strconv.Atoi(os.Getenv("ESTUARY_BENCH_VIEWERS")); err == nil && v > 0 {
		viewers = v
	}
	const key = "live/bench"
	for b.Loop() {
		redis := harness.StartRedis(b)
		origin := harness.StartNode(b, harness.NodeOptions{Addr: "127.0.0.11", NodeID: "origin1", Set: map[string]any{
			"role": "origin", "cluster.redis": redis.URL(), "cluster.token": clusterTestToken, "log.level": "info",
		}})
		var edges []string
		for i := 1; i <= 3; i++ {
			e := harness.StartNode(b, harness.NodeOptions{Addr: "127.0.0.2" + strconv.Itoa(i), NodeID: "edge" + strconv.Itoa(i), Set: map[string]any{
				"role": "edge", "cluster.redis": redis.URL(), "cluster.token": clusterTestToken, "log.level": "info",
			}})
			edges = append(edges, e.HTTPURL)
		}
		ff := harness.FFmpegPush(b, origin.RTMPURL(key), harness.FFmpegArgs{Size: "640x360"})
		clusterCPU, clusterPPS := measureCPU(b, origin.PID, edges, viewers, key)
		ff.Stop()

		single := harness.StartNode(b, harness.NodeOptions{Addr: "127.0.0.31", Set: map[string]any{"log.level": "info"}})
		ff2 := harness.FFmpegPush(b, single.RTMPURL(key), harness.FFmpegArgs{Size: "640x360"})
		singleCPU, singlePPS := measureCPU(b, single.PID, []string{single.HTTPURL}, viewers, key)
		ff2.Stop()

		b.ReportMetric(clusterCPU*100, "origin_cpu_%")
		b.ReportMetric(singleCPU*100, "standalone_cpu_%")
		b.Logf("%d viewers: origin with 3 edges %.1f%% of a core (viewers got %.0f pkt/s); standalone %.1f%% of a core (%.0f pkt/s)",
			viewers, clusterCPU*100, clusterPPS, singleCPU*100, singlePPS)
	}
}
