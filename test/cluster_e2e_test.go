//go:build e2e

package test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// clusterLeaseHolder returns the node_id holding key's lease as n's /api/v1/cluster shows it ("" if none).
func clusterLeaseHolder(t *testing.T, n *harness.Node, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	code, body, err := n.Get(ctx, "/api/v1/cluster")
	if err != nil || code != 200 {
		return ""
	}
	var got struct {
		Cluster struct {
			Leases []struct {
				Key    string `json:"key"`
				NodeID string `json:"node_id"`
			} `json:"leases"`
		} `json:"cluster"`
	}
	require.NoError(t, json.Unmarshal(body, &got), string(body))
	for _, l := range got.Cluster.Leases {
		if l.Key == key {
			return l.NodeID
		}
	}
	return ""
}

func startOrigin(t *testing.T, addr, id, redisURL string) *harness.Node {
	return harness.StartNode(t, harness.NodeOptions{Addr: addr, NodeID: id, Set: map[string]any{
		"role":              "origin",
		"cluster.redis":     redisURL,
		"cluster.node_ttl":  "1s",
		"cluster.advertise": "http://" + addr + ":1", // no relay in this test
	}})
}

// TestClusterLeaseTakeoverAfterKill (issue 8): two origins and Redis. A publish on origin A takes the
// stream lease; a publish of the same key on origin B while A lives is refused with a reason naming A;
// after kill -9 of A, a publish on B is accepted within node_ttl + 2 s (the dead node's lease is taken
// over before it expires).
func TestClusterLeaseTakeoverAfterKill(t *testing.T) {
	redis := harness.StartRedis(t)
	a := startOrigin(t, "127.0.0.11", "origin-a", redis.URL())
	b := startOrigin(t, "127.0.0.12", "origin-b", redis.URL())
	const key = "live/test"

	ffA := harness.FFmpegPush(t, a.RTMPURL(key), harness.FFmpegArgs{})
	defer ffA.Stop()
	deadline := time.Now().Add(15 * time.Second)
	for clusterLeaseHolder(t, b, key) != "origin-a" {
		require.True(t, time.Now().Before(deadline), "origin B never saw A's lease; A's log:\n%s", a.Logs())
		time.Sleep(100 * time.Millisecond)
	}

	// A lives: B refuses the publish, naming A.
	ffB := harness.FFmpegPush(t, b.RTMPURL(key), harness.FFmpegArgs{Duration: 5 * time.Second})
	require.Error(t, ffB.Wait(t, 10*time.Second), "ffmpeg's publish on B must be refused")
	require.Equal(t, "origin-a", clusterLeaseHolder(t, b, key))
	refusal := ""
	for _, line := range strings.Split(b.Logs(), "\n") {
		if strings.Contains(line, "already being published") && strings.Contains(line, "origin-a") {
			refusal = line
			break
		}
	}
	require.NotEmpty(t, refusal, "B's refusal names the holder; B's log:\n%s", b.Logs())
	t.Logf("refusal on B: %s", refusal)

	// kill -9 A: B accepts a new publisher once A's node record is gone (node_ttl 1s).
	require.Error(t, a.Kill())
	killed := time.Now()
	// A refused ffmpeg takes about a second to exit, so a new push starts every 300 ms whatever the
	// earlier ones do; the ones refused exit by themselves, the rest stop at cleanup.
	var accepted time.Duration
	attempts := 0
	var lastPush time.Time
	for ; accepted == 0; time.Sleep(50 * time.Millisecond) {
		require.Less(t, time.Since(killed), 10*time.Second, "B never accepted the publish; B's log:\n%s", b.Logs())
		if time.Since(lastPush) >= 300*time.Millisecond {
			attempts++
			ff := harness.FFmpegPush(t, b.RTMPURL(key), harness.FFmpegArgs{})
			defer ff.Stop()
			lastPush = time.Now()
		}
		if clusterLeaseHolder(t, b, key) == "origin-b" {
			accepted = time.Since(killed)
		}
	}
	t.Logf("publish on B accepted %s after kill -9 of A (%d pushes started; node_ttl 1s)", accepted.Round(time.Millisecond), attempts)
	require.Less(t, accepted, 3*time.Second, "within node_ttl + 2 s")
}

