package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// Config configures a Hub. The zero value is valid: every field documents its default.
type Config struct {
	// Grace is how long a stream whose publisher left keeps its subscribers, waiting for a publisher of
	// the same key to return. Default 10s.
	Grace time.Duration
	// Takeover lets a new publisher of a live key replace the old one (which is closed) instead of
	// being refused with ErrPublisherExists. Default off.
	Takeover bool
	// NoGOPCache turns the per-video-track GOP cache off (webrtc.gop_cache: off). Default: cache on.
	NoGOPCache bool
	// GOPCacheMaxDuration caps the cached GOP. Default 5s.
	GOPCacheMaxDuration time.Duration
	// GOPCacheMaxBytes caps the cached GOP's payload bytes. Default 8 MiB.
	GOPCacheMaxBytes int
	// KeyframeInterval is the least time between two keyframe requests a track forwards to its
	// publisher. Default 500ms.
	KeyframeInterval time.Duration
}

// Puller is asked for a stream that has no local publisher (cluster: pull it over a relay). Pull returns
// once the stream is published locally (then the subscribe goes on) or with an error.
type Puller interface {
	Pull(ctx context.Context, key string) error
}

// Registry is told of publications (cluster: the stream lease). Claim is called before a publish is
// accepted and may refuse it (wrapping ErrPublisherExists); Release after the publication ends.
// Both do I/O: the hub never calls them with a lock held.
type Registry interface {
	Claim(ctx context.Context, key string, pub Publisher) error
	Release(ctx context.Context, key string)
}

// Deps are the Hub's collaborators. All are optional.
type Deps struct {
	Logger   *slog.Logger
	Puller   Puller
	Registry Registry
	// OnEvent, when set, is called (never with a lock held) on stream and client events, for
	// metrics and hooks.
	OnEvent func(Event)
}

// EventType names a hub event.
type EventType uint8

const (
	EventPublish     EventType = iota + 1 // a publisher started
	EventUnpublish                        // a publisher left (grace starts)
	EventStreamEnd                        // the stream is gone (grace over, or no subscribers left)
	EventSubscribe                        // a subscriber joined
	EventUnsubscribe                      // a subscriber left
)

// Event is passed to Deps.OnEvent.
type Event struct {
	Type   EventType
	Key    string
	Client ClientInfo
}

// Defaults of Config's zero fields.
const (
	DefaultGrace               = 10 * time.Second
	DefaultGOPCacheMaxDuration = 5 * time.Second
	DefaultGOPCacheMaxBytes    = 8 << 20
	DefaultKeyframeInterval    = 500 * time.Millisecond
)

// releaseTimeout bounds Registry.Release, which runs after the caller's context is gone.
const releaseTimeout = 5 * time.Second

// Hub holds the streams of this node, keyed "{app}/{stream}".
type Hub struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	mu      sync.Mutex // guards streams, closed and every Stream's guarded fields; never held across I/O
	streams map[string]*Stream
	closed  bool
}

