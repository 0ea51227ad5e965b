package cascade

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/estuary-media/estuary/sfu"
)

// PullerConfig configures a Puller. The zero value is valid.
type PullerConfig struct {
	// NodeID is this node's node_id (for logs).
	NodeID string
	// Token is cluster.token, sent as "Authorization: Bearer {Token}" to the origins' relays.
	Token string
	// ListenIP is the address the relay's ICE candidates use (webrtc.listen_ip); "" = every interface.
	ListenIP string
	// WaitForStream is how long a first viewer waits for a stream about to start
	// (cluster.wait_for_stream). Default 5s.
	WaitForStream time.Duration
	// Origins are origin HTTP addresses "host:port" (cluster.origins), tried in order when the
	// registry is unreachable (or absent). Default none.
	Origins []string
	// Linger is how long a relay stays up after its last viewer left. Default 3s.
	Linger time.Duration
	// RetryInterval spaces the attempts to re-attach a relay that died. Default 250ms.
	RetryInterval time.Duration
	// ConnectTimeout bounds one relay set-up (track list, offer/answer, ICE and DTLS). Default 5s.
	ConnectTimeout time.Duration
}

// PullerDeps are a Puller's collaborators. Registry may be nil (then only Origins are tried).
type PullerDeps struct {
	Registry Registry
	Logger   *slog.Logger
	// HTTPClient talks to the origins' relays. Default: a client with ConnectTimeout.
	HTTPClient *http.Client
}

// Puller is the cluster's sfu.Puller: a viewer asking for a stream this node does not carry makes it
// look the stream up in the registry (waiting up to WaitForStream, woken by announcements) and pull
// it over the origin's relay, published into the local hub by a publisher of protocol "relay". One
// relay per stream whatever the viewers (concurrent Pulls of one key share it); it stops Linger after
// the last viewer left. When the relay dies, or the registry announces a new publisher of the stream
// on another node, it looks again and re-attaches at once; the hub keeps the viewers (same track IDs
// and codecs: the same sfu tracks, continuing across the new SSRC).
type Puller struct {
	cfg    PullerConfig
	reg    Registry
	log    *slog.Logger
	client *http.Client

	mu     sync.Mutex
	hub    *sfu.Hub         // guarded by mu; set by SetHub
	pulls  map[string]*pull // guarded by mu
	closed bool             // guarded by mu

	ctx       context.Context
	cancel    context.CancelFunc
	stopWatch func()
	wg        sync.WaitGroup
}

var _ sfu.Puller = (*Puller)(nil)

// NewPuller makes a puller. Call SetHub before the first Pull, and Close at shutdown.
func NewPuller(cfg PullerConfig, deps PullerDeps) (*Puller, error) {
	if cfg.WaitForStream <= 0 {
		cfg.WaitForStream = 5 * time.Second
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 3 * time.Second
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 250 * time.Millisecond
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if deps.Registry == nil && len(cfg.Origins) == 0 {
		return nil, fmt.Errorf("%w: a puller needs a registry or origins", ErrInvalidConfig)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := deps.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: cfg.ConnectTimeout}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Puller{
		cfg: cfg, reg: deps.Registry, log: log.With("component", "puller"), client: client,
		pulls: map[string]*pull{}, ctx: ctx, cancel: cancel,
	}
	if p.reg != nil {
		p.stopWatch = p.reg.Watch(p.onEvent)
	}

	return p, nil
}

// SetHub sets the hub relays publish into (it is made after the puller).
func (p *Puller) SetHub(h *sfu.Hub) {
	p.mu.Lock()
	p.hub = h
	p.mu.Unlock()
}

// pull is one stream pulled over a relay.
type pull struct {
	key   string
	ready chan struct{} // closed once the first relay is up (err nil) or failed (err set)
	err   error         // set before ready is closed
	moved chan struct{} // cap 1: the registry announced a publisher on another node

	mu     sync.Mutex
	nodeID string    // the node pulled from; guarded by mu
	url    string    // its relay URL; guarded by mu
	since  time.Time // when the current relay came up; guarded by mu
	up     bool      // a relay is up; guarded by mu
	hops   int       // relays set up (1 + re-attachments); guarded by mu
}

// Pull makes sure key is published locally by a relay: it starts (or joins) the stream's pull and
// returns once the relay is up, or with an error (ErrNotFound when no node publishes key).
func (p *Puller) Pull(ctx context.Context, key string) error {
	p.mu.Lock()
	if p.closed || p.hub == nil {
		p.mu.Unlock()

		return ErrClosed
	}
	pl := p.pulls[key]
	if pl == nil {
		pl = &pull{key: key, ready: make(chan struct{}), moved: make(chan struct{}, 1)}
		p.pulls[key] = pl
		p.wg.Add(1)
		go p.run(pl)
	}
	p.mu.Unlock()
	select {
	case <-pl.ready:
		return pl.err
	case <-ctx.Done():
		return fmt.Errorf("pull %s: %w", key, ctx.Err())
	}
}

// PullInfo is what the API shows of a stream pulled by this node.
type PullInfo struct {
	Key      string    `json:"key"`
	NodeID   string    `json:"node_id"`
	RelayURL string    `json:"relay_url"`
	Up       bool      `json:"up"`
	Since    time.Time `json:"since"`
	Attached int       `json:"attached"` // relays set up for this pull (1 + re-attachments)
}

// Pulls returns the streams being pulled, sorted by key.
func (p *Puller) Pulls() []PullInfo {
	p.mu.Lock()
	pls := make([]*pull, 0, len(p.pulls))
	for _, pl := range p.pulls {
		pls = append(pls, pl)
	}
	p.mu.Unlock()
	out := make([]PullInfo, 0, len(pls))
	for _, pl := range pls {
		pl.mu.Lock()
		out = append(out, PullInfo{Key: pl.key, NodeID: pl.nodeID, RelayURL: pl.url, Up: pl.up, Since: pl.since, Attached: pl.hops})
		pl.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })

	return out
}

