package cascade

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/estuary-media/estuary/sfu"
)

// Registry is the cluster's stream registry (see the package doc for the rules). Both implementations,
// NewMemory and NewRedis, have exactly the same semantics; all methods are safe for concurrent use.
type Registry interface {
	// NodeID is this node's id.
	NodeID() string
	// Acquire takes the stream lease of key for this node: SET NX PX with LeaseTTL. If another lease
	// exists: one whose node record is gone (or a leftover of this node's earlier run, or undecodable) is
	// taken over at once, compare-and-set against that old record; one held by a live node (or by a
	// live lease of this same registry) is refused with a *HeldError (wrapping sfu.ErrPublisherExists)
	// naming the holder, unless Config.Takeover, which overwrites it (fencing the old owner). The lease is
	// then refreshed every LeaseRefresh until Release, and a start Event is announced. Its I/O is bounded by
	// Config.OpTimeout (and ctx). An unreachable store is an error: no lease is taken.
	Acquire(ctx context.Context, key string, opts AcquireOptions) (*Lease, error)
	// Lookup returns the lease record of key, or ErrNotFound.
	Lookup(ctx context.Context, key string) (Record, error)
	// WaitFor returns the lease record of key as soon as one exists: it looks key up, then waits for a
	// start announcement of key (looking it up again every Config.SafetyPoll in case one was missed),
	// for at most timeout (timeout <= 0: a single lookup). After the timeout: ErrNotFound, or the last
	// lookup's error if the store was unreachable.
	WaitFor(ctx context.Context, key string, timeout time.Duration) (Record, error)
	// Nodes returns the live node records, sorted by node id.
	Nodes(ctx context.Context) ([]Node, error)
	// Leases returns every stream lease, sorted by key.
	Leases(ctx context.Context) ([]Record, error)
	// Watch calls fn for each start/stop announcement of the cluster (this node's own included), from
	// one goroutine, in order. fn must not block. stop is idempotent; fn may run once more while stop
	// is being called, never after stop returned and the event in flight was delivered.
	Watch(fn func(Event)) (stop func())
	// Ping reports whether the store answers (for /readyz).
	Ping(ctx context.Context) error
	// Stats returns counters for metrics and the API.
	Stats() Stats
	// Close stops the refresh loops (waiting for them), releases this node's leases and deletes its node
	// record (best effort, bounded by Config.OpTimeout), and closes the store connection. Idempotent.
	Close() error
}

// AcquireOptions are per-lease options of Acquire.
type AcquireOptions struct {
	// OnLost is called once, from the registry's refresh goroutine with no lock held, when the lease is
	// found to belong to another owner (fenced by a takeover, or taken after it expired): the publisher
	// must be closed. holder is the new holder's record (zero if it could not be read). It must not
	// block; it may call Lease.Release.
	OnLost func(holder Record)
}

// HeldError refuses an Acquire: a live node holds the lease. It wraps sfu.ErrPublisherExists.
type HeldError struct {
	Holder Record
}

func (e *HeldError) Error() string {
	relay := e.Holder.RelayURL
	if relay == "" {
		relay = "no relay URL"
	}

	return fmt.Sprintf("%s: %s: published on node %q (%s) since %s", sfu.ErrPublisherExists, e.Holder.Key,
		e.Holder.NodeID, relay, e.Holder.StartedAt.Format(time.RFC3339))
}

// Unwrap makes errors.Is(err, sfu.ErrPublisherExists) hold.
func (e *HeldError) Unwrap() error { return sfu.ErrPublisherExists }

// Stats are a registry's counters.
type Stats struct {
	Leases        int    `json:"leases"`         // leases this node holds now
	RefreshErrors uint64 `json:"refresh_errors"` // failed node/lease refreshes (store unreachable)
	Retaken       uint64 `json:"retaken"`        // leases re-taken after they vanished (store outage or restart)
	Lost          uint64 `json:"lost"`           // leases lost to another owner
	Unreachable   bool   `json:"unreachable"`    // the last store operation of the refresh loops failed
}