// NewHub makes a hub.
func NewHub(cfg Config, deps Deps) *Hub {
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.GOPCacheMaxDuration <= 0 {
		cfg.GOPCacheMaxDuration = DefaultGOPCacheMaxDuration
	}
	if cfg.GOPCacheMaxBytes <= 0 {
		cfg.GOPCacheMaxBytes = DefaultGOPCacheMaxBytes
	}
	if cfg.KeyframeInterval <= 0 {
		cfg.KeyframeInterval = DefaultKeyframeInterval
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{cfg: cfg, deps: deps, log: log.With("component", "sfu"), streams: make(map[string]*Stream)}
}

// Config returns the hub's configuration with defaults filled in.
func (h *Hub) Config() Config { return h.cfg }

func validTracks(tracks []TrackInfo) error {
	if len(tracks) == 0 {
		return ErrNoTracks
	}
	for i, t := range tracks {
		if t.ID == "" || t.Kind != KindAudio && t.Kind != KindVideo {
			return fmt.Errorf("%w: track %d (%q, kind %s)", ErrInvalidTrack, i, t.ID, t.Kind)
		}
		for _, u := range tracks[:i] {
			if u.ID == t.ID {
				return fmt.Errorf("%w: duplicate track ID %q", ErrInvalidTrack, t.ID)
			}
		}
	}
	return nil
}

// Publish makes pub the publisher of key with the given tracks. A live key is refused with
// ErrPublisherExists (unless Config.Takeover); a key in its grace period is taken over and its
// subscribers continue on the new tracks (same track ID and codec mime type: same *Track).
func (h *Hub) Publish(ctx context.Context, key string, pub Publisher, tracks []TrackInfo) (*Publication, error) {
	if !ValidKey(key) {
		return nil, fmt.Errorf("publish %q: %w", key, ErrInvalidKey)
	}
	if err := validTracks(tracks); err != nil {
		return nil, fmt.Errorf("publish %s: %w", key, err)
	}
	s, old, err := h.reserve(key)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", key, err)
	}
	if old != nil {
		for _, t := range old.tracks {
			t.detach(old)
		}
		h.release(key)
		h.log.Info("publisher taken over", "stream", key, "client_id", old.pub.Info().ID)
		_ = old.pub.Close()
		h.emit(EventUnpublish, key, old.pub)
	}
	if h.deps.Registry != nil {
		err = h.deps.Registry.Claim(ctx, key, pub)
	}

	h.mu.Lock()
	if err == nil && (h.closed || s.ended) {
		err = ErrClosed
		defer h.release(key) // claimed, but the hub closed meanwhile
	}
	if err != nil {
		s.claiming = false
		ended := !s.ended && h.idleLocked(s)
		h.mu.Unlock()
		if ended {
			h.emit(EventStreamEnd, key, nil)
		}
		return nil, fmt.Errorf("publish %s: %w", key, err)
	}
	p := &Publication{stream: s, pub: pub}
	kept := h.matchTracksLocked(p, tracks)
	h.mu.Unlock()

	// Attach outside h.mu (it waits for the tracks' fan-out); s.claiming keeps other publishers and
	// the grace timer away meanwhile.
	for i, t := range p.tracks {
		t.attach(p, tracks[i])
	}
	h.mu.Lock()
	s.claiming = false
	if h.closed || s.ended { // the hub closed while we attached
		p.closed.Store(true)
		h.mu.Unlock()
		for _, t := range p.tracks {
			t.detach(p)
		}
		h.release(key)
		return nil, fmt.Errorf("publish %s: %w", key, ErrClosed)
	}
	s.tracks = append([]*Track(nil), p.tracks...)
	s.pub = p
	h.mu.Unlock()

	h.log.Info("publish", "stream", key, "client_id", pub.Info().ID, "tracks", len(tracks), "kept_tracks", len(kept))
	h.emit(EventPublish, key, pub)
	for _, t := range kept {
		if t.video && t.Writers() > 0 {
			t.RequestKeyframe() // viewers that continue wait for the new source's keyframe
		}
	}
	return p, nil
}

// reserve marks key's stream (made if need be) as being claimed by a new publisher. With a live
// publisher it fails (ErrPublisherExists) or, with Config.Takeover, returns the publication to end.
func (h *Hub) reserve(key string) (s *Stream, old *Publication, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, ErrClosed
	}
	s = h.streams[key]
	if s != nil {
		if s.claiming || s.pub != nil && !h.cfg.Takeover {
			return nil, nil, ErrPublisherExists
		}
		if s.pub != nil { // takeover: the old publication ends without a grace period
			old = s.pub
			old.closed.Store(true)
			s.pub = nil
		}
	} else {
		s = &Stream{hub: h, key: key, created: time.Now()}
		h.streams[key] = s
	}
	s.claiming = true
	s.stopGraceLocked()
	return s, old, nil
}

// matchTracksLocked fills p's tracks: a stream's track with the same ID, kind and codec mime type is
// kept (its writers continue), other declared tracks are new. It returns the kept ones. h.mu must be
// held.
func (h *Hub) matchTracksLocked(p *Publication, tracks []TrackInfo) (kept []*Track) {
	s := p.stream
	p.tracks = make([]*Track, len(tracks))
	for i, info := range tracks {
		var t *Track
		for _, ot := range s.tracks {
			oi := ot.Info()
			if oi.ID == info.ID && oi.Kind == info.Kind && strings.EqualFold(oi.Codec.MimeType, info.Codec.MimeType) {
				t = ot
				kept = append(kept, t)
				break
			}
		}
		if t == nil {
			t = newTrack(s.key, info, &h.cfg)
		}
		p.tracks[i] = t
	}
	return kept
}

