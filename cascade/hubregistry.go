package cascade

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/estuary-media/estuary/sfu"
)

// HubRegistryConfig configures NewHubRegistry. The zero value is valid.
type HubRegistryConfig struct {
	// ClaimTimeout bounds Claim's and Release's registry I/O. Default 3s.
	ClaimTimeout time.Duration
	// RefusePublish, when set (role edge), refuses every publish but relays with an error wrapping
	// ErrEdgePublish followed by this text (e.g. "publish to an origin: o1:19350, o2:19350"). Default
	// "": publishes claim a lease.
	RefusePublish string
}

// HubRegistry adapts a Registry to sfu.Registry (wire it as sfu.Deps.Registry): the hub claims the
// stream lease before it accepts a publish and releases it when the publication ends. When the lease is
// lost to another owner (cluster.takeover fencing), the publisher is closed.
//
// Every successful Claim of a key must be matched by one Release of that key (the hub does this). Two
// claims of one key on this node (a local takeover racing its release) share the node's lease, which is
// released with the last Release.
type HubRegistry struct {
	reg     Registry
	timeout time.Duration
	refuse  string
	log     *slog.Logger

	mu     sync.Mutex
	claims map[string]*claim // by stream key; guarded by mu
}

var _ sfu.Registry = (*HubRegistry)(nil)

// claim is one key's lease and the publishers holding it.
type claim struct {
	lease *Lease          // set once Acquire returned; guarded by HubRegistry.mu
	n     int             // outstanding Claims; guarded by HubRegistry.mu
	pubs  []sfu.Publisher // closed when the lease is lost; guarded by HubRegistry.mu
	lost  bool            // guarded by HubRegistry.mu
}

// NewHubRegistry makes the adapter. deps.Logger is used; deps.Memory is ignored.
func NewHubRegistry(reg Registry, cfg HubRegistryConfig, deps Deps) *HubRegistry {
	if cfg.ClaimTimeout <= 0 {
		cfg.ClaimTimeout = 3 * time.Second
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	return &HubRegistry{reg: reg, timeout: cfg.ClaimTimeout, refuse: cfg.RefusePublish, log: log.With("component", "cascade"), claims: map[string]*claim{}}
}

// Claim takes the stream lease of key for pub. A lease held by a live node is refused with an error
// wrapping sfu.ErrPublisherExists (a *HeldError naming the holder); an unreachable registry is an error.
// A relay publisher (Protocol RelayProtocol: a stream pulled from its origin) takes no lease; on an edge
// (RefusePublish) every other publisher is refused with ErrEdgePublish.
func (h *HubRegistry) Claim(ctx context.Context, key string, pub sfu.Publisher) error {
	if pub.Info().Protocol == RelayProtocol {
		return nil
	}
	if h.refuse != "" {
		return fmt.Errorf("%w: %s", ErrEdgePublish, h.refuse)
	}
	h.mu.Lock()
	if c := h.claims[key]; c != nil && !c.lost {
		c.n++
		c.pubs = append(c.pubs, pub)
		h.mu.Unlock()

		return nil
	}
	h.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	c := &claim{n: 1, pubs: []sfu.Publisher{pub}}
	lease, err := h.reg.Acquire(ctx, key, AcquireOptions{OnLost: func(holder Record) { h.onLost(key, c, holder) }})
	if err != nil {
		return err
	}
	h.mu.Lock()
	c.lease = lease
	if prev := h.claims[key]; prev != nil {
		c.n += prev.n // the lost claim's publishers still Release
	}
	h.claims[key] = c
	h.mu.Unlock()

	return nil
}

// Release drops one claim of key; the last one releases the lease.
func (h *HubRegistry) Release(ctx context.Context, key string) {
	h.mu.Lock()
	c := h.claims[key]
	if c == nil {
		h.mu.Unlock()

		return
	}
	c.n--
	if c.n > 0 {
		h.mu.Unlock()

		return
	}
	delete(h.claims, key)
	lease := c.lease
	h.mu.Unlock()
	if lease == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	if err := lease.Release(ctx); err != nil {
		h.log.Warn("lease release failed", "stream", key, "err", err)
	}
}

// onLost closes the publishers of a fenced lease.
func (h *HubRegistry) onLost(key string, c *claim, holder Record) {
	h.mu.Lock()
	c.lost = true
	pubs := append([]sfu.Publisher(nil), c.pubs...)
	c.pubs = nil
	h.mu.Unlock()
	for _, p := range pubs {
		h.log.Warn("closing publisher: stream lease taken by another node", "stream", key,
			"client_id", p.Info().ID, "holder", holder.NodeID)
		_ = p.Close()
	}
}
