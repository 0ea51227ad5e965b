package main

import (
	"github.com/estuary-media/estuary/bridge/audio"
	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/cascade"
	"github.com/estuary-media/estuary/metrics"
)

func init() { wirings = append(wirings, wireMetrics) }

// wireMetrics serves GET /metrics (Prometheus text) from the node's own registry: everything is read
// from the hub, the FLV server, the cluster registry and relays on scrape.
func wireMetrics(a *app) error {
	deps := metrics.Deps{Hub: a.hub, Logger: a.log}
	if srv := a.flvServer; srv != nil {
		deps.Viewers = func() []metrics.Viewer {
			vs := srv.Viewers()
			out := make([]metrics.Viewer, 0, len(vs))
			for _, v := range vs {
				out = append(out, metrics.Viewer{Protocol: v.Info().Protocol, Dropped: v.Dropped()})
			}
			return out
		}
	}
	if reg := a.registry; reg != nil {
		deps.Registry = func() metrics.RegistryStats {
			st := reg.Stats()
			return metrics.RegistryStats{
				Leases: st.Leases, RefreshErrors: st.RefreshErrors, Retaken: st.Retaken, Lost: st.Lost,
				Unreachable: st.Unreachable,
			}
		}
	}
	if a.relay != nil || a.puller != nil {
		deps.Relays = func() []metrics.Relay { return relayMetrics(a.relay, a.puller) }
	}
	deps.TranscodeSeconds = func() map[string]float64 {
		out := map[string]float64{}
		for dir, d := range audio.TranscodeTime() {
			out[dir] = d.Seconds()
		}
		return out
	}
	if sig := a.sig; sig != nil {
		deps.NACKs = sig.NACKs
	}
	if e := a.engine; e != nil {
		deps.UDPBatches = func() (uint64, uint64) {
			st := e.SendStats()
			return st.Datagrams, st.Syscalls
		}
	}
	if connCounts != nil {
		deps.Connections, deps.Refused = connCounts(a)
	}
	m, err := metrics.New(metrics.Config{
		NodeID: a.cfg.NodeID, Role: a.cfg.Role, Version: version,
		HiddenProtocols: []string{frames.Protocol},
	}, deps)
	if err != nil {
		return err
	}
	m.Register(a.mux)
	return nil
}

// connCounts, when set (limits wiring), gives the open and refused connection counts by protocol.
var connCounts func(a *app) (open func() map[string]int, refused func() map[string]uint64)

// relayMetrics lists the relays served and pulled.
func relayMetrics(relay *cascade.Relay, puller *cascade.Puller) []metrics.Relay {
	var out []metrics.Relay
	if relay != nil {
		for _, s := range relay.Served() {
			out = append(out, metrics.Relay{Stream: s.Key, Direction: "serve", Up: true, Sessions: s.Relays})
		}
	}
	if puller != nil {
		for _, p := range puller.Pulls() {
			out = append(out, metrics.Relay{Stream: p.Key, Direction: "pull", Up: p.Up, Sessions: 1})
		}
	}
	return out
}