// TestClusterRedisOutageKeepsPublisher (issue 8): Redis stops for longer than a lease TTL (6 s) while an
// RTMP publisher streams to an origin: the publisher stays connected and, once Redis is back (empty),
// the lease is back within one refresh period (2 s).
func TestClusterRedisOutageKeepsPublisher(t *testing.T) {
	redis := harness.StartRedis(t)
	a := startOrigin(t, "127.0.0.11", "origin-a", redis.URL())
	const key = "live/test"
	ff := harness.FFmpegPush(t, a.RTMPURL(key), harness.FFmpegArgs{})
	defer ff.Stop()
	deadline := time.Now().Add(15 * time.Second)
	for clusterLeaseHolder(t, a, key) != "origin-a" {
		require.True(t, time.Now().Before(deadline), "no lease; log:\n%s", a.Logs())
		time.Sleep(100 * time.Millisecond)
	}

	redis.Stop()
	time.Sleep(7 * time.Second) // longer than the lease TTL
	select {
	case <-ff.Done():
		require.FailNow(t, "the publisher was disconnected during the outage", "log:\n%s", a.Logs())
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	code, body, err := a.Get(ctx, "/api/v1/streams/"+key)
	require.NoError(t, err)
	require.Equal(t, 200, code, "the stream is still published: %s", body)

	redis.Restart()
	back := time.Now()
	for clusterLeaseHolder(t, a, key) != "origin-a" {
		require.Less(t, time.Since(back), 5*time.Second, "lease not re-taken; log:\n%s", a.Logs())
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(back)
	t.Logf("lease back %s after Redis returned (refresh period 2s)", took.Round(time.Millisecond))
	require.Less(t, took, 3*time.Second, "within one refresh period (+1 s margin)")
	select {
	case <-ff.Done():
		require.FailNow(t, "the publisher was disconnected", "log:\n%s", a.Logs())
	default:
	}
}

// TestClusterTakeoverFencesOldOrigin: with cluster.takeover on, a publish on origin B of a key live on
// origin A is accepted, and A closes its publisher within one lease refresh period (2 s).
func TestClusterTakeoverFencesOldOrigin(t *testing.T) {
	redis := harness.StartRedis(t)
	a := startOrigin(t, "127.0.0.11", "origin-a", redis.URL())
	b := harness.StartNode(t, harness.NodeOptions{Addr: "127.0.0.12", NodeID: "origin-b", Set: map[string]any{
		"role":              "origin",
		"cluster.redis":     redis.URL(),
		"cluster.node_ttl":  "1s",
		"cluster.takeover":  true,
		"cluster.advertise": "http://127.0.0.12:1",
	}})
	const key = "live/test"
	ffA := harness.FFmpegPush(t, a.RTMPURL(key), harness.FFmpegArgs{})
	defer ffA.Stop()
	deadline := time.Now().Add(15 * time.Second)
	for clusterLeaseHolder(t, b, key) != "origin-a" {
		require.True(t, time.Now().Before(deadline), "no lease; log:\n%s", a.Logs())
		time.Sleep(100 * time.Millisecond)
	}

	ffB := harness.FFmpegPush(t, b.RTMPURL(key), harness.FFmpegArgs{})
	defer ffB.Stop()
	for clusterLeaseHolder(t, a, key) != "origin-b" {
		require.True(t, time.Now().Before(deadline.Add(10*time.Second)), "B never took the lease; log:\n%s", b.Logs())
		time.Sleep(50 * time.Millisecond)
	}
	taken := time.Now()
	select {
	case <-ffA.Done():
		t.Logf("A's publisher closed %s after B took the lease", time.Since(taken).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		require.FailNow(t, "A kept its fenced publisher", "A's log:\n%s", a.Logs())
	}
	time.Sleep(2500 * time.Millisecond) // more than a refresh period: nobody takes it back
	require.Equal(t, "origin-b", clusterLeaseHolder(t, a, key))
	select {
	case <-ffB.Done():
		require.FailNow(t, "B's publisher ended", "B's log:\n%s", b.Logs())
	default:
	}
}