// NewMemory makes the in-process registry (standalone; or several nodes in one process sharing
// deps.Memory, for tests). Same semantics as NewRedis, TTLs included.
func NewMemory(cfg Config, deps Deps) (Registry, error) {
	s := deps.Memory
	if s == nil {
		s = NewMemoryStore()
	}

	return newRegistry(cfg, memoryBackend{s: s}, deps.Logger, "memory")
}

// NewRedis makes the Redis registry from cluster.redis (cfg.URL). It does not wait for Redis to
// answer: with Redis down it starts anyway (Ping reports it), and writes its node record when Redis
// comes back. A malformed URL or config is an error wrapping ErrInvalidConfig.
func NewRedis(cfg RedisConfig, deps Deps) (Registry, error) {
	c, err := cfg.Config.withDefaults()
	if err != nil {
		return nil, err
	}
	be, err := newRedisBackend(cfg.URL, c.OpTimeout)
	if err != nil {
		return nil, err
	}
	r, err := newRegistry(cfg.Config, be, deps.Logger, "redis")
	if err != nil {
		_ = be.close()

		return nil, err
	}

	return r, nil
}

// registry implements Registry over a backend. It owns two refresh loops (node record, leases) and
// one announcement loop; Close waits for them.
type registry struct {
	cfg     Config
	be      backend
	log     *slog.Logger
	node    Node
	nodeKey string
	nodeVal []byte

	mu        sync.Mutex
	leases    map[string]*Lease   // this node's live leases by key; guarded by mu
	watchers  map[int]func(Event) // guarded by mu
	nextWatch int                 // guarded by mu
	keyLocks  map[string]*keyLock // serializes Acquire per key; guarded by mu

	kick    chan struct{} // asks the lease loop for a refresh round now
	done    chan struct{} // closed by Close
	closed  atomic.Bool
	wg      sync.WaitGroup
	stopSub func()

	paused atomic.Bool // tests: the lease loop skips its rounds (a stalled owner)

	refreshErrors atomic.Uint64
	retaken       atomic.Uint64
	lost          atomic.Uint64
	unreachable   atomic.Bool

	errMu       sync.Mutex
	outageStart time.Time // guarded by errMu; zero while the store answers
	lastErrLog  time.Time // guarded by errMu
	errsLogged  uint64    // guarded by errMu: refreshErrors at the last log line
}

var _ Registry = (*registry)(nil)

func newRegistry(cfg Config, be backend, log *slog.Logger, kind string) (*registry, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &registry{
		cfg:      cfg,
		be:       be,
		log:      log.With("component", "cascade", "registry", kind, "node_id", cfg.NodeID),
		node:     Node{NodeID: cfg.NodeID, Role: cfg.Role, Advertise: cfg.Advertise, StartedAt: time.Now().UTC().Truncate(time.Millisecond)},
		nodeKey:  NodePrefix + cfg.NodeID,
		leases:   map[string]*Lease{},
		watchers: map[int]func(Event){},
		keyLocks: map[string]*keyLock{},
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if r.nodeVal, err = EncodeNode(r.node); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	r.warnDuplicate()
	r.refreshNode() // best effort: the node loop retries
	msgs, stop := be.subscribe()
	r.stopSub = stop
	r.wg.Add(3)
	go r.nodeLoop()
	go r.leaseLoop()
	go r.eventLoop(msgs)

	return r, nil
}

func (r *registry) NodeID() string { return r.cfg.NodeID }

func (r *registry) Stats() Stats {
	r.mu.Lock()
	n := len(r.leases)
	r.mu.Unlock()

	return Stats{
		Leases:        n,
		RefreshErrors: r.refreshErrors.Load(),
		Retaken:       r.retaken.Load(),
		Lost:          r.lost.Load(),
		Unreachable:   r.unreachable.Load(),
	}
}

func (r *registry) Ping(ctx context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.OpTimeout)
	defer cancel()

	return r.be.ping(ctx)
}

