package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/estuary-media/estuary/cmd/estuary-bench/internal/stats"
)

// bench is one run: its kinds, the server it watches and where it prints progress.
type bench struct {
	cfg   config
	kinds []*kind
	out   io.Writer
	tty   bool
	http  *http.Client
}

func newBench(cfg config, out io.Writer, tty bool) (*bench, error) {
	b := &bench{cfg: cfg, out: out, tty: tty}
	tr := &http.Transport{
		MaxIdleConns: 0, MaxIdleConnsPerHost: 1024, DisableCompression: true,
		ResponseHeaderTimeout: cfg.joinTimeout, ForceAttemptHTTP2: false,
	}
	b.http = &http.Client{Transport: tr}
	type spec struct {
		name, given, def string
		n                int
		mk               func(url string) (playFunc, error)
	}
	specs := []spec{
		{"whep", cfg.whep, "/whep/{stream}", cfg.nWHEP, func(u string) (playFunc, error) { return newWHEP(u, b.http, cfg.rtcp, cfg.rcvbuf) }},
		{"flv", cfg.flv, "/{stream}.flv", cfg.nFLV, func(u string) (playFunc, error) { return newFLV(u, b.http), nil }},
		{"rtmp", cfg.rtmp, "/{stream}", cfg.nRTMP, func(u string) (playFunc, error) { return newRTMP(u) }},
		{"hls", cfg.hls, "/{stream}.m3u8", cfg.nHLS, func(u string) (playFunc, error) { return newHLS(u, b.http), nil }},
	}
	for _, s := range specs {
		u, err := targetURL(s.given, cfg.stream, s.def)
		if err != nil {
			return nil, err
		}
		if u == "" || (s.n == 0 && !cfg.probe) {
			continue
		}
		play, err := s.mk(u)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		n := s.n
		if cfg.probe {
			n = 1
		}
		b.kinds = append(b.kinds, newKind(s.name, u, n, cfg.joinTimeout, play))
	}
	return b, nil
}

// totals snapshots every kind's counters.
func (b *bench) totals() []stats.Snapshot {
	s := make([]stats.Snapshot, len(b.kinds))
	for i, k := range b.kinds {
		s[i] = k.c.Snapshot()
	}
	return s
}

func (b *bench) settled() bool {
	for _, k := range b.kinds {
		if !k.settled() {
			return false
		}
	}
	return true
}

// startAll starts every reader, kinds interleaved, at cfg.ramp per second; it returns when the
// last one has started (or ctx ended).
func (b *bench) startAll(ctx context.Context, wg *sync.WaitGroup) {
	var interval time.Duration
	if b.cfg.ramp > 0 && !b.cfg.probe {
		interval = time.Duration(float64(time.Second) / b.cfg.ramp)
	}
	next := time.Now()
	for i := 0; ; i++ {
		any := false
		for _, k := range b.kinds {
			if i >= k.n {
				continue
			}
			any = true
			if interval > 0 {
				if d := time.Until(next); d > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(d):
					}
				}
				next = next.Add(interval)
			}
			wg.Go(func() { k.run(ctx, i) })
		}
		if !any || ctx.Err() != nil {
			return
		}
	}
}