// unpublish ends p (Publication.Close): the stream enters its grace period, or ends without subscribers.
func (h *Hub) unpublish(p *Publication) {
	s := p.stream
	h.mu.Lock()
	if s.pub != p { // taken over, or the hub closed
		h.mu.Unlock()
		return
	}
	s.pub = nil
	ended := !s.ended && h.idleLocked(s)
	h.mu.Unlock()
	for _, t := range p.tracks {
		t.detach(p)
	}

	h.release(s.key)
	h.log.Info("unpublish", "stream", s.key, "client_id", p.pub.Info().ID, "ended", ended)
	h.emit(EventUnpublish, s.key, p.pub)
	if ended {
		h.emit(EventStreamEnd, s.key, nil)
	}
}

// idleLocked handles a stream without a publisher: without subscribers it ends (true); else its grace
// period starts. h.mu must be held.
func (h *Hub) idleLocked(s *Stream) (ended bool) {
	if len(s.subs) == 0 {
		h.removeLocked(s)
		return true
	}
	s.stopGraceLocked()
	gen := s.graceGen
	s.graceTimer = time.AfterFunc(h.cfg.Grace, func() { h.graceOver(s, gen) })
	return false
}

// removeLocked removes s from the hub. h.mu must be held.
func (h *Hub) removeLocked(s *Stream) {
	s.stopGraceLocked()
	s.ended = true
	if h.streams[s.key] == s {
		delete(h.streams, s.key)
	}
}

// graceOver ends a stream whose grace period passed without a publisher: its subscribers are closed.
func (h *Hub) graceOver(s *Stream, gen uint64) {
	h.mu.Lock()
	if s.graceGen != gen || s.pub != nil || s.claiming || s.ended {
		h.mu.Unlock()
		return
	}
	subs := s.subs
	s.subs = nil
	h.removeLocked(s)
	h.mu.Unlock()

	h.log.Info("stream ended: grace period over", "stream", s.key, "subscribers", len(subs))
	h.closeSubs(s.key, subs)
	h.emit(EventStreamEnd, s.key, nil)
}

// closeSubs detaches and closes subscriptions taken from a stream's list (under h.mu, by the caller).
func (h *Hub) closeSubs(key string, subs []*subscription) {
	for _, sb := range subs {
		if sb.gone.Swap(true) {
			continue
		}
		h.mu.Lock()
		joined, removes := sb.joined, sb.removes
		sb.removes = nil
		h.mu.Unlock()
		if !joined {
			continue // still joining: Subscribe sees gone and fails
		}
		for _, r := range removes {
			r()
		}
		_ = sb.sub.Close()
		h.emit(EventUnsubscribe, key, sb.sub)
	}
}

// Subscribe adds sub to the stream: AddTrack is called for each track, and the writers it returns
// receive packets (video starting at the cached GOP's keyframe, or at the next keyframe). The stream
// must have a publisher or be in its grace period; else the Puller is asked; else ErrStreamNotFound.
// unsubscribe is idempotent. When the stream ends, sub.Close is called.
func (h *Hub) Subscribe(ctx context.Context, key string, sub Subscriber) (unsubscribe func(), err error) {
	if !ValidKey(key) {
		return nil, fmt.Errorf("subscribe %q: %w", key, ErrInvalidKey)
	}
	unsub, err := h.subscribe(key, sub)
	if err == nil || !errors.Is(err, ErrStreamNotFound) || h.deps.Puller == nil {
		return unsub, err
	}
	if perr := h.deps.Puller.Pull(ctx, key); perr != nil {
		return nil, fmt.Errorf("subscribe %s: pull: %w", key, perr)
	}
	return h.subscribe(key, sub)
}

type takenTrack struct {
	t *Track
	w TrackWriter
}

func (h *Hub) subscribe(key string, sub Subscriber) (func(), error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, fmt.Errorf("subscribe %s: %w", key, ErrClosed)
	}
	s := h.streams[key]
	if s == nil || len(s.tracks) == 0 {
		h.mu.Unlock()
		return nil, fmt.Errorf("subscribe %s: %w", key, ErrStreamNotFound)
	}
	tracks := append([]*Track(nil), s.tracks...)
	sb := &subscription{stream: s, sub: sub}
	s.subs = append(s.subs, sb)
	h.mu.Unlock()

	taken := make([]takenTrack, 0, len(tracks))
	for _, t := range tracks {
		w, err := sub.AddTrack(t)
		if errors.Is(err, ErrTrackSkipped) || err == nil && w == nil {
			continue
		}
		if err != nil {
			h.abandon(sb)
			return nil, fmt.Errorf("subscribe %s: track %s: %w", key, t.ID(), err)
		}
		taken = append(taken, takenTrack{t, w})
	}
	removes := make([]func(), 0, len(taken))
	for _, tt := range taken {
		removes = append(removes, tt.t.AddWriter(tt.w))
		if tt.t.video {
			tt.t.RequestKeyframe()
		}
	}
	h.mu.Lock()
	if sb.gone.Load() { // the stream ended (or the hub closed) while we joined
		err := ErrStreamNotFound
		if h.closed {
			err = ErrClosed
		}
		h.mu.Unlock()
		for _, r := range removes {
			r()
		}
		return nil, fmt.Errorf("subscribe %s: %w", key, err)
	}
	sb.joined, sb.removes = true, removes
	h.mu.Unlock()

	h.log.Info("subscribe", "stream", key, "client_id", sub.Info().ID, "tracks", len(taken))
	h.emit(EventSubscribe, key, sub)
	return func() { h.unsubscribe(sb) }, nil
}

