package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/estuary-media/estuary/cascade"
)

// wireCluster makes the stream registry before the hub: in memory when standalone, Redis
// (cluster.redis) for origin and edge. The hub claims a lease per publication through it; /readyz
// needs the store (origin/edge); /api/v1/cluster shows its nodes and leases. It closes after the hub
// (releasing this node's leases and node record).
func wireCluster(a *app) error {
	c := a.cfg.Cluster
	advertise := c.Advertise
	if advertise == "" && a.cfg.Role != "standalone" {
		advertise = defaultAdvertise(a.cfg.HTTP.Listen, a.cfg.HTTP.TLSCert != "" && a.cfg.HTTP.TLSKey != "")
	}
	base := cascade.Config{
		NodeID:    a.cfg.NodeID,
		Role:      a.cfg.Role,
		Advertise: advertise,
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
			// An edge with cluster.origins still finds streams without Redis (it tries the origins in
			// order): it stays ready; an origin cannot take publishers without the registry.
			fallback := a.cfg.Role == "edge" && len(c.Origins) > 0
			a.ready = append(a.ready, func(ctx context.Context) error {
				ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				if err := reg.Ping(ctx); err != nil && !fallback {
					return fmt.Errorf("cluster registry unreachable: %w", err)
				}
				return nil
			})
		}
	}
	if err != nil {
		return fmt.Errorf("cluster registry: %w", err)
	}
	hrc := cascade.HubRegistryConfig{}
	if a.cfg.Role == "edge" {
		hrc.RefusePublish = edgeRefusal(c.Origins)
	}
	a.hubDeps.Registry = cascade.NewHubRegistry(reg, hrc, deps)
	a.registry = reg
	a.afterHub = append(a.afterHub, func() {
		if err := reg.Close(); err != nil {
			a.log.Warn("cluster registry close", "err", err)
		}
	})
	if a.cfg.Role != "standalone" {
		p, err := cascade.NewPuller(cascade.PullerConfig{
			NodeID: a.cfg.NodeID, Token: c.Token, ListenIP: a.cfg.WebRTC.ListenIP,
			WaitForStream: c.WaitForStream, Origins: c.Origins,
		}, cascade.PullerDeps{Registry: reg, Logger: a.log})
		if err != nil {
			_ = reg.Close()
			return fmt.Errorf("cluster puller: %w", err)
		}
		a.puller = p
		a.hubDeps.Puller = p
	}
	a.clusterView = func(ctx context.Context) (any, error) { return clusterView(ctx, a, reg) }
	return nil
}

// defaultAdvertise is cluster.advertise when unset: the HTTP listen address when it names a host.
func defaultAdvertise(listen string, tls bool) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		return ""
	}
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port)
}

// edgeRefusal is the reason an edge gives a publisher.
func edgeRefusal(origins []string) string {
	if len(origins) == 0 {
		return "publish to an origin of the cluster"
	}
	return "publish to an origin: " + strings.Join(origins, ", ")
}

// wireRelay serves the relay egress (POST /relay/v1/{app}/{stream}: other nodes pull this node's
// streams) and gives the puller its hub. Both stop before the hub closes.
func wireRelay(a *app) error {
	if a.cfg.Role == "standalone" {
		return nil
	}
	relay, err := cascade.NewRelay(cascade.RelayConfig{
		NodeID: a.cfg.NodeID, Token: a.cfg.Cluster.Token, ListenIP: a.cfg.WebRTC.ListenIP,
	}, cascade.RelayDeps{Hub: a.hub, Logger: a.log})
	if err != nil {
		return fmt.Errorf("cluster relay: %w", err)
	}
	if a.cfg.Cluster.Token == "" {
		a.log.Warn("cluster.token is empty: relays are served without authentication")
	}
	relay.Register(a.mux)
	a.relay = relay
	if a.puller != nil {
		a.puller.SetHub(a.hub)
		a.closers = append(a.closers, a.puller.Close)
	}
	a.closers = append(a.closers, relay.Close)
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
		"relays":   relaysView(a),
		"pulls":    pullsView(a),
		"registry": reg.Stats(),
	}, nil
}

// relaysView is the relays this node serves, per stream.
func relaysView(a *app) []cascade.RelayServed {
	if a.relay == nil {
		return []cascade.RelayServed{}
	}
	return a.relay.Served()
}

// pullsView is the streams this node pulls over relays.
func pullsView(a *app) []cascade.PullInfo {
	if a.puller == nil {
		return []cascade.PullInfo{}
	}
	return a.puller.Pulls()
}
