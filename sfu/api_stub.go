package sfu

// STUB: exported surface of the core, implemented by the sfu work (hub.go, stream.go, track.go,
// downtrack.go, gopcache.go, keyframe.go). Adapters code against these signatures.

import (
	"context"
	"time"

	"github.com/pion/rtp"
)

// Hub holds the streams of this node, keyed "{app}/{stream}".
type Hub struct{}

// NewHub makes a hub.
func NewHub(cfg Config, deps Deps) *Hub { return &Hub{} }

// Publish makes pub the publisher of key with the given tracks. A live key is refused with
// ErrPublisherExists (unless Config.Takeover); a key in its grace period is taken over and its
// subscribers continue on the new tracks (same track ID and codec mime type: same *Track).
func (h *Hub) Publish(ctx context.Context, key string, pub Publisher, tracks []TrackInfo) (*Publication, error) {
	return nil, nil
}

// Subscribe adds sub to the stream: AddTrack is called for each track, and the writers it returns
// receive packets (video starting at the cached GOP's keyframe, or at the next keyframe). The stream
// must have a publisher or be in its grace period; else the Puller is asked; else ErrStreamNotFound.
// unsubscribe is idempotent. When the stream ends, sub.Close is called.
func (h *Hub) Subscribe(ctx context.Context, key string, sub Subscriber) (unsubscribe func(), err error) {
	return nil, nil
}

// Stream returns the stream of key, or nil.
func (h *Hub) Stream(key string) *Stream { return nil }

// Streams returns a snapshot of every stream, sorted by key.
func (h *Hub) Streams() []*Stream { return nil }

// Client finds a publisher or subscriber by ClientInfo.ID (for kick); nil if none.
func (h *Hub) Client(id string) Client { return nil }

// Close closes every publisher and subscriber and stops the hub's timers. Idempotent.
func (h *Hub) Close() {}

// Publication is a publisher's hold on a stream.
type Publication struct{}

// Track returns the publication's track with the given ID, or nil.
func (p *Publication) Track(id string) *Track { return nil }

// Tracks returns the publication's tracks in the order they were declared.
func (p *Publication) Tracks() []*Track { return nil }

// Stream returns the publication's stream.
func (p *Publication) Stream() *Stream { return nil }

// Close ends the publication: the stream enters its grace period. Idempotent.
func (p *Publication) Close() {}

// Stream is one stream of the hub.
type Stream struct{}

// Key is "{app}/{stream}".
func (s *Stream) Key() string { return "" }

// Publisher returns the live publisher, or nil during the grace period.
func (s *Stream) Publisher() Publisher { return nil }

// Tracks returns the stream's tracks.
func (s *Stream) Tracks() []*Track { return nil }

// Subscribers returns a snapshot of the stream's subscribers.
func (s *Stream) Subscribers() []Subscriber { return nil }

// Created is when the stream was first published.
func (s *Stream) Created() time.Time { return time.Time{} }

// Track is one RTP track of a stream. It outlives a publisher reconnect within the grace period.
type Track struct{}

// Info returns the track's ID, kind and codec.
func (t *Track) Info() TrackInfo { return TrackInfo{} }

// ID, Kind and Codec are shorthands for Info's fields.
func (t *Track) ID() string   { return "" }
func (t *Track) Kind() Kind   { return 0 }
func (t *Track) Codec() Codec { return Codec{} }

// StreamKey is the key of the track's stream.
func (t *Track) StreamKey() string { return "" }

// WriteRTP is called by the publisher's adapter, from one goroutine, for each packet. It updates the
// GOP cache and fans the packet out to every writer. It allocates nothing and never blocks; p is not
// kept after it returns.
func (t *Track) WriteRTP(p *rtp.Packet) error { return nil }

// RequestKeyframe forwards a keyframe request to the publisher, rate-limited by Config.KeyframeInterval.
func (t *Track) RequestKeyframe() {}

// AddWriter attaches a writer directly (Stream.Subscribe does this for each track a subscriber takes).
// The writer first gets the cached GOP, then live packets. remove is idempotent.
func (t *Track) AddWriter(w TrackWriter) (remove func()) { return func() {} }

// OnDemand registers f, called with true when the track gets its first writer and false when its last
// writer leaves (lazy transcoders and depacketizers start and stop on it). Never called with a lock held.
func (t *Track) OnDemand(f func(active bool)) {}

// Writers is the number of writers attached.
func (t *Track) Writers() int { return 0 }

// SetDetails records what the adapter learned of the track (profile, size, sample rate...).
func (t *Track) SetDetails(d Details) {}

// Details returns the last SetDetails value.
func (t *Track) Details() Details { return Details{} }

// TrackStats are a track's ingest counters.
type TrackStats struct {
	Packets uint64
	Bytes   uint64
}

// Stats returns the track's ingest counters.
func (t *Track) Stats() TrackStats { return TrackStats{} }

// PacketSink is where a DownTrack writes: pion's webrtc.TrackLocalWriter has this shape. The sink sets
// SSRC and payload type; the DownTrack sets sequence number, timestamp and marker.
type PacketSink interface {
	WriteRTP(h *rtp.Header, payload []byte) (int, error)
}

// DownTrackOptions configures a DownTrack. The zero value is valid.
type DownTrackOptions struct {
	// QueuePackets bounds the queue (default 1024 for video, 128 for audio).
	QueuePackets int
}

// DownTrack is a TrackWriter with its own bounded queue and writer goroutine, for subscribers with I/O
// behind them (WHEP, relay egress). It rewrites sequence numbers and timestamps so the output stays
// continuous across its own drops and across a change of source (publisher reconnect, relay failover:
// seen as a new SSRC), and it waits for a keyframe after a drop or a source change (video), asking the
// track for one. Slow: it drops its own packets (video: until the next keyframe; audio: plain drop).
type DownTrack struct{}

// NewDownTrack makes a DownTrack writing t's packets to sink. Call Close when done.
func NewDownTrack(t *Track, sink PacketSink, opts DownTrackOptions) *DownTrack { return &DownTrack{} }

// WriteRTP enqueues p (copying what it keeps). Never blocks.
func (d *DownTrack) WriteRTP(p *rtp.Packet) error { return nil }

// Stats returns the DownTrack's counters.
func (d *DownTrack) Stats() WriterStats { return WriterStats{} }

// Close stops the writer goroutine and waits for it. Idempotent.
func (d *DownTrack) Close() error { return nil }

// NewClientID returns a short unique client ID.
func NewClientID() string { return "" }

// ValidKey reports whether key is "{app}/{stream}" with parts of [A-Za-z0-9_.-]+ and no "..".
func ValidKey(key string) bool { return false }
