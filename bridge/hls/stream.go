package hls

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"

	"github.com/estuary-media/estuary/bridge/frames"
)

// stream is one stream's HLS output: the frames listener, the feed loop and the current muxer (a new
// one when the codecs change).
type stream struct {
	srv *Server
	key string
	log *slog.Logger

	// started is closed once start returned (startErr set).
	started  chan struct{}
	startErr error

	src     *frames.Source
	release func()
	lis     *frames.Listener

	stop     chan struct{}
	stopOnce sync.Once
	stopped  chan struct{}

	lastReq atomic.Int64  // unix ns of the last request
	active  atomic.Int32  // requests being served (a waiting request keeps the muxer)
	frames  atomic.Uint64 // frames received (media flows)

	mu      sync.Mutex
	cur     *muxer        // guarded by mu
	changed chan struct{} // closed (and replaced) when cur changes or the stream stops; guarded by mu
	ended   bool          // guarded by mu
}

func newStream(s *Server, key string) *stream {
	st := &stream{
		srv:     s,
		key:     key,
		log:     s.log.With("stream", key),
		started: make(chan struct{}),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		changed: make(chan struct{}),
	}
	st.touch()
	return st
}

// start acquires the frames source and starts the feed loop. The caller did s.wg.Add(1); on success
// the loop calls Done, on failure the caller does.
func (st *stream) start(ctx context.Context) (err error) {
	defer func() {
		st.startErr = err
		close(st.started)
	}()
	src, release, err := st.srv.deps.Frames.Acquire(ctx, st.key)
	if err != nil {
		return err
	}
	if vc, ac := src.Codecs(); vc == 0 && ac == 0 {
		release()
		return fmt.Errorf("%s: %w", st.key, ErrNoMedia)
	}
	lis, err := src.Listen(4096)
	if err != nil {
		release()
		return err
	}
	st.src, st.release, st.lis = src, release, lis
	st.log.Info("hls muxer started", "variant", string(st.srv.cfg.Variant))
	go st.loop()
	return nil
}

// touch notes a request (the idle timer restarts).
func (st *stream) touch() { st.lastReq.Store(time.Now().UnixNano()) }

// halt asks the loop to stop.
func (st *stream) halt() { st.stopOnce.Do(func() { close(st.stop) }) }

// wait returns the current muxer once it has its first segment, waiting up to d (plus extra for a
// plain fMP4 muxer, which serves playlists from its second segment on): then ErrNotReady while media
// flows, or ErrNoMedia-wrapped when none arrived.
func (st *stream) wait(ctx context.Context, d, extra time.Duration) (*muxer, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	extended := false
	for {
		st.mu.Lock()
		cur, changed, ended := st.cur, st.changed, st.ended
		st.mu.Unlock()
		if ended {
			return nil, fmt.Errorf("%s: %w", st.key, ErrClosed)
		}
		var ready <-chan struct{}
		if cur != nil {
			ready = cur.ready
		}
		select {
		case <-ready:
			return cur, nil
		case <-changed:
			continue
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			if cur != nil && cur.variant == gohlslib.MuxerVariantFMP4 && !extended && extra > 0 {
				extended = true
				d += extra
				timer.Reset(extra)
				continue
			}
			if st.frames.Load() > 0 {
				return nil, fmt.Errorf("%w after %v: waiting for a keyframe (GOP longer than the wait?)", ErrNotReady, d)
			}
			return nil, fmt.Errorf("%w: no media arrived in %v", ErrNoMedia, d)
		}
	}
}

// setMuxer makes m current (nil: none) and wakes waiters.
func (st *stream) setMuxer(m *muxer, ended bool) {
	st.mu.Lock()
	st.cur = m
	if ended {
		st.ended = true
	}
	close(st.changed)
	st.changed = make(chan struct{})
	st.mu.Unlock()
}

// loop feeds frames to the muxer until the stream ends, the server closes or no request came for the
// idle timeout.
func (st *stream) loop() {
	s := st.srv
	defer s.wg.Done()
	defer close(st.stopped)
	f := newFeeder(st)
	defer func() {
		s.forget(st)
		st.setMuxer(nil, true)
		f.close()
		st.lis.Close()
		st.release()
		st.log.Info("hls muxer stopped")
	}()
	idle := s.cfg.IdleTimeout
	check := min(time.Second, idle/4)
	tick := time.NewTicker(check)
	defer tick.Stop()
	for {
		select {
		case <-st.stop:
			return
		case <-st.lis.Done():
			return
		case <-tick.C:
			if st.active.Load() == 0 && time.Since(time.Unix(0, st.lastReq.Load())) > idle {
				st.log.Debug("hls muxer idle", "idle_timeout", idle)
				return
			}
			f.tick()
		case fr, ok := <-st.lis.Frames():
			if !ok {
				return
			}
			st.frames.Add(1)
			f.frame(fr)
		}
	}
}