// Close stops every pull (their relay publications end) and waits. Idempotent.
func (p *Puller) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	if p.stopWatch != nil {
		p.stopWatch()
	}
	p.cancel()
	p.wg.Wait()
}

// onEvent wakes a pull whose stream started on another node (the publisher moved): it re-attaches.
func (p *Puller) onEvent(ev Event) {
	if ev.Type != EventStart {
		return
	}
	p.mu.Lock()
	pl := p.pulls[ev.Record.Key]
	p.mu.Unlock()
	if pl == nil {
		return
	}
	pl.mu.Lock()
	moved := pl.up && pl.nodeID != ev.Record.NodeID || !pl.up
	pl.mu.Unlock()
	if moved {
		select {
		case pl.moved <- struct{}{}:
		default:
		}
	}
}

// remove drops pl from the map (if it is still there).
func (p *Puller) remove(pl *pull) {
	p.mu.Lock()
	if p.pulls[pl.key] == pl {
		delete(p.pulls, pl.key)
	}
	p.mu.Unlock()
}

func (p *Puller) getHub() *sfu.Hub {
	p.mu.Lock()
	defer p.mu.Unlock()

	return p.hub
}

// wanted reports whether key still has viewers here (a relay is worth keeping or re-attaching).
func (p *Puller) wanted(key string) bool {
	h := p.getHub()
	if h == nil {
		return false
	}
	st := h.Stream(key)

	return st != nil && len(st.Subscribers()) > 0
}

// servedLocally reports whether key has a live publisher on this node other than a relay (a publisher
// that moved here: nothing to pull).
func (p *Puller) servedLocally(key string) bool {
	h := p.getHub()
	if h == nil {
		return false
	}
	st := h.Stream(key)
	if st == nil {
		return false
	}
	pub := st.Publisher()

	return pub != nil && pub.Info().Protocol != RelayProtocol
}

// run keeps key's relay up while it has viewers.
func (p *Puller) run(pl *pull) {
	defer p.wg.Done()
	defer p.remove(pl)
	first := true
	for {
		wait := p.cfg.WaitForStream
		if !first {
			wait = time.Second
		}
		src, err := p.attach(pl, wait)
		if err != nil {
			if first {
				pl.err = fmt.Errorf("pull %s: %w", pl.key, err)
				close(pl.ready)
				p.log.Info("pull failed", "stream", pl.key, "err", err)

				return
			}
			if !p.wanted(pl.key) || p.ctx.Err() != nil {
				p.log.Info("pull ended: no viewers left while re-attaching", "stream", pl.key)

				return
			}
			if p.servedLocally(pl.key) {
				p.log.Info("pull ended: the stream is now published on this node", "stream", pl.key)

				return
			}
			p.log.Debug("re-attach failed; retrying", "stream", pl.key, "err", err)
			t := time.NewTimer(p.cfg.RetryInterval)
			select {
			case <-t.C:
			case <-pl.moved:
				t.Stop()
			case <-p.ctx.Done():
				t.Stop()
			}

			continue
		}
		if first {
			first = false
			close(pl.ready)
		}
		reason := p.hold(pl, src)
		if reason != "relay died" && reason != "publisher moved" {
			p.remove(pl) // new viewers start a new pull from now on
		}
		src.shutdown()
		pl.mu.Lock()
		pl.up = false
		pl.mu.Unlock()
		p.log.Info("relay down", "stream", pl.key, "node", src.nodeID, "reason", reason)
		if reason != "relay died" && reason != "publisher moved" {
			return
		}
		if !p.wanted(pl.key) {
			return
		}
	}
}

