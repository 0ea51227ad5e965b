package frames

import (
	"context"
	"log/slog"
	"sync"

	"github.com/estuary-media/estuary/sfu"
)

// Deps are a Registry's collaborators.
type Deps struct {
	Hub    *sfu.Hub
	Logger *slog.Logger
}

// Registry shares one Source per stream key among every frame-based output: Acquire makes the source
// with the first user and the last release closes it.
type Registry struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	mu      sync.Mutex
	sources map[string]*regEntry
	closed  bool
}

type regEntry struct {
	src  *Source
	refs int
	// ready is closed once src (or err) is set: concurrent first users wait for one subscribe.
	ready chan struct{}
	err   error
}

// NewRegistry makes a registry of sources on deps.Hub.
func NewRegistry(cfg Config, deps Deps) *Registry {
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{cfg: cfg, deps: deps, log: log, sources: make(map[string]*regEntry)}
}

// Acquire returns the source of key, subscribing it if needed. release must be called once when the
// caller stops listening.
func (r *Registry) Acquire(ctx context.Context, key string) (src *Source, release func(), err error) {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, nil, ErrClosed
		}
		e := r.sources[key]
		if e != nil {
			e.refs++
			r.mu.Unlock()
			select {
			case <-e.ready:
			case <-ctx.Done():
				r.release(key, e)
				return nil, nil, ctx.Err()
			}
			if e.err != nil {
				r.release(key, e)
				return nil, nil, e.err
			}
			select {
			case <-e.src.Done(): // ended meanwhile: drop it and make a new one
				r.release(key, e)
				continue
			default:
			}
			return e.src, r.releaser(key, e), nil
		}
		e = &regEntry{refs: 1, ready: make(chan struct{})}
		r.sources[key] = e
		r.mu.Unlock()

		e.src, e.err = NewSource(ctx, r.deps.Hub, key, r.cfg, r.log)
		if e.err == nil {
			s := e.src
			s.mu.Lock()
			s.onClose = func() { r.forget(key, e) }
			closed := s.closed
			s.mu.Unlock()
			if closed {
				r.forget(key, e)
			}
		}
		close(e.ready)
		if e.err != nil {
			r.release(key, e)
			return nil, nil, e.err
		}
		return e.src, r.releaser(key, e), nil
	}
}

func (r *Registry) releaser(key string, e *regEntry) func() {
	var once sync.Once
	return func() { once.Do(func() { r.release(key, e) }) }
}

func (r *Registry) release(key string, e *regEntry) {
	r.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last && r.sources[key] == e {
		delete(r.sources, key)
	}
	r.mu.Unlock()
	if last && e.src != nil {
		_ = e.src.Close()
		e.src.Wait()
	}
}

// forget drops a closed source from the map (its users still release it).
func (r *Registry) forget(key string, e *regEntry) {
	r.mu.Lock()
	if r.sources[key] == e {
		delete(r.sources, key)
	}
	r.mu.Unlock()
}

// Close closes every source. Idempotent.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	var srcs []*Source
	for k, e := range r.sources {
		if e.src != nil {
			srcs = append(srcs, e.src)
		}
		delete(r.sources, k)
	}
	r.mu.Unlock()
	for _, s := range srcs {
		_ = s.Close()
		s.Wait()
	}
}