// newToken returns a random owner token.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)

	return hex.EncodeToString(b[:])
}

// maxAcquireAttempts bounds Acquire's retries when the lease changes under it (expiry, races).
const maxAcquireAttempts = 5

func (r *registry) Acquire(ctx context.Context, key string, opts AcquireOptions) (*Lease, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if !sfu.ValidKey(key) {
		return nil, fmt.Errorf("cascade: acquire %q: %w", key, sfu.ErrInvalidKey)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.OpTimeout)
	defer cancel()
	unlock := r.lockKey(key)
	defer unlock()
	rec := Record{
		Key:        key,
		NodeID:     r.cfg.NodeID,
		RelayURL:   r.cfg.relayURL(key),
		OwnerToken: newToken(),
		StartedAt:  time.Now().UTC().Truncate(time.Millisecond),
	}
	val, err := EncodeRecord(rec)
	if err != nil {
		return nil, err
	}
	k := StreamPrefix + key
	for range maxAcquireAttempts {
		ok, err := r.be.setNX(ctx, k, val, r.cfg.LeaseTTL)
		if err != nil {
			return nil, fmt.Errorf("cascade: acquire %s: %w", key, err)
		}
		if ok {
			return r.hold(ctx, rec, val, opts, nil, "new"), nil
		}
		cur, err := r.be.get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("cascade: acquire %s: %w", key, err)
		}
		if cur == nil {
			continue // expired meanwhile: SET NX again
		}
		var fenced *Lease
		how := "takeover"
		holder, derr := DecodeRecord(cur)
		switch {
		case derr != nil || holder.Key != key:
			how = "replace-invalid" // nobody's lease: take it
		case holder.NodeID == r.cfg.NodeID:
			r.mu.Lock()
			local := r.leases[key]
			r.mu.Unlock()
			if local != nil && local.rec.OwnerToken == holder.OwnerToken {
				if !r.cfg.Takeover {
					return nil, &HeldError{Holder: holder}
				}
				fenced = local
			} else {
				how = "replace-own-leftover" // an earlier run of this node left it
			}
		default:
			alive, err := r.nodeAlive(ctx, holder.NodeID)
			if err != nil {
				return nil, fmt.Errorf("cascade: acquire %s: %w", key, err)
			}
			if alive && !r.cfg.Takeover {
				return nil, &HeldError{Holder: holder}
			}
			if !alive {
				how = "dead-node"
			}
		}
		ok, err = r.be.replace(ctx, k, cur, val, r.cfg.LeaseTTL)
		if err != nil {
			return nil, fmt.Errorf("cascade: acquire %s: %w", key, err)
		}
		if ok {
			if derr == nil {
				r.log.Info("lease taken over", "stream", key, "how", how, "old_node", holder.NodeID)
			}

			return r.hold(ctx, rec, val, opts, fenced, how), nil
		}
		// the old record changed under us: look again
	}

	return nil, fmt.Errorf("cascade: acquire %s: lease kept changing, gave up after %d attempts", key, maxAcquireAttempts)
}

// keyLock serializes this registry's Acquire calls of one key, so two local publishers of a key never
// mistake each other's fresh lease for a leftover.
type keyLock struct {
	mu sync.Mutex
	n  int // users, guarded by registry.mu
}

func (r *registry) lockKey(key string) (unlock func()) {
	r.mu.Lock()
	kl := r.keyLocks[key]
	if kl == nil {
		kl = &keyLock{}
		r.keyLocks[key] = kl
	}
	kl.n++
	r.mu.Unlock()
	kl.mu.Lock()

	return func() {
		kl.mu.Unlock()
		r.mu.Lock()
		kl.n--
		if kl.n == 0 {
			delete(r.keyLocks, key)
		}
		r.mu.Unlock()
	}
}