// hold waits while the relay is up: it returns why it should come down.
func (p *Puller) hold(pl *pull, src *relaySource) string {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var idleSince time.Time
	for {
		select {
		case <-src.dead:
			return "relay died"
		case <-pl.moved:
			if rec, err := p.lookup(pl.key); err == nil && rec.NodeID != src.nodeID {
				return "publisher moved"
			}
		case <-p.ctx.Done():
			return "shutdown"
		case <-tick.C:
			if p.wanted(pl.key) {
				idleSince = time.Time{}

				continue
			}
			if idleSince.IsZero() {
				idleSince = time.Now()
			} else if time.Since(idleSince) >= p.cfg.Linger {
				return "no viewers"
			}
		}
	}
}

func (p *Puller) lookup(key string) (Record, error) {
	if p.reg == nil {
		return Record{}, ErrNotFound
	}
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()

	return p.reg.Lookup(ctx, key)
}

// target is a relay to pull from.
type target struct {
	nodeID string
	url    string
}

// find returns where key is published: the registry (waiting up to wait for an announcement), else,
// with the registry unreachable or absent, the first of Origins that serves the stream.
func (p *Puller) find(key string, wait time.Duration) (target, error) {
	if p.reg != nil {
		rec, err := p.lookup(key)
		if errors.Is(err, ErrNotFound) && wait > 0 {
			ctx, cancel := context.WithTimeout(p.ctx, wait+time.Second)
			rec, err = p.reg.WaitFor(ctx, key, wait)
			cancel()
		}
		switch {
		case err == nil && rec.NodeID == p.cfg.NodeID && p.cfg.NodeID != "":
			return target{}, fmt.Errorf("%w: %s is published on this node", ErrRelay, key)
		case err == nil && rec.RelayURL != "":
			return target{nodeID: rec.NodeID, url: rec.RelayURL}, nil
		case err == nil:
			return target{}, fmt.Errorf("%w: %s is published on node %q, which advertises no relay URL", ErrRelay, key, rec.NodeID)
		case errors.Is(err, ErrNotFound) || errors.Is(err, ErrClosed) || p.ctx.Err() != nil:
			return target{}, err
		}
		if len(p.cfg.Origins) == 0 {
			return target{}, err
		}
		p.log.Warn("registry unreachable: trying cluster.origins", "stream", key, "err", err)
	}
	for _, o := range p.cfg.Origins {
		url := "http://" + o + "/relay/v1/" + key
		if strings.Contains(o, "://") {
			url = strings.TrimRight(o, "/") + "/relay/v1/" + key
		}
		if _, err := p.trackList(url, key); err == nil {
			return target{nodeID: o, url: url}, nil
		}
	}

	return target{}, fmt.Errorf("%w: %s (no origin of cluster.origins serves it)", ErrNotFound, key)
}

// attach finds key and sets a relay up from its node into the hub.
func (p *Puller) attach(pl *pull, wait time.Duration) (*relaySource, error) {
	tg, err := p.find(pl.key, wait)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	src, err := p.connect(pl.key, tg)
	if err != nil {
		return nil, err
	}
	pl.mu.Lock()
	pl.nodeID, pl.url, pl.since, pl.up = tg.nodeID, tg.url, time.Now(), true
	pl.hops++
	hops := pl.hops
	pl.mu.Unlock()
	p.log.Info("relay up", "stream", pl.key, "node", tg.nodeID, "relay_url", tg.url,
		"setup_ms", time.Since(start).Milliseconds(), "attached", hops)

	return src, nil
}
