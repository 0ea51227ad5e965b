package cascade

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

// fakePublisher is an sfu.Publisher whose Close ends its publication, as a real adapter's does.
type fakePublisher struct {
	id     string
	closed chan struct{}
	once   sync.Once
	pub    atomic.Pointer[sfu.Publication]
}

func newFakePublisher(id string) *fakePublisher {
	return &fakePublisher{id: id, closed: make(chan struct{})}
}

func (p *fakePublisher) Info() sfu.ClientInfo {
	return sfu.ClientInfo{ID: p.id, Protocol: "test", Started: time.Now()}
}

func (p *fakePublisher) Close() error {
	p.once.Do(func() {
		close(p.closed)
		if pub := p.pub.Load(); pub != nil {
			pub.Close()
		}
	})

	return nil
}

func (p *fakePublisher) RequestKeyframe(string) {}

var testTracks = []sfu.TrackInfo{{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/H264", ClockRate: 90000}}}

// testNode is a hub wired to a registry through the adapter, as cmd/estuary wires it.
type testNode struct {
	reg *registry
	hub *sfu.Hub
}

func newTestNode(t *testing.T, node newNodeFunc, cfg Config) testNode {
	reg := node(cfg)
	hub := sfu.NewHub(sfu.Config{Grace: 100 * time.Millisecond}, sfu.Deps{
		Logger:   testLogger(t),
		Registry: NewHubRegistry(reg, HubRegistryConfig{}, Deps{Logger: testLogger(t)}),
	})
	t.Cleanup(hub.Close)

	return testNode{reg: reg, hub: hub}
}

func (n testNode) publish(t *testing.T, key string, p *fakePublisher) error {
	t.Helper()
	pub, err := n.hub.Publish(context.Background(), key, p, testTracks)
	if err == nil {
		p.pub.Store(pub)
	}

	return err
}

func TestHubRegistryClaimAndRelease(t *testing.T) {
	node := memoryCluster(t)
	a, b := newTestNode(t, node, testConfig("a")), newTestNode(t, node, testConfig("b"))
	ctx := context.Background()
	const key = "live/test"

	pa := newFakePublisher("pa")
	require.NoError(t, a.publish(t, key, pa))
	rec, err := b.reg.Lookup(ctx, key)
	require.NoError(t, err)
	require.Equal(t, "a", rec.NodeID)

	err = b.publish(t, key, newFakePublisher("pb"))
	require.ErrorIs(t, err, sfu.ErrPublisherExists)
	require.Contains(t, err.Error(), `node "a"`)

	pa.Close() // the publication ends: the lease is released at once
	_, err = b.reg.Lookup(ctx, key)
	require.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, b.publish(t, key, newFakePublisher("pb")))
	rec, err = a.reg.Lookup(ctx, key)
	require.NoError(t, err)
	require.Equal(t, "b", rec.NodeID)
}

func TestHubRegistryTakeoverClosesFencedPublisher(t *testing.T) {
	node := memoryCluster(t)
	cfg := testConfig("a")
	a := newTestNode(t, node, cfg)
	bcfg := testConfig("b")
	bcfg.Takeover = true
	b := newTestNode(t, node, bcfg)
	const key = "live/test"

	pa := newFakePublisher("pa")
	require.NoError(t, a.publish(t, key, pa))
	require.NoError(t, b.publish(t, key, newFakePublisher("pb")))
	taken := time.Now()
	select {
	case <-pa.closed:
	case <-time.After(cfg.LeaseRefresh + time.Second):
		require.FailNow(t, "fenced publisher not closed within one refresh period")
	}
	t.Logf("fenced publisher closed %s after the takeover", time.Since(taken).Round(time.Millisecond))
	rec, err := a.reg.Lookup(context.Background(), key)
	require.NoError(t, err)
	require.Equal(t, "b", rec.NodeID, "the fenced node's release must not remove the new lease")
	time.Sleep(2 * cfg.LeaseRefresh)
	rec, err = a.reg.Lookup(context.Background(), key)
	require.NoError(t, err)
	require.Equal(t, "b", rec.NodeID)
}

// A local takeover (sfu.takeover) releases the old claim and claims again; claims are counted so
// overlapping ones keep the lease until the last Release.
func TestHubRegistryCountsClaims(t *testing.T) {
	reg, err := NewMemory(testConfig("a"), Deps{})
	require.NoError(t, err)
	defer reg.Close()
	h := NewHubRegistry(reg, HubRegistryConfig{}, Deps{})
	ctx := context.Background()
	const key = "live/test"
	require.NoError(t, h.Claim(ctx, key, newFakePublisher("p1")))
	require.NoError(t, h.Claim(ctx, key, newFakePublisher("p2")))
	h.Release(ctx, key)
	_, err = reg.Lookup(ctx, key)
	require.NoError(t, err, "one claim left: lease kept")
	h.Release(ctx, key)
	_, err = reg.Lookup(ctx, key)
	require.ErrorIs(t, err, ErrNotFound)
	h.Release(ctx, key) // unmatched: harmless
	require.Error(t, h.Claim(ctx, "bad", newFakePublisher("p3")))
}
