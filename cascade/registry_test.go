package cascade

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/estuary-media/estuary/sfu"
)

func TestMain(m *testing.M) {
	RedirectRedisLogs(nil, 0) // go-redis's dial errors during the outage test stay out of the output
	goleak.VerifyTestMain(m)
}

// testConfig is a node config with short TTLs so the suite runs in seconds.
func testConfig(nodeID string) Config {
	return Config{
		NodeID:       nodeID,
		Role:         RoleOrigin,
		Advertise:    "http://127.0.0.1:9090",
		NodeTTL:      time.Second,
		LeaseTTL:     2500 * time.Millisecond, // 5 refreshes: slack for a loaded CI machine
		LeaseRefresh: 500 * time.Millisecond,
		OpTimeout:    time.Second,
		SafetyPoll:   200 * time.Millisecond,
	}
}

// newNodeFunc starts one node of the current test's cluster; the node is closed in t.Cleanup.
type newNodeFunc func(cfg Config) *registry

// clusterFactory makes a fresh, empty cluster for one test.
type clusterFactory func(t *testing.T) newNodeFunc

func memoryCluster(t *testing.T) newNodeFunc {
	store := NewMemoryStore()

	return func(cfg Config) *registry {
		r, err := NewMemory(cfg, Deps{Memory: store, Logger: testLogger(t)})
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })

		return r.(*registry)
	}
}

// redisCluster returns a factory over one redis-server: each test starts from an empty database.
func redisCluster(t *testing.T, srv *testRedis) clusterFactory {
	return func(t *testing.T) newNodeFunc {
		flushRedis(t, srv.Addr)

		return func(cfg Config) *registry {
			r, err := NewRedis(RedisConfig{Config: cfg, URL: srv.URL()}, Deps{Logger: testLogger(t)})
			require.NoError(t, err)
			t.Cleanup(func() { _ = r.Close() })

			return r.(*registry)
		}
	}
}

func flushRedis(t *testing.T, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer c.Close()
	require.NoError(t, c.FlushAll(context.Background()).Err())
}

func TestRegistryContractMemory(t *testing.T) {
	t.Parallel() // the suites mostly sleep through TTLs
	runRegistryContract(t, memoryCluster)
}

func TestRegistryContractRedis(t *testing.T) {
	t.Parallel()
	srv := startTestRedis(t)
	runRegistryContract(t, redisCluster(t, srv))
}

