package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/estuary-media/estuary/cmd/estuary-bench/internal/stats"
)

// playFunc plays one reader until ctx ends or the connection does. It calls v.media(n) for what
// it receives (the first call marks the join) and returns why it stopped.
type playFunc func(ctx context.Context, v *viewer) error

// kind is one reader kind (whep, flv, rtmp, hls) and everything its readers share.
type kind struct {
	name string
	url  string
	n    int
	play playFunc
	// joinTimeout bounds the wait for the first media.
	joinTimeout time.Duration

	c stats.Counters

	mu       sync.Mutex
	ttfm     []time.Duration // guarded by mu
	failures map[string]int  // guarded by mu: join failure reasons
	drops    map[string]int  // guarded by mu: disconnect reasons (after joining)
	started  atomic.Int64
	finished atomic.Int64
}

func newKind(name, url string, n int, joinTimeout time.Duration, play playFunc) *kind {
	return &kind{name: name, url: url, n: n, play: play, joinTimeout: joinTimeout,
		failures: map[string]int{}, drops: map[string]int{}}
}

// viewer is one reader's state shared with its play function.
type viewer struct {
	k     *kind
	id    int
	start time.Time
	// state is joinPending, then joinDone at the first media or joinAbandoned when the join
	// timeout won: exactly one of the two transitions happens.
	state    atomic.Int32
	gotMedia chan struct{} // closed at the first media
}

const (
	joinPending int32 = iota
	joinDone
	joinAbandoned
)

// joined reports whether the first media came (in time).
func (v *viewer) joined() bool { return v.state.Load() == joinDone }

// abandon gives up the join (the join timeout fired): true unless media came first.
func (v *viewer) abandon() bool {
	return v.state.CompareAndSwap(joinPending, joinAbandoned) || v.state.Load() == joinAbandoned
}

// media records n bytes of one unit (packet, tag, message or segment); the first call joins.
func (v *viewer) media(n int) {
	v.k.c.Bytes.Add(int64(n))
	v.k.c.Units.Add(1)
	if v.state.Load() == joinPending && v.state.CompareAndSwap(joinPending, joinDone) {
		d := time.Since(v.start)
		v.k.mu.Lock()
		v.k.ttfm = append(v.k.ttfm, d)
		v.k.mu.Unlock()
		v.k.c.Joined.Add(1)
		v.k.c.Active.Add(1)
		close(v.gotMedia)
	}
}

// waitMedia returns nil once media arrived, ErrNoMedia after the join timeout, ctx's error, or
// nil when stop is closed.
func (v *viewer) waitMedia(ctx context.Context, stop <-chan struct{}) error {
	t := time.NewTimer(max(v.k.joinTimeout-time.Since(v.start), 0))
	defer t.Stop()
	select {
	case <-v.gotMedia:
		return nil
	case <-t.C:
		if !v.abandon() { // media came just as the timer fired
			return nil
		}
		return ErrNoMedia
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return nil
	}
}

// run plays one reader and books the outcome.
func (k *kind) run(ctx context.Context, id int) {
	k.started.Add(1)
	defer k.finished.Add(1)
	v := &viewer{k: k, id: id, start: time.Now(), gotMedia: make(chan struct{})}
	err := k.play(ctx, v)
	ended := ctx.Err() != nil
	switch {
	case !v.joined():
		if ended && err != nil && errors.Is(err, context.Canceled) {
			err = errors.New("run ended before the first media")
		}
		if err == nil {
			err = ErrDisconnected
		}
		k.c.Failed.Add(1)
		k.mu.Lock()
		k.failures[reason(err)]++
		k.mu.Unlock()
	default:
		k.c.Active.Add(-1)
		if !ended {
			if err == nil {
				err = ErrDisconnected
			}
			k.c.Dropped.Add(1)
			k.mu.Lock()
			k.drops[reason(err)]++
			k.mu.Unlock()
		}
	}
}

// reason is an error as a report key: one line, bounded.
func reason(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n", " ")
	if len(s) > 240 {
		s = s[:240] + "..."
	}
	return s
}

// ttfmSnapshot copies the time-to-first-media samples.
func (k *kind) ttfmSnapshot() []time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]time.Duration(nil), k.ttfm...)
}

func (k *kind) reasons() (failures, drops map[string]int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	failures, drops = map[string]int{}, map[string]int{}
	for r, n := range k.failures {
		failures[r] = n
	}
	for r, n := range k.drops {
		drops[r] = n
	}
	return failures, drops
}

// settled reports whether every reader of the kind has started and joined or finished.
func (k *kind) settled() bool {
	return int(k.started.Load()) == k.n && k.c.Joined.Load()+k.c.Failed.Load() >= int64(k.n)
}

// watch closes c when no media came within the join timeout or when ctx ends, so a play loop
// blocked in a read returns. The returned stop ends the watch and waits for it; timedOut tells
// whether the join timeout closed c.
func (v *viewer) watch(ctx context.Context, c io.Closer) (stop func(), timedOut func() bool) {
	done := make(chan struct{})
	exited := make(chan struct{})
	var fired atomic.Bool
	go func() {
		defer close(exited)
		if err := v.waitMedia(ctx, done); errors.Is(err, ErrNoMedia) {
			fired.Store(true)
			_ = c.Close()
			return
		}
		select {
		case <-ctx.Done():
			_ = c.Close()
		case <-done:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-exited
	}, fired.Load
}

// frameGap books missing video frames found from a frame timestamp (FLV, RTMP).
func (v *viewer) frameGap(f *stats.FrameGapTracker, ts uint32) {
	if lost, gap := f.Push(ts); gap {
		v.k.c.Lost.Add(int64(lost))
		v.k.c.Gaps.Add(1)
	}
}
