package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/estuary-media/estuary/cmd/estuary-bench/internal/stats"
)

// progress prints a line per second: per kind joined/readers, Mbit/s and loss over the last
// second, and the server's cores and RSS; on a terminal it redraws one line with a bar.
type progress struct {
	b      *bench
	last   []stats.Snapshot
	lastAt time.Time
	lastPS stats.ProcSample
	drawn  bool
}

func newProgress(b *bench) *progress {
	p := &progress{b: b, last: b.totals(), lastAt: time.Now()}
	p.lastPS, _ = b.procSample()
	return p
}

func (p *progress) line(phase string, elapsed time.Duration, frac float64) {
	now := time.Now()
	cur := p.b.totals()
	dt := now.Sub(p.lastAt)
	var sb strings.Builder
	if p.b.tty {
		const width = 20
		f := min(max(frac, 0), 1)
		filled := int(f * width)
		sb.WriteString("\r\x1b[K[" + strings.Repeat("#", filled) + strings.Repeat("-", width-filled) + "] ")
	}
	fmt.Fprintf(&sb, "%5.1fs %-7s", elapsed.Seconds(), phase)
	for i, k := range p.b.kinds {
		d := cur[i].Sub(p.last[i])
		fmt.Fprintf(&sb, " | %s %d/%d", k.name, cur[i].Joined, k.n)
		if cur[i].Failed > 0 {
			fmt.Fprintf(&sb, " fail %d", cur[i].Failed)
		}
		fmt.Fprintf(&sb, " %.1f Mbit/s", stats.Mbps(d.Bytes, dt))
		if d.Lost > 0 {
			fmt.Fprintf(&sb, " loss %.2f%%", 100*stats.LossRatio(d.Units, d.Lost))
		}
	}
	if p.b.cfg.pid != 0 {
		if ps, err := p.b.procSample(); err == nil {
			fmt.Fprintf(&sb, " | server %.2f cores %d MB", stats.Ratio((ps.CPU-p.lastPS.CPU).Seconds(), ps.At.Sub(p.lastPS.At).Seconds()), ps.RSS>>20)
			p.lastPS = ps
		}
	}
	if !p.b.tty {
		sb.WriteByte('\n')
	}
	p.last, p.lastAt = cur, now
	if !p.b.cfg.quiet {
		fmt.Fprint(p.b.out, sb.String())
		p.drawn = true
	}
}

// done ends the redrawn terminal line.
func (p *progress) done() {
	if p.b.tty && p.drawn && !p.b.cfg.quiet {
		fmt.Fprintln(p.b.out)
	}
}