// hold registers a freshly taken lease, fences fenced (this node's own earlier lease of the key, on a
// takeover) and announces the start.
func (r *registry) hold(ctx context.Context, rec Record, val []byte, opts AcquireOptions, fenced *Lease, how string) *Lease {
	l := &Lease{r: r, rec: rec, val: val, onLost: opts.OnLost, lost: make(chan struct{})}
	r.mu.Lock()
	old := r.leases[rec.Key]
	r.leases[rec.Key] = l
	r.mu.Unlock()
	if old != nil && old != fenced {
		fenced = old
	}
	if fenced != nil {
		r.markLost(fenced, rec)
	}
	r.log.Debug("lease acquired", "stream", rec.Key, "how", how)
	r.announce(ctx, EventStart, rec)

	return l
}

// markLost records that l belongs to someone else now and tells its owner.
func (r *registry) markLost(l *Lease, holder Record) {
	r.mu.Lock()
	if r.leases[l.rec.Key] == l {
		delete(r.leases, l.rec.Key)
	}
	r.mu.Unlock()
	if !l.setLost() {
		return
	}
	r.lost.Add(1)
	r.log.Warn("lease lost to another owner", "stream", l.rec.Key, "holder", holder.NodeID)
	if l.onLost != nil {
		l.onLost(holder)
	}
}

func (r *registry) nodeAlive(ctx context.Context, nodeID string) (bool, error) {
	v, err := r.be.get(ctx, NodePrefix+nodeID)
	if err != nil {
		return false, err
	}

	return v != nil, nil
}

// announce publishes an event, best effort (a lost announcement is covered by WaitFor's safety poll).
func (r *registry) announce(ctx context.Context, typ EventType, rec Record) {
	msg, err := EncodeEvent(Event{Type: typ, Record: rec})
	if err == nil {
		err = r.be.publish(ctx, msg)
	}
	if err != nil {
		r.log.Warn("announcement failed", "stream", rec.Key, "type", string(typ), "err", err)
	}
}

func (r *registry) Lookup(ctx context.Context, key string) (Record, error) {
	if r.closed.Load() {
		return Record{}, ErrClosed
	}
	if !sfu.ValidKey(key) {
		return Record{}, fmt.Errorf("cascade: lookup %q: %w", key, sfu.ErrInvalidKey)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.OpTimeout)
	defer cancel()
	v, err := r.be.get(ctx, StreamPrefix+key)
	if err != nil {
		return Record{}, fmt.Errorf("cascade: lookup %s: %w", key, err)
	}
	if v == nil {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	rec, err := DecodeRecord(v)
	if err != nil {
		return Record{}, fmt.Errorf("cascade: lookup %s: %w", key, err)
	}
	if rec.Key != key {
		return Record{}, fmt.Errorf("cascade: lookup %s: %w: record names %q", key, ErrInvalidRecord, rec.Key)
	}

	return rec, nil
}

func (r *registry) WaitFor(ctx context.Context, key string, timeout time.Duration) (Record, error) {
	if !sfu.ValidKey(key) {
		return Record{}, fmt.Errorf("cascade: wait for %q: %w", key, sfu.ErrInvalidKey)
	}
	found := make(chan Record, 1)
	stop := r.Watch(func(ev Event) {
		if ev.Type == EventStart && ev.Record.Key == key {
			select {
			case found <- ev.Record:
			default:
			}
		}
	})
	defer stop()
	rec, err := r.Lookup(ctx, key)
	if err == nil || timeout <= 0 || errors.Is(err, ErrClosed) {
		return rec, err
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(r.cfg.SafetyPoll)
	defer poll.Stop()
	for {
		select {
		case rec := <-found:
			return rec, nil
		case <-poll.C:
			if rec, err = r.Lookup(ctx, key); err == nil || errors.Is(err, ErrClosed) {
				return rec, err
			}
		case <-deadline.C:
			return Record{}, err
		case <-ctx.Done():
			return Record{}, fmt.Errorf("cascade: wait for %s: %w", key, ctx.Err())
		case <-r.done:
			return Record{}, ErrClosed
		}
	}
}

func (r *registry) Nodes(ctx context.Context) ([]Node, error) {
	vals, err := r.scan(ctx, NodePrefix)
	if err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(vals))
	for _, v := range vals {
		n, err := DecodeNode(v)
		if err != nil {
			r.log.Debug("skipping invalid node record", "err", err)

			continue
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })

	return out, nil
}

func (r *registry) Leases(ctx context.Context) ([]Record, error) {
	vals, err := r.scan(ctx, StreamPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(vals))
	for _, v := range vals {
		rec, err := DecodeRecord(v)
		if err != nil {
			r.log.Debug("skipping invalid lease record", "err", err)

			continue
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })

	return out, nil
}

func (r *registry) scan(ctx context.Context, prefix string) ([][]byte, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.OpTimeout)
	defer cancel()
	vals, err := r.be.scan(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("cascade: list %s*: %w", prefix, err)
	}

	return vals, nil
}

