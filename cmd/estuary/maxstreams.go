package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/estuary-media/estuary/cascade"
	"github.com/estuary-media/estuary/sfu"
)

// maxStreams enforces limits.max_streams (0 = unlimited; reloadable) in front of the hub's registry:
// a publish that would make more published streams than the limit is refused (sfu.ErrForbidden:
// 403 over HTTP, the reason in RTMP's onStatus). Relay publishers (streams pulled from another node)
// are not refused: viewers of a pulled stream are bounded by limits.max_connections instead.
type maxStreams struct {
	next sfu.Registry
	max  atomic.Int64
	hub  func() *sfu.Hub
}

func (m *maxStreams) Claim(ctx context.Context, key string, pub sfu.Publisher) error {
	if max := m.max.Load(); max > 0 && pub.Info().Protocol != cascade.RelayProtocol {
		if h := m.hub(); h != nil {
			n := int64(0)
			for _, s := range h.Streams() {
				if s.Key() != key && s.Publisher() != nil {
					n++
				}
			}
			if n >= max {
				return fmt.Errorf("limits.max_streams reached (%d published, max %d): %w", n, max, sfu.ErrForbidden)
			}
		}
	}
	if m.next == nil {
		return nil
	}
	return m.next.Claim(ctx, key, pub)
}

func (m *maxStreams) Release(ctx context.Context, key string) {
	if m.next != nil {
		m.next.Release(ctx, key)
	}
}

// wireMaxStreams wraps the hub's registry (after the cluster wiring made it) with limits.max_streams.
func wireMaxStreams(a *app) error {
	m := &maxStreams{next: a.hubDeps.Registry, hub: func() *sfu.Hub { return a.hub }}
	m.max.Store(int64(a.cfg.Limits.MaxStreams))
	a.hubDeps.Registry = m
	a.reloaders = append(a.reloaders, func(c Config) { m.max.Store(int64(c.Limits.MaxStreams)) })
	return nil
}

func init() { preHubWirings = append(preHubWirings, wireMaxStreams) }