// procSample reads the server's /proc figures when -pid is set.
func (b *bench) procSample() (stats.ProcSample, error) {
	if b.cfg.pid == 0 {
		return stats.ProcSample{}, nil
	}
	return stats.ReadProc(b.cfg.pid)
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Run runs the benchmark and returns its report.
func (b *bench) Run(ctx context.Context) (*Report, error) {
	rep := &Report{Version: 1, Start: time.Now().UTC(), Stream: b.cfg.stream, RampPerSecond: b.cfg.ramp,
		Kinds: map[string]*KindReport{}}
	base, baseErr := b.procSample()
	if baseErr != nil {
		return nil, fmt.Errorf("-pid %d: %w", b.cfg.pid, baseErr)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var startWG sync.WaitGroup
	rampDone := make(chan struct{})
	startWG.Go(func() {
		defer close(rampDone)
		b.startAll(rctx, &wg)
	})
	p := newProgress(b)
	t0 := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()

	// Phase 1: joins. Every reader joins or fails within its join timeout after it started.
	var rampEnd time.Time
joining:
	for {
		select {
		case <-ctx.Done():
			break joining
		case <-rampDone:
			if rampEnd.IsZero() {
				rampEnd = time.Now()
			}
			rampDone = nil
		case <-tick.C:
			p.line("join", time.Since(t0), b.settledFraction())
		case <-poll.C:
			if b.settled() || (!rampEnd.IsZero() && time.Since(rampEnd) > b.cfg.joinTimeout+2*time.Second) {
				break joining
			}
		}
	}
	rep.JoinSeconds = round(time.Since(t0).Seconds(), 3)
	if b.cfg.probe {
		cancel()
		startWG.Wait()
		wg.Wait()
		p.done()
		return b.finish(rep, nil, b.totals(), time.Nanosecond, nil, base, stats.ProcSample{}, 0), nil
	}

	// Phase 2: warm-up, then the measurement window.
	warm := time.NewTimer(b.cfg.warmup)
warming:
	for {
		select {
		case <-ctx.Done():
			break warming
		case <-warm.C:
			break warming
		case <-tick.C:
			p.line("warm-up", time.Since(t0), 0)
		}
	}
	w0 := b.totals()
	u0, uerr0 := stats.ReadUDPCounters()
	s0, err0 := b.procSample()
	c0 := selfCPU()
	wStart := time.Now()
	end := time.NewTimer(b.cfg.duration)
measuring:
	for {
		select {
		case <-ctx.Done():
			break measuring
		case <-end.C:
			break measuring
		case <-tick.C:
			p.line("measure", time.Since(t0), float64(time.Since(wStart))/float64(b.cfg.duration))
		}
	}
	window := time.Since(wStart)
	w1 := b.totals()
	u1, uerr1 := stats.ReadUDPCounters()
	s1, err1 := b.procSample()
	c1 := selfCPU()
	if uerr0 == nil && uerr1 == nil {
		d := u1.Sub(u0)
		rep.HostUDP = &d
	}
	cancel()
	startWG.Wait()
	wg.Wait()
	p.done()
	var procErr error
	if err0 != nil {
		procErr = err0
	} else if err1 != nil {
		procErr = err1
	}
	rep.Client = ClientReport{CPUSeconds: round((c1 - c0).Seconds(), 3), Cores: round((c1-c0).Seconds()/window.Seconds(), 3)}
	var win []stats.Snapshot
	for i := range w1 {
		win = append(win, w1[i].Sub(w0[i]))
	}
	return b.finish(rep, win, w1, window, procErr, base, s1, s1.CPU-s0.CPU), nil
}

func (b *bench) settledFraction() float64 {
	var done, all int64
	for _, k := range b.kinds {
		all += int64(k.n)
		done += k.c.Joined.Load() + k.c.Failed.Load()
	}
	return stats.Ratio(float64(done), float64(all))
}

// finish fills the report: per kind, totals and the server's figures.
func (b *bench) finish(rep *Report, win, end []stats.Snapshot, window time.Duration, procErr error,
	base, last stats.ProcSample, serverCPU time.Duration) *Report {
	rep.WindowSeconds = round(window.Seconds(), 3)
	if win == nil {
		win = make([]stats.Snapshot, len(b.kinds))
	}
	var totalBytes, units, whepPackets, active int64
	onlyWHEP := true
	for i, k := range b.kinds {
		kr := kindReport(k, win[i], end[i], end[i].Bytes, window)
		rep.Kinds[k.name] = kr
		totalBytes += win[i].Bytes
		units += win[i].Units
		active += end[i].Active
		if k.name == "whep" {
			whepPackets = win[i].Units
		} else {
			onlyWHEP = false
		}
	}
	rep.TotalMbps = round(stats.Mbps(totalBytes, window), 3)
	if b.cfg.pid == 0 || b.cfg.probe {
		return rep
	}
	sr := &ServerReport{PID: b.cfg.pid}
	rep.Server = sr
	if procErr != nil {
		sr.Error = procErr.Error()
		return rep
	}
	us := float64(serverCPU) / float64(time.Microsecond)
	sr.CPUSeconds = round(serverCPU.Seconds(), 3)
	sr.Cores = round(serverCPU.Seconds()/window.Seconds(), 3)
	sr.MbpsPerCore = round(stats.Ratio(rep.TotalMbps, serverCPU.Seconds()/window.Seconds()), 1)
	if onlyWHEP {
		sr.CPUusPerPacket = round(stats.Ratio(us, float64(whepPackets)), 3)
	}
	sr.CPUusPerUnit = round(stats.Ratio(us, float64(units)), 3)
	sr.RSSStart, sr.RSSEnd = base.RSS, last.RSS
	sr.RSSDelta = last.RSS - base.RSS
	sr.RSSPerReader = round(stats.Ratio(float64(sr.RSSDelta), float64(active)), 0)
	return rep
}