func (r *registry) Watch(fn func(Event)) (stop func()) {
	r.mu.Lock()
	id := r.nextWatch
	r.nextWatch++
	r.watchers[id] = fn
	r.mu.Unlock()

	return func() {
		r.mu.Lock()
		delete(r.watchers, id)
		r.mu.Unlock()
	}
}

// eventLoop decodes announcements, hands them to the watchers, and checks each start against this
// node's leases: a start of a key this node holds, by another owner, means it was fenced, so the lease
// loop runs at once instead of at its next tick.
func (r *registry) eventLoop(msgs <-chan []byte) {
	defer r.wg.Done()
	var fns []func(Event)
	for msg := range msgs {
		ev, err := DecodeEvent(msg)
		if err != nil {
			r.log.Debug("ignoring invalid announcement", "err", err)

			continue
		}
		r.mu.Lock()
		fns = fns[:0]
		for _, fn := range r.watchers {
			fns = append(fns, fn)
		}
		mine := r.leases[ev.Record.Key]
		r.mu.Unlock()
		if ev.Type == EventStart && mine != nil && mine.rec.OwnerToken != ev.Record.OwnerToken {
			select {
			case r.kick <- struct{}{}:
			default:
			}
		}
		for _, fn := range fns {
			fn(ev)
		}
	}
}

// nodeLoop rewrites this node's record every NodeTTL/3.
func (r *registry) nodeLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.NodeTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
			r.refreshNode()
		}
	}
}

// warnDuplicate logs when a live node record already carries this node id: another node configured with
// the same node_id (they would take each other's leases), or this node restarted within node_ttl.
func (r *registry) warnDuplicate() {
	ctx, cancel := context.WithTimeout(context.Background(), min(r.cfg.OpTimeout, r.cfg.NodeTTL/3))
	defer cancel()
	v, err := r.be.get(ctx, r.nodeKey)
	if err != nil || v == nil {
		return
	}
	n, err := DecodeNode(v)
	if err != nil {
		return
	}
	r.log.Warn("a node record with this node_id exists: node_id must be unique in a cluster (fine after a quick restart)",
		"other_started_at", n.StartedAt, "other_advertise", n.Advertise)
}

// refreshNode writes this node's record; false if the store did not take it.
func (r *registry) refreshNode() bool {
	ctx, cancel := context.WithTimeout(context.Background(), min(r.cfg.OpTimeout, r.cfg.NodeTTL/3))
	defer cancel()
	if err := r.be.set(ctx, r.nodeKey, r.nodeVal, r.cfg.NodeTTL); err != nil {
		r.noteError(err)

		return false
	}
	r.noteOK()

	return true
}

// leaseLoop refreshes this node's leases every LeaseRefresh (and when kicked). While the store is
// unreachable it retries every retryInterval, so a lease is back soon after the store returns.
func (r *registry) leaseLoop() {
	defer r.wg.Done()
	t := time.NewTimer(r.cfg.LeaseRefresh)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		case <-r.kick:
			t.Stop()
		}
		r.refreshLeases()
		next := r.cfg.LeaseRefresh
		if r.unreachable.Load() {
			next = r.retryInterval()
		}
		t.Reset(next)
	}
}

