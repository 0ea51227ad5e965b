package sfu

import (
	"context"
	"log/slog"
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
