package api

import (
	"time"

	"github.com/estuary-media/estuary/sfu"
)

// rateSample is one reading of a stream's byte counters.
type rateSample struct {
	at         time.Time
	recv, send uint64
}

// streamRates keeps a stream's samples of the last Config.Window (plus the one just before it).
type streamRates struct {
	created time.Time
	samples []rateSample // oldest first
	seen    bool
}

// add appends s and forgets samples no longer needed to span window.
func (r *streamRates) add(s rateSample, window time.Duration) {
	r.samples = append(r.samples, s)
	cut := 0
	for cut+1 < len(r.samples) && s.at.Sub(r.samples[cut+1].at) >= window {
		cut++
	}
	if cut > 0 {
		r.samples = append(r.samples[:0], r.samples[cut:]...)
	}
}

// rates returns kbps between the oldest and newest samples, 0 with fewer than two.
func (r *streamRates) rates() (recvKbps, sendKbps int64) {
	if len(r.samples) < 2 {
		return 0, 0
	}
	oldest, newest := r.samples[0], r.samples[len(r.samples)-1]
	dt := newest.at.Sub(oldest.at).Seconds()
	if dt <= 0 {
		return 0, 0
	}
	k := func(a, b uint64) int64 {
		if b < a {
			return 0
		}
		return int64(float64(b-a) * 8 / dt / 1000)
	}
	return k(oldest.recv, newest.recv), k(oldest.send, newest.send)
}

func (a *API) sampler() {
	defer a.wg.Done()
	tick := time.NewTicker(a.cfg.SampleInterval)
	defer tick.Stop()
	for {
		select {
		case <-a.closeCh:
			return
		case <-tick.C:
			a.sample()
		}
	}
}

// sample reads every stream's counters and the process CPU time once.
func (a *API) sample() {
	now := a.now()
	streams := a.streams()
	type reading struct {
		key     string
		created time.Time
		s       rateSample
	}
	readings := make([]reading, 0, len(streams))
	for _, s := range streams {
		if s == nil {
			continue
		}
		recv, send := counters(s)
		readings = append(readings, reading{s.Key(), s.Created(), rateSample{now, recv, send}})
	}
	cpu := readCPU(now)

	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.rates {
		r.seen = false
	}
	for _, rd := range readings {
		r := a.rates[rd.key]
		if r == nil || !r.created.Equal(rd.created) {
			r = &streamRates{created: rd.created}
			a.rates[rd.key] = r
		}
		r.seen = true
		r.add(rd.s, a.cfg.Window)
	}
	for k, r := range a.rates {
		if !r.seen {
			delete(a.rates, k)
		}
	}
	a.cpu.update(cpu)
}

// kbps returns a stream's recv/send kbps over the window.
func (a *API) kbps(s *sfu.Stream) kbpsJSON {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.rates[s.Key()]
	if r == nil || !r.created.Equal(s.Created()) {
		return kbpsJSON{}
	}
	recv, send := r.rates()
	return kbpsJSON{Recv30s: recv, Send30s: send}
}