// retryInterval is how often the lease loop retries during an outage.
func (r *registry) retryInterval() time.Duration {
	return min(r.cfg.LeaseRefresh/4, 250*time.Millisecond)
}

func (r *registry) refreshLeases() {
	if r.paused.Load() {
		return
	}
	r.mu.Lock()
	ls := make([]*Lease, 0, len(r.leases))
	for _, l := range r.leases {
		ls = append(ls, l)
	}
	r.mu.Unlock()
	if len(ls) == 0 {
		return
	}
	if r.unreachable.Load() && !r.refreshNode() {
		// coming back from an outage: the node record must exist before the leases reappear, or
		// another node would take them for a dead node's. Still unreachable: retry soon.
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(r.cfg.OpTimeout, r.cfg.LeaseRefresh))
	defer cancel()
	for _, l := range ls {
		r.refreshLease(ctx, l)
	}
}

func (r *registry) refreshLease(ctx context.Context, l *Lease) {
	l.opMu.Lock()
	if l.released || l.isLost() {
		l.opMu.Unlock()

		return
	}
	res, holder, err := r.be.refresh(ctx, StreamPrefix+l.rec.Key, l.rec.OwnerToken, l.val, r.cfg.LeaseTTL)
	l.opMu.Unlock()
	if err != nil {
		r.noteError(err)

		return
	}
	r.noteOK()
	switch res {
	case refreshRetaken:
		r.retaken.Add(1)
		r.log.Info("lease re-taken (it had vanished from the store)", "stream", l.rec.Key)
		r.announce(ctx, EventStart, l.rec)
	case refreshLost:
		h, _ := DecodeRecord(holder)
		r.markLost(l, h)
	}
}

// noteError counts a failed refresh and logs it, rate-limited.
func (r *registry) noteError(err error) {
	n := r.refreshErrors.Add(1)
	r.unreachable.Store(true)
	now := time.Now()
	r.errMu.Lock()
	defer r.errMu.Unlock()
	switch {
	case r.outageStart.IsZero():
		r.outageStart, r.lastErrLog, r.errsLogged = now, now, n
		r.log.Warn("registry store unreachable; keeping leases in memory", "err", err)
	case now.Sub(r.lastErrLog) >= r.cfg.ErrorLogInterval:
		r.log.Warn("registry store still unreachable", "for", now.Sub(r.outageStart).Round(time.Millisecond),
			"failures", n-r.errsLogged, "err", err)
		r.lastErrLog, r.errsLogged = now, n
	}
}

// noteOK ends an outage.
func (r *registry) noteOK() {
	if !r.unreachable.Swap(false) {
		return
	}
	select { // the leases may have vanished with the store: re-take them now
	case r.kick <- struct{}{}:
	default:
	}
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if !r.outageStart.IsZero() {
		r.log.Info("registry store reachable again", "after", time.Since(r.outageStart).Round(time.Millisecond),
			"failures", r.refreshErrors.Load())
		r.outageStart = time.Time{}
	}
}

func (r *registry) Close() error {
	if !r.stopLoops() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.OpTimeout)
	defer cancel()
	r.mu.Lock()
	ls := make([]*Lease, 0, len(r.leases))
	for _, l := range r.leases {
		ls = append(ls, l)
	}
	r.mu.Unlock()
	var errs []error
	for _, l := range ls {
		if err := l.release(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := r.be.deleteIf(ctx, r.nodeKey, r.nodeVal); err != nil {
		errs = append(errs, err)
	}
	if err := r.be.close(); err != nil {
		errs = append(errs, err)
	}

	return errors.Join(errs...)
}

// stopLoops ends the goroutines and waits for them; false if already closed.
func (r *registry) stopLoops() bool {
	if !r.closed.CompareAndSwap(false, true) {
		return false
	}
	close(r.done)
	r.stopSub()
	r.wg.Wait()

	return true
}

// crash stops the registry as a killed process would: no release, no node record deletion (tests).
func (r *registry) crash() {
	if r.stopLoops() {
		_ = r.be.close()
	}
}
