// Package metrics exposes a node's state to Prometheus at GET /metrics, on its own registry (never the
// global one). Everything is read on scrape from the hub and the adapters' accessors (a custom
// Collector), so the media hot path does no metrics work at all.
package metrics

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/estuary-media/estuary/sfu"
)

// Config configures the metrics. The zero value is valid.
type Config struct {
	// Namespace prefixes every metric of ours. Default "estuary".
	Namespace string
	// NodeID, Role and Version are reported by estuary_build_info.
	NodeID, Role, Version string
	// HiddenProtocols are subscriber protocols that are not viewers (internal subscribers such as the
	// frames registry's depacketizer, whose own viewers come from Deps.Viewers). Default none.
	HiddenProtocols []string
	// NoRuntime leaves the Go runtime and process collectors out (tests). Default: included.
	NoRuntime bool
}

// Viewer is one viewer that is not a hub subscriber (HTTP-FLV, RTMP play: they share a frames source).
type Viewer struct {
	Protocol string
	Dropped  uint64 // tags/packets dropped because the viewer was slow
}

// RegistryStats are the cluster registry's counters (cascade.Stats).
type RegistryStats struct {
	Leases        int
	RefreshErrors uint64
	Retaken       uint64
	Lost          uint64
	Unreachable   bool
}

// Relay is one relay this node serves or pulls.
type Relay struct {
	Stream    string
	Direction string // "serve" (another node pulls from us) or "pull" (we pull from another node)
	Up        bool
	Sessions  int // relay sessions (serve); 1 for a pull
}

// Deps are the metrics' sources. Hub is required; the rest are optional and read on each scrape.
type Deps struct {
	Hub    *sfu.Hub
	Logger *slog.Logger
	// Viewers lists viewers that are not hub subscribers (FLV and RTMP play).
	Viewers func() []Viewer
	// Registry returns the cluster registry's counters.
	Registry func() RegistryStats
	// Relays lists relays served and pulled.
	Relays func() []Relay
	// Connections returns open connections by protocol (limits wrapper), e.g. {"rtmp": 3}.
	Connections func() map[string]int
	// Refused returns connections refused by limits.max_connections, by protocol.
	Refused func() map[string]uint64
	// NACKs returns the packets WebRTC viewers asked for by RTCP NACK (signaling.Server.NACKs).
	NACKs func() uint64
	// UDPBatches returns the datagrams WebRTC viewers were sent in batches and the system calls that
	// sent them (rtc.Engine.SendStats): fewer calls than datagrams is UDP GSO at work.
	UDPBatches func() (datagrams, syscalls uint64)
	// TranscodeSeconds returns the time spent transcoding audio, in seconds, by direction
	// ("aac_to_opus", "opus_to_aac"; bridge/audio.TranscodeTime).
	TranscodeSeconds func() map[string]float64
}

// Metrics owns the Prometheus registry of a node.
type Metrics struct {
	reg *prometheus.Registry
	h   http.Handler
	log *slog.Logger
}

// New makes the registry and registers the node collector (and Go runtime + process collectors).
func New(cfg Config, deps Deps) (*Metrics, error) {
	if deps.Hub == nil {
		return nil, ErrNoHub
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "estuary"
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "metrics")
	reg := prometheus.NewRegistry()
	if !cfg.NoRuntime {
		if err := reg.Register(collectors.NewGoCollector()); err != nil {
			return nil, err
		}
		if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
			return nil, err
		}
	}
	if err := reg.Register(newNodeCollector(cfg, deps)); err != nil {
		return nil, err
	}
	m := &Metrics{reg: reg, log: log}
	m.h = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
	return m, nil
}

// Registry is the node's Prometheus registry (to add collectors of one's own).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return m.h }

// Register adds GET /metrics to mux.
func (m *Metrics) Register(mux *http.ServeMux) { mux.Handle("GET /metrics", m.h) }
