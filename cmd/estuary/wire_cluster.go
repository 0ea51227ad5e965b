package main

import (
	"context"
	"fmt"
	"time"

	"github.com/estuary-media/estuary/cascade"
)

// wireCluster makes the stream registry before the hub: in memory when standalone, Redis
// (cluster.redis) for origin and edge. The hub claims a lease per publication through it; /readyz
// needs the store (origin/edge); /api/v1/cluster shows its nodes and leases. It closes after the hub
// (releasing this node's leases and node record).
func wireCluster(a *app) error {
	c := a.cfg.Cluster
	base := cascade.Config{
		NodeID:    a.cfg.NodeID,
		Role:      a.cfg.Role,
		Advertise: c.Advertise,
		NodeTTL:   c.NodeTTL,
		Takeover:  c.Takeover,
	}
	deps := cascade.Deps{Logger: a.log}
	var (
		reg cascade.Registry
		err error
	)
	if a.cfg.Role == "standalone" {
		reg, err = cascade.NewMemory(base, deps)
	} else {
		cascade.RedirectRedisLogs(a.log, 0)
		reg, err = cascade.NewRedis(cascade.RedisConfig{Config: base, URL: c.Redis}, deps)
		if err == nil {
			a.ready = append(a.ready, func(ctx context.Context) error {
				ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				if err := reg.Ping(ctx); err != nil {
					return fmt.Errorf("cluster registry unreachable: %w", err)
				}
				return nil
			})
		}
	}
	if err != nil {
		return fmt.Errorf("cluster registry: %w", err)
	}
	a.hubDeps.Registry = cascade.NewHubRegistry(reg, cascade.HubRegistryConfig{}, deps)
	a.afterHub = append(a.afterHub, func() {
		if err := reg.Close(); err != nil {
			a.log.Warn("cluster registry close", "err", err)
		}
	})
	a.clusterView = func(ctx context.Context) (any, error) { return clusterView(ctx, a, reg) }
	return nil
}

// clusterLease is a lease as the API shows it (without its owner token).
type clusterLease struct {
	Key       string    `json:"key"`
	NodeID    string    `json:"node_id"`
	RelayURL  string    `json:"relay_url"`
	StartedAt time.Time `json:"started_at"`
}

// clusterView answers /api/v1/cluster from the registry.
func clusterView(ctx context.Context, a *app, reg cascade.Registry) (any, error) {
	nodes, err := reg.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	leases, err := reg.Leases(ctx)
	if err != nil {
		return nil, err
	}
	ls := make([]clusterLease, 0, len(leases))
	for _, l := range leases {
		ls = append(ls, clusterLease{Key: l.Key, NodeID: l.NodeID, RelayURL: l.RelayURL, StartedAt: l.StartedAt})
	}
	if nodes == nil {
		nodes = []cascade.Node{}
	}
	return map[string]any{
		"role":     a.cfg.Role,
		"node_id":  a.cfg.NodeID,
		"nodes":    nodes,
		"leases":   ls,
		"relays":   []any{},
		"registry": reg.Stats(),
	}, nil
}