// eventually polls cond every 10ms until it holds or d passes; it returns how long it took.
func eventually(t *testing.T, d time.Duration, msg string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > d {
			require.FailNow(t, "timed out: "+msg, "after %s", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lookupToken(r *registry, key string) string {
	rec, err := r.Lookup(context.Background(), key)
	if err != nil {
		return ""
	}

	return rec.OwnerToken
}

// runRegistryContract is the one suite both implementations must pass.
func runRegistryContract(t *testing.T, newCluster clusterFactory) {
	ctx := context.Background()
	const key = "live/test"

	t.Run("lease taken once", func(t *testing.T) {
		node := newCluster(t)
		a, b := node(testConfig("a")), node(testConfig("b"))
		la, err := a.Acquire(ctx, key, AcquireOptions{})
		require.NoError(t, err)
		rec := la.Record()
		require.Equal(t, "a", rec.NodeID)
		require.Equal(t, "http://127.0.0.1:9090/relay/v1/live/test", rec.RelayURL)
		require.NotEmpty(t, rec.OwnerToken)

		_, err = b.Acquire(ctx, key, AcquireOptions{})
		require.ErrorIs(t, err, sfu.ErrPublisherExists)
		var held *HeldError
		require.ErrorAs(t, err, &held)
		require.Equal(t, rec, held.Holder)
		require.Contains(t, err.Error(), `node "a"`)
		require.Contains(t, err.Error(), rec.RelayURL)

		_, err = a.Acquire(ctx, key, AcquireOptions{}) // the same node again: refused too
		require.ErrorIs(t, err, sfu.ErrPublisherExists)

		got, err := b.Lookup(ctx, key)
		require.NoError(t, err)
		require.Equal(t, rec.OwnerToken, got.OwnerToken)
		require.True(t, rec.StartedAt.Equal(got.StartedAt))
		_, err = b.Lookup(ctx, "live/other")
		require.ErrorIs(t, err, ErrNotFound)
		require.ErrorIs(t, err, sfu.ErrStreamNotFound)
		_, err = b.Lookup(ctx, "bad key")
		require.ErrorIs(t, err, sfu.ErrInvalidKey)
		_, err = a.Acquire(ctx, "../x", AcquireOptions{})
		require.ErrorIs(t, err, sfu.ErrInvalidKey)
	})

	t.Run("refreshed by its owner only", func(t *testing.T) {
		node := newCluster(t)
		cfg := testConfig("a")
		a, b := node(cfg), node(testConfig("b"))
		la, err := a.Acquire(ctx, key, AcquireOptions{})
		require.NoError(t, err)
		time.Sleep(cfg.LeaseTTL + cfg.LeaseRefresh) // the owner's refreshes keep it
		require.Equal(t, la.Record().OwnerToken, lookupToken(b, key))

		a.paused.Store(true) // the owner stalls; another owner's refreshes must not extend the lease
		stalled := time.Now()
		for time.Since(stalled) < cfg.LeaseTTL-3*cfg.LeaseRefresh/2 {
			res, holder, err := b.be.refresh(ctx, StreamPrefix+key, "not-the-owner", []byte(`{}`), cfg.LeaseTTL)
			require.NoError(t, err)
			require.Equal(t, refreshLost, res)
			require.Equal(t, la.val, holder)
			time.Sleep(50 * time.Millisecond)
		}
		took := eventually(t, 2*cfg.LeaseTTL, "lease expiry", func() bool { return lookupToken(b, key) == "" })
		t.Logf("lease expired %s after the owner stalled (TTL %s)", time.Since(stalled).Round(time.Millisecond), cfg.LeaseTTL)
		require.Less(t, took, cfg.LeaseTTL+time.Second)
		require.False(t, la.isLost(), "not lost while nobody else holds it")
	})

	t.Run("expiry after TTL", func(t *testing.T) {
		node := newCluster(t)
		cfg := testConfig("a")
		a := node(cfg)
		_, err := a.Acquire(ctx, key, AcquireOptions{})
		require.NoError(t, err)
		time.Sleep(cfg.LeaseRefresh / 2)
		a.paused.Store(true)
		stalled := time.Now()
		took := eventually(t, 3*cfg.LeaseTTL, "lease expiry", func() bool { return lookupToken(a, key) == "" })
		t.Logf("lease gone %s after its last possible refresh (TTL %s)", took.Round(time.Millisecond), cfg.LeaseTTL)
		require.GreaterOrEqual(t, time.Since(stalled), cfg.LeaseTTL-cfg.LeaseRefresh, "expired early")
		require.Less(t, took, cfg.LeaseTTL+time.Second)
	})

	t.Run("stale owner cannot overwrite refresh or release a new one", func(t *testing.T) {
		node := newCluster(t)
		cfg := testConfig("a")
		a, b := node(cfg), node(testConfig("b"))
		lost := make(chan Record, 1)
		la, err := a.Acquire(ctx, key, AcquireOptions{OnLost: func(h Record) { lost <- h }})
		require.NoError(t, err)
		a.paused.Store(true)
		eventually(t, 3*cfg.LeaseTTL, "lease expiry", func() bool { return lookupToken(b, key) == "" })
		lb, err := b.Acquire(ctx, key, AcquireOptions{})
		require.NoError(t, err)
		bTok := lb.Record().OwnerToken

		// the stale owner's store operations all fail against the new lease
		ok, err := a.be.release(ctx, StreamPrefix+key, la.Record().OwnerToken)
		require.NoError(t, err)
		require.False(t, ok)
		ok, err = a.be.replace(ctx, StreamPrefix+key, la.val, la.val, cfg.LeaseTTL)
		require.NoError(t, err)
		require.False(t, ok)
		res, _, err := a.be.refresh(ctx, StreamPrefix+key, la.Record().OwnerToken, la.val, cfg.LeaseTTL)
		require.NoError(t, err)
		require.Equal(t, refreshLost, res)
		require.Equal(t, bTok, lookupToken(b, key))

		// the stale owner wakes up: its next refresh round finds the lease lost
		a.paused.Store(false)
		woke := time.Now()
		select {
		case h := <-lost:
			require.Equal(t, "b", h.NodeID)
			require.Equal(t, bTok, h.OwnerToken)
		case <-time.After(cfg.LeaseRefresh + time.Second):
			require.FailNow(t, "lease-lost did not fire within a refresh period (+1s margin)")
		}
		t.Logf("stale owner noticed the loss %s after waking", time.Since(woke).Round(time.Millisecond))
		<-la.Lost()
		require.NoError(t, la.Release(ctx))
		require.Equal(t, bTok, lookupToken(b, key), "stale release must not touch the new lease")
		require.Equal(t, uint64(1), a.Stats().Lost)
		require.Equal(t, 0, a.Stats().Leases)
	})

	t.Run("takeover of a dead node's lease", func(t *testing.T) {
		node := newCluster(t)
		cfg := testConfig("a")
		cfg.LeaseTTL, cfg.LeaseRefresh = 5*time.Second, time.Second // so a takeover cannot be an expiry
		a, b := node(cfg), node(testConfig("b"))
		la, err := a.Acquire(ctx, key, AcquireOptions{})
		require.NoError(t, err)
		_, err = b.Acquire(ctx, key, AcquireOptions{})
		require.ErrorIs(t, err, sfu.ErrPublisherExists, "live owner: refused")

		a.crash() // kill -9: the node record and the lease stay until their TTLs
		killed := time.Now()
		var lb *Lease
		took := eventually(t, cfg.NodeTTL+2*time.Second, "takeover", func() bool {
			l, err := b.Acquire(ctx, key, AcquireOptions{})
			if err != nil {
				require.ErrorIs(t, err, sfu.ErrPublisherExists)

				return false
			}
			lb = l

			return true
		})
		t.Logf("dead node's lease taken over %s after the kill (node_ttl %s, lease TTL %s)", took.Round(time.Millisecond), cfg.NodeTTL, cfg.LeaseTTL)
		require.Less(t, time.Since(killed), cfg.LeaseTTL, "taken over before the lease expired")
		require.Equal(t, lb.Record().OwnerToken, lookupToken(b, key))
		require.NotEqual(t, la.Record().OwnerToken, lb.Record().OwnerToken)
	})

	t.Run("leftover of this node's earlier run replaced at once", func(t *testing.T) {
		node := newCluster(t)
		cfg := testConfig("a")
		cfg.LeaseTTL, cfg.LeaseRefresh = 4*time.Second, time.Second
		a1 := node(cfg)
		_, err := a1.Acquire(ctx, key, AcquireOptions{})
		require.NoError(t, err)
		a1.crash()
		a2 := node(cfg) // restarted with the same node id: its node record is alive at once
		l, err := a2.Acquire(ctx, key, AcquireOptions{})
		require.NoError(t, err)
		require.Equal(t, l.Record().OwnerToken, lookupToken(a2, key))
	})

	t.Run("takeover mode fences the old owner", func(t *testing.T) {
		node := newCluster(t)
		cfg := testConfig("a")
		a := node(cfg)
		bcfg := testConfig("b")
		bcfg.Takeover = true
		b := node(bcfg)
		lost := make(chan Record, 1)
		la, err := a.Acquire(ctx, key, AcquireOptions{OnLost: func(h Record) { lost <- h }})
		require.NoError(t, err)
		lb, err := b.Acquire(ctx, key, AcquireOptions{})
		require.NoError(t, err)
		fenced := time.Now()
		select {
		case h := <-lost:
			require.Equal(t, lb.Record(), h)
		case <-time.After(cfg.LeaseRefresh + time.Second):
			require.FailNow(t, "old owner not told within one refresh period (+1s margin)")
		}
		t.Logf("old owner fenced %s after the takeover (refresh period %s)", time.Since(fenced).Round(time.Millisecond), cfg.LeaseRefresh)
		select {
		case <-la.Lost():
		default:
			require.FailNow(t, "Lost() not closed")
		}
		require.NoError(t, la.Release(ctx))
		require.Equal(t, lb.Record().OwnerToken, lookupToken(a, key))
		time.Sleep(2 * cfg.LeaseRefresh) // the old owner's loop no longer touches it
		require.Equal(t, lb.Record().OwnerToken, lookupToken(a, key))
	})

	t.Run("release", func(t *testing.T) {
		node := newCluster(t)
		a, b := node(testConfig("a")), node(testConfig("b"))
		la, err := a.Acquire(ctx, key, AcquireOptions{})
		require.NoError(t, err)
		require.Equal(t, 1, a.Stats().Leases)
		require.NoError(t, la.Release(ctx))
		require.NoError(t, la.Release(ctx)) // idempotent
		_, err = b.Lookup(ctx, key)
		require.ErrorIs(t, err, ErrNotFound)
		require.Equal(t, 0, a.Stats().Leases)
		lb, err := b.Acquire(ctx, key, AcquireOptions{})
		require.NoError(t, err)
		time.Sleep(testConfig("a").LeaseRefresh * 2) // a's loop must not bring its lease back
		require.Equal(t, lb.Record().OwnerToken, lookupToken(a, key))
	})

	t.Run("announcements received by another registry", func(t *testing.T) {
		node := newCluster(t)
		a, b := node(testConfig("a")), node(testConfig("b"))
		events := make(chan Event, 8)
		stop := b.Watch(func(ev Event) { events <- ev })
		defer stop()
		waitSubscribed(t, a, b)
		la, err := a.Acquire(ctx, key, AcquireOptions{})
		require.NoError(t, err)
		ev := nextEvent(t, events, key)
		require.Equal(t, EventStart, ev.Type)
		require.Equal(t, la.Record(), ev.Record)
		require.NoError(t, la.Release(ctx))
		ev = nextEvent(t, events, key)
		require.Equal(t, EventStop, ev.Type)
		require.Equal(t, la.Record().OwnerToken, ev.Record.OwnerToken)
	})

	t.Run("WaitFor wakes on publish", func(t *testing.T) {
		node := newCluster(t)
		bcfg := testConfig("b")
		bcfg.SafetyPoll = time.Minute // only the announcement can wake it in time
		a, b := node(testConfig("a")), node(bcfg)
		waitSubscribed(t, a, b)
		var (
			wg   sync.WaitGroup
			got  Record
			werr error
			woke time.Time
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, werr = b.WaitFor(ctx, key, 5*time.Second)
			woke = time.Now()
		}()
		time.Sleep(300 * time.Millisecond)
		published := time.Now()
		la, err := a.Acquire(ctx, key, AcquireOptions{})
		require.NoError(t, err)
		wg.Wait()
		require.NoError(t, werr)
		require.Equal(t, la.Record(), got)
		t.Logf("WaitFor woke %s after the publish", woke.Sub(published).Round(time.Microsecond))
		require.Less(t, woke.Sub(published), time.Second)

		// an existing lease: at once; a missing one: ErrNotFound after the timeout
		got, err = b.WaitFor(ctx, key, 0)
		require.NoError(t, err)
		require.Equal(t, la.Record(), got)
		start := time.Now()
		_, err = b.WaitFor(ctx, "live/never", 300*time.Millisecond)
		require.ErrorIs(t, err, ErrNotFound)
		require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	})

	t.Run("WaitFor safety poll finds a lease without announcement", func(t *testing.T) {
		node := newCluster(t)
		a := node(testConfig("a"))
		rec := Record{Key: key, NodeID: "z", OwnerToken: "tok", StartedAt: time.Now().UTC()}
		val, err := EncodeRecord(rec)
		require.NoError(t, err)
		go func() {
			time.Sleep(100 * time.Millisecond)
			_, _ = a.be.setNX(ctx, StreamPrefix+key, val, time.Minute) // no announcement
		}()
		start := time.Now()
		got, err := a.WaitFor(ctx, key, 3*time.Second)
		require.NoError(t, err)
		require.Equal(t, "z", got.NodeID)
		require.Less(t, time.Since(start), time.Second)
	})

	t.Run("nodes leases and close", func(t *testing.T) {
		node := newCluster(t)
		a, b := node(testConfig("a")), node(testConfig("b"))
		_, err := a.Acquire(ctx, "live/one", AcquireOptions{})
		require.NoError(t, err)
		_, err = b.Acquire(ctx, "live/two", AcquireOptions{})
		require.NoError(t, err)
		nodes, err := b.Nodes(ctx)
		require.NoError(t, err)
		require.Len(t, nodes, 2)
		require.Equal(t, "a", nodes[0].NodeID)
		require.Equal(t, RoleOrigin, nodes[0].Role)
		require.Equal(t, "http://127.0.0.1:9090", nodes[0].Advertise)
		leases, err := b.Leases(ctx)
		require.NoError(t, err)
		require.Len(t, leases, 2)
		require.Equal(t, "live/one", leases[0].Key)
		require.Equal(t, "a", leases[0].NodeID)
		require.Equal(t, "b", leases[1].NodeID)
		require.NoError(t, b.Ping(ctx))

		require.NoError(t, a.Close()) // graceful: leases released, node record deleted
		require.NoError(t, a.Close())
		nodes, err = b.Nodes(ctx)
		require.NoError(t, err)
		require.Len(t, nodes, 1)
		leases, err = b.Leases(ctx)
		require.NoError(t, err)
		require.Len(t, leases, 1)
		_, err = a.Acquire(ctx, "live/three", AcquireOptions{})
		require.ErrorIs(t, err, ErrClosed)
	})

	t.Run("node record expires after a crash", func(t *testing.T) {
		node := newCluster(t)
		cfg := testConfig("a")
		a, b := node(cfg), node(testConfig("b"))
		time.Sleep(2 * cfg.NodeTTL) // refreshed: still there
		nodes, err := b.Nodes(ctx)
		require.NoError(t, err)
		require.Len(t, nodes, 2)
		a.crash()
		took := eventually(t, 2*cfg.NodeTTL+time.Second, "node record expiry", func() bool {
			nodes, err := b.Nodes(ctx)
			return err == nil && len(nodes) == 1
		})
		t.Logf("crashed node's record gone after %s (node_ttl %s)", took.Round(time.Millisecond), cfg.NodeTTL)
	})
}

// waitSubscribed makes sure b receives a's announcements (a Redis SUBSCRIBE is asynchronous): it
// announces a probe from a until b sees it.
func waitSubscribed(t *testing.T, a, b *registry) {
	t.Helper()
	seen := make(chan struct{}, 1)
	stop := b.Watch(func(ev Event) {
		if ev.Record.Key == "probe/probe" {
			select {
			case seen <- struct{}{}:
			default:
			}
		}
	})
	defer stop()
	rec := Record{Key: "probe/probe", NodeID: a.NodeID(), OwnerToken: "probe", StartedAt: time.Now().UTC()}
	for range 100 {
		a.announce(context.Background(), EventStop, rec)
		select {
		case <-seen:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	require.FailNow(t, "announcements never arrived")
}

func nextEvent(t *testing.T, events <-chan Event, key string) Event {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Record.Key == key {
				return ev
			}
		case <-deadline:
			require.FailNow(t, "no announcement for "+key)
		}
	}
}

func TestRedisOutageKeepsLease(t *testing.T) {
	t.Parallel()
	srv := startTestRedis(t)
	cfg := testConfig("a")
	cfg.LeaseTTL, cfg.LeaseRefresh = 4*time.Second, 1500*time.Millisecond
	cfg.OpTimeout = 500 * time.Millisecond
	reg, err := NewRedis(RedisConfig{Config: cfg, URL: srv.URL()}, Deps{Logger: testLogger(t)})
	require.NoError(t, err)
	a := reg.(*registry)
	defer a.Close()
	ctx := context.Background()
	lost := make(chan struct{}, 1)
	la, err := a.Acquire(ctx, "live/test", AcquireOptions{OnLost: func(Record) { lost <- struct{}{} }})
	require.NoError(t, err)

	srv.Stop()
	time.Sleep(cfg.LeaseTTL + 500*time.Millisecond) // longer than the TTL: Redis would have dropped it
	st := a.Stats()
	require.Positive(t, st.RefreshErrors)
	require.True(t, st.Unreachable)
	require.Equal(t, 1, st.Leases, "the lease is kept in memory")
	require.Error(t, a.Ping(ctx))

	srv.Restart() // empty: --save ''
	probe := redis.NewClient(&redis.Options{Addr: srv.Addr, DisableIdentity: true})
	defer probe.Close()
	took := eventually(t, cfg.LeaseRefresh+2*time.Second, "lease re-taken", func() bool {
		v, err := probe.Get(ctx, StreamPrefix+"live/test").Bytes()
		if err != nil {
			return false
		}
		rec, err := DecodeRecord(v)
		return err == nil && rec.OwnerToken == la.Record().OwnerToken
	})
	t.Logf("lease back %s after Redis returned (refresh period %s); %d refresh errors during the outage",
		took.Round(time.Millisecond), cfg.LeaseRefresh, a.Stats().RefreshErrors)
	require.LessOrEqual(t, took, cfg.LeaseRefresh+time.Second, "within one refresh period (+1s margin for a loaded machine)")
	n, err := probe.Exists(ctx, NodePrefix+"a").Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "node record back too")
	eventually(t, 2*time.Second, "reachable again", func() bool { return !a.Stats().Unreachable })
	require.Equal(t, uint64(1), a.Stats().Retaken)
	select {
	case <-lost:
		require.FailNow(t, "lease reported lost")
	default:
	}
	require.NoError(t, a.Ping(ctx))
}

// TestRedisSentinelURL runs the registry through a Sentinel failover URL with a password, against a
// real password-protected master watched by a real redis-server in Sentinel mode.
func TestRedisSentinelURL(t *testing.T) {
	const pw = "s3cret"
	master := startTestRedis(t, "--requirepass", pw)
	sentinel := startTestRedisConf(t, "port {PORT}\nsentinel monitor mymaster "+
		"127.0.0.1 "+strconv.Itoa(master.port)+" 1\nsentinel auth-pass mymaster "+pw+"\nrequirepass "+pw+"\n", "--sentinel")
	url := "redis://:" + pw + "@" + sentinel.Addr + "/0?master_name=mymaster"
	ctx := context.Background()
	a, err := NewRedis(RedisConfig{Config: testConfig("a"), URL: url}, Deps{Logger: testLogger(t)})
	require.NoError(t, err)
	defer a.Close()
	require.NoError(t, a.Ping(ctx))
	la, err := a.Acquire(ctx, "live/test", AcquireOptions{})
	require.NoError(t, err)

	direct := redis.NewClient(&redis.Options{Addr: master.Addr, Password: pw, DisableIdentity: true})
	defer direct.Close()
	v, err := direct.Get(ctx, StreamPrefix+"live/test").Bytes()
	require.NoError(t, err, "the lease is on the master Sentinel named")
	rec, err := DecodeRecord(v)
	require.NoError(t, err)
	require.Equal(t, la.Record().OwnerToken, rec.OwnerToken)

	b, err := NewRedis(RedisConfig{Config: testConfig("b"), URL: "redis://:wrong@" + sentinel.Addr + "/0?master_name=mymaster"}, Deps{})
	require.NoError(t, err, "connects lazily")
	require.Error(t, b.Ping(ctx), "wrong password")
	_, err = b.Acquire(ctx, "live/other", AcquireOptions{})
	require.Error(t, err)
	require.NotErrorIs(t, err, sfu.ErrPublisherExists)
	require.Error(t, b.Close(), "Close reports the cleanup it could not do")
}