// abandon removes a subscription that failed to join.
func (h *Hub) abandon(sb *subscription) {
	if sb.gone.Swap(true) {
		return
	}
	h.mu.Lock()
	ended := h.dropSubLocked(sb)
	h.mu.Unlock()
	if ended {
		h.emit(EventStreamEnd, sb.stream.key, nil)
	}
}

// dropSubLocked removes sb from its stream; a stream left without publisher nor subscribers ends
// (true). h.mu must be held.
func (h *Hub) dropSubLocked(sb *subscription) (ended bool) {
	s := sb.stream
	s.removeSubLocked(sb)
	if s.pub == nil && !s.claiming && len(s.subs) == 0 && !s.ended {
		h.removeLocked(s)
		return true
	}
	return false
}

func (h *Hub) unsubscribe(sb *subscription) {
	if sb.gone.Swap(true) {
		return
	}
	h.mu.Lock()
	removes := sb.removes
	sb.removes = nil
	ended := h.dropSubLocked(sb)
	h.mu.Unlock()
	for _, r := range removes {
		r()
	}
	h.log.Info("unsubscribe", "stream", sb.stream.key, "client_id", sb.sub.Info().ID)
	h.emit(EventUnsubscribe, sb.stream.key, sb.sub)
	if ended {
		h.emit(EventStreamEnd, sb.stream.key, nil)
	}
}

// Stream returns the stream of key, or nil.
func (h *Hub) Stream(key string) *Stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams[key]
}

// Streams returns a snapshot of every stream, sorted by key.
func (h *Hub) Streams() []*Stream {
	h.mu.Lock()
	out := make([]*Stream, 0, len(h.streams))
	for _, s := range h.streams {
		out = append(out, s)
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// Client finds a publisher or subscriber by ClientInfo.ID (for kick); nil if none.
func (h *Hub) Client(id string) Client {
	h.mu.Lock()
	var clients []Client
	for _, s := range h.streams {
		if s.pub != nil {
			clients = append(clients, s.pub.pub)
		}
		for _, sb := range s.subs {
			clients = append(clients, sb.sub)
		}
	}
	h.mu.Unlock()
	for _, c := range clients {
		if c.Info().ID == id {
			return c
		}
	}
	return nil
}

// Close closes every publisher and subscriber and stops the hub's timers. Idempotent.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	var pubs []*Publication
	var subs [][]*subscription
	var keys []string
	for key, s := range h.streams {
		if s.pub != nil {
			p := s.pub
			p.closed.Store(true)
			s.pub = nil
			pubs = append(pubs, p)
		}
		subs = append(subs, s.subs)
		s.subs = nil
		s.stopGraceLocked()
		s.ended = true
		keys = append(keys, key)
	}
	h.streams = make(map[string]*Stream)
	h.mu.Unlock()

	for _, p := range pubs {
		for _, t := range p.tracks {
			t.detach(p)
		}
		h.release(p.stream.key)
		_ = p.pub.Close()
		h.emit(EventUnpublish, p.stream.key, p.pub)
	}
	for i, key := range keys {
		h.closeSubs(key, subs[i])
		h.emit(EventStreamEnd, key, nil)
	}
}

// release tells the Registry a publication ended.
func (h *Hub) release(key string) {
	if h.deps.Registry == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	h.deps.Registry.Release(ctx, key)
}

// emit calls Deps.OnEvent (never with h.mu held).
func (h *Hub) emit(t EventType, key string, c Client) {
	if h.deps.OnEvent == nil {
		return
	}
	ev := Event{Type: t, Key: key}
	if c != nil {
		ev.Client = c.Info()
	}
	h.deps.OnEvent(ev)
}
