//go:build e2e

package test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// videoGaps returns the number of sequence numbers missing from pkts (late NACK retransmissions are
// not gaps) and the longest arrival gap after t0.
func videoGaps(pkts []rtmpRecv, t0 time.Time) (missing int, longest time.Duration, resumed time.Time) {
	seen := map[uint16]bool{}
	for _, p := range pkts {
		seen[p.pkt.SequenceNumber] = true
	}
	if len(pkts) > 0 {
		first, last := pkts[0].pkt.SequenceNumber, pkts[len(pkts)-1].pkt.SequenceNumber
		for sn := first; sn != last; sn++ {
			if !seen[sn] {
				missing++
			}
		}
	}
	for i := 1; i < len(pkts); i++ {
		if pkts[i].at.Before(t0) {
			continue
		}
		if d := pkts[i].at.Sub(pkts[i-1].at); d > longest {
			longest, resumed = d, pkts[i].at
		}
	}
	return missing, longest, resumed
}

// TestClusterEdgeFailover (issue 9): Redis, two origins and an edge. The edge refuses a publisher,
// naming the origins. ffmpeg publishes to origin A; two WHEP viewers on the edge play it through a
// relay. kill -9 of A; ffmpeg publishes again to origin C (retrying until C accepts: A's node record
// expires after node_ttl 1s); the edge re-attaches to C and its viewers keep their sessions and get
// media again within 3 s of the accepted republish, with continuous sequence numbers.
func TestClusterEdgeFailover(t *testing.T) {
	redis := harness.StartRedis(t)
	a := startRelayOrigin(t, "127.0.0.11", "origin-a", redis.URL())
	c := startRelayOrigin(t, "127.0.0.13", "origin-c", redis.URL())
	edge := harness.StartNode(t, harness.NodeOptions{Addr: "127.0.0.21", NodeID: "edge-1", Set: map[string]any{
		"role":             "edge",
		"cluster.redis":    redis.URL(),
		"cluster.node_ttl": "1s",
		"cluster.token":    clusterTestToken,
		"cluster.origins":  []any{strings.TrimPrefix(a.HTTPURL, "http://"), strings.TrimPrefix(c.HTTPURL, "http://")},
	}})
	const key = "live/test"

	// An edge takes no publishers.
	ffEdge := harness.FFmpegPush(t, edge.RTMPURL(key), harness.FFmpegArgs{Duration: 3 * time.Second})
	require.Error(t, ffEdge.Wait(t, 10*time.Second), "the edge refuses the publish")
	refusal := ""
	for _, line := range strings.Split(edge.Logs(), "\n") {
		if strings.Contains(line, "edge node takes no publishers") && strings.Contains(line, a.HTTPURL[len("http://"):]) {
			refusal = line
			break
		}
	}
	require.NotEmpty(t, refusal, "the refusal names the origins; edge log:\n%s", edge.Logs())

	ffA := harness.FFmpegPush(t, a.RTMPURL(key), harness.FFmpegArgs{})
	defer ffA.Stop()
	viewers := []*rtmpViewer{rtmpWHEP(t, edge, key), rtmpWHEP(t, edge, key)}
	require.Eventually(t, func() bool {
		for _, v := range viewers {
			if len(v.packets("video")) < 20 || len(v.packets("audio")) == 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "the edge's viewers play; edge log:\n%s", edge.Logs())
	require.Equal(t, map[string]int{key: 1}, clusterRelays(t, a), "one relay from A to the edge")

	require.Error(t, a.Kill())
	killed := time.Now()
	var accepted time.Time
	var lastPush time.Time
	for accepted.IsZero() {
		require.Less(t, time.Since(killed), 10*time.Second, "C never accepted the publish; C's log:\n%s", c.Logs())
		if time.Since(lastPush) >= 300*time.Millisecond {
			ff := harness.FFmpegPush(t, c.RTMPURL(key), harness.FFmpegArgs{})
			defer ff.Stop()
			lastPush = time.Now()
		}
		if clusterLeaseHolder(t, c, key) == "origin-c" {
			accepted = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("republish on C accepted %s after kill -9 of A", accepted.Sub(killed).Round(time.Millisecond))
	counts := make([]int, len(viewers))
	for i, v := range viewers {
		counts[i] = len(v.packets("video"))
	}
	require.Eventually(t, func() bool {
		for i, v := range viewers {
			if len(v.packets("video")) < counts[i]+25 || len(v.packets("audio")) == 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "media again after the failover; edge log:\n%s", edge.Logs())
	for i, v := range viewers {
		pk := v.packets("video")
		missing, longest, resumed := videoGaps(pk, killed)
		// Media again: the first packet after the longest gap, measured from the accepted republish.
		again := resumed.Sub(accepted)
		t.Logf("viewer %d: %d video packets, %d sequence numbers missing, longest gap %s, media again %s after the accepted republish (%s after the kill)",
			i, len(pk), missing, longest.Round(time.Millisecond), again.Round(time.Millisecond), resumed.Sub(killed).Round(time.Millisecond))
		require.Less(t, again, 3*time.Second, "viewer %d: media again within 3 s of the republish", i)
		require.LessOrEqual(t, missing, 5, "viewer %d: continuous sequence numbers", i)
		require.Equal(t, "connected", v.pc.ConnectionState().String(), "viewer %d keeps its session", i)
	}
	require.Equal(t, map[string]int{key: 1}, clusterRelays(t, c), "one relay from C to the edge")
}
