package cascade

import (
	"context"
	"fmt"
	"sync"
)

// Lease is this node's hold on a stream key, refreshed by the registry's lease loop until Release.
type Lease struct {
	r      *registry
	rec    Record
	val    []byte // the encoded record as stored
	onLost func(holder Record)

	// opMu serializes this lease's store operations (refresh, release), so a refresh round never
	// re-creates a lease that Release just deleted.
	opMu     sync.Mutex
	released bool // guarded by opMu

	lostOnce sync.Once
	lost     chan struct{} // closed when lost
}

// Key is the stream key.
func (l *Lease) Key() string { return l.rec.Key }

// Record is the lease record as stored.
func (l *Lease) Record() Record { return l.rec }

// Lost is closed when the lease is found to belong to another owner (see AcquireOptions.OnLost).
func (l *Lease) Lost() <-chan struct{} { return l.lost }

func (l *Lease) isLost() bool {
	select {
	case <-l.lost:
		return true
	default:
		return false
	}
}

// setLost closes lost; false if it was already.
func (l *Lease) setLost() bool {
	first := false
	l.lostOnce.Do(func() {
		close(l.lost)
		first = true
	})

	return first
}

// Release deletes the lease if it is still this owner's (compare-and-set on owner_token) and announces
// the stop. Idempotent; a lost lease, or one of a closed registry, is released without I/O. The I/O is
// bounded by Config.OpTimeout; if the store is unreachable the lease expires by its TTL.
func (l *Lease) Release(ctx context.Context) error {
	if l.r.closed.Load() {
		return nil // Close released it
	}
	ctx, cancel := context.WithTimeout(ctx, l.r.cfg.OpTimeout)
	defer cancel()

	return l.release(ctx)
}

func (l *Lease) release(ctx context.Context) error {
	r := l.r
	r.mu.Lock()
	if r.leases[l.rec.Key] == l {
		delete(r.leases, l.rec.Key)
	}
	r.mu.Unlock()
	l.opMu.Lock()
	if l.released {
		l.opMu.Unlock()

		return nil
	}
	l.released = true
	if l.isLost() {
		l.opMu.Unlock()

		return nil
	}
	ok, err := r.be.release(ctx, StreamPrefix+l.rec.Key, l.rec.OwnerToken)
	l.opMu.Unlock()
	if err != nil {
		return fmt.Errorf("cascade: release %s (it expires by TTL): %w", l.rec.Key, err)
	}
	if ok {
		r.announce(ctx, EventStop, l.rec)
	}

	return nil
}
