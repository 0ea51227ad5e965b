package rtc

import (
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Sender reports (RFC 3550 6.4.1) whose NTP/RTP mapping follows the media clock rather than the moment
// of the last packet. pion's report.SenderInterceptor maps the last packet's timestamp to the time it
// was sent, so a track whose packets leave in bursts or behind a buffer (the AAC->Opus transcoder
// emits 20 ms frames as 23 ms AAC frames arrive) gets a mapping that jumps by tens of milliseconds
// from report to report and lags by the buffering: receivers that align audio to video through the
// reports (browsers do) then play it that much off. Here each stream keeps the lower envelope of
// (send time - media time): the mapping of its least-delayed packet, which a late (buffered, bursty,
// retransmitted, replayed GOP) packet cannot move. The envelope may rise by srDriftAllowance per second
// so that it follows a source clock slower than ours, a jump of more than srResetGap (a pause, a new
// publisher) starts it again, and an older timestamp (a retransmission) is not a mapping.
const (
	srInterval       = time.Second
	srDriftAllowance = 0.001 // 1 ms per second
	srResetGap       = time.Second
)

// senderReportFactory makes a senderReports interceptor per PeerConnection. With a scheduler, one
// goroutine of the engine sends every PeerConnection's reports; without, each runs its own loop.
type senderReportFactory struct {
	sched *srScheduler
	made  func(*senderReports) // called with each interceptor made (nil: nothing)
}

func (f senderReportFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	r := &senderReports{streams: map[uint32]*srStream{}, closed: make(chan struct{}), sched: f.sched}
	if f.made != nil {
		f.made(r)
	}
	return r, nil
}

type senderReports struct {
	interceptor.NoOp
	sched     *srScheduler
	mu        sync.Mutex
	streams   map[uint32]*srStream
	pkts      []rtcp.Packet // reused by send (one sender at a time: the loop or the scheduler)
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

type srStream struct {
	ssrc  uint32
	clock float64

	mu      sync.Mutex
	started bool
	ts0     uint32    // RTP timestamp of media time 0 (the first packet)
	lastTS  uint32    // last packet's timestamp, to extend the next one
	ext     int64     // last packet's timestamp - ts0, unwrapped
	lastAt  time.Time // when the envelope was last updated
	base    time.Time // wall time of media time 0 (lower envelope)
	packets uint32
	octets  uint32
}

// process notes a packet sent at now.
func (s *srStream) process(now time.Time, h *rtp.Header, n int) {
	s.mu.Lock()
	s.packets++
	s.octets += uint32(n)
	if !s.started {
		s.started, s.ts0, s.lastTS, s.ext, s.base, s.lastAt = true, h.Timestamp, h.Timestamp, 0, now, now
		s.mu.Unlock()
		return
	}
	step := int32(h.Timestamp - s.lastTS)
	if step < 0 { // an older packet again (a retransmission): not a mapping
		s.mu.Unlock()
		return
	}
	s.ext += int64(step)
	s.lastTS = h.Timestamp
	cand := now.Add(-time.Duration(float64(s.ext) / s.clock * float64(time.Second)))
	rise := time.Duration(float64(now.Sub(s.lastAt)) * srDriftAllowance)
	s.lastAt = now
	switch d := cand.Sub(s.base); {
	case d > srResetGap || d < -srResetGap:
		s.base = cand
	case d < rise:
		s.base = cand
	default:
		s.base = s.base.Add(rise)
	}
	s.mu.Unlock()
}

// report is the sender report at now, or nil before the first packet.
func (s *srStream) report(now time.Time) *rtcp.SenderReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return nil
	}
	ticks := int64(now.Sub(s.base).Seconds() * s.clock)
	return &rtcp.SenderReport{
		SSRC: s.ssrc, NTPTime: ntpTime(now), RTPTime: s.ts0 + uint32(ticks),
		PacketCount: s.packets, OctetCount: s.octets,
	}
}

// ntpTime is t in the 64-bit NTP format (seconds since 1900 and a binary fraction).
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	ns := t.UnixNano()
	secs := uint64(ns/1e9) + unixToNTP
	frac := uint64(ns%1e9) << 32 / 1e9
	return secs<<32 | frac
}

// BindLocalStream records each packet of an outgoing stream.
func (r *senderReports) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	if info.ClockRate == 0 {
		return writer
	}
	s := &srStream{ssrc: info.SSRC, clock: float64(info.ClockRate)}
	r.mu.Lock()
	r.streams[info.SSRC] = s
	r.mu.Unlock()
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		s.process(time.Now(), h, len(payload))
		return writer.Write(h, payload, a)
	})
}

// UnbindLocalStream forgets the stream.
func (r *senderReports) UnbindLocalStream(info *interceptor.StreamInfo) {
	r.mu.Lock()
	delete(r.streams, info.SSRC)
	r.mu.Unlock()
}

// BindRTCPWriter starts reporting (once per PeerConnection).
func (r *senderReports) BindRTCPWriter(writer interceptor.RTCPWriter) interceptor.RTCPWriter {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.closed:
		return writer
	default:
	}
	if r.sched != nil {
		r.sched.add(r, writer)
		return writer
	}
	r.wg.Add(1)
	go r.loop(writer)
	return writer
}

func (r *senderReports) loop(writer interceptor.RTCPWriter) {
	defer r.wg.Done()
	tick := time.NewTicker(srInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.closed:
			return
		case <-tick.C:
		}
		if !r.send(time.Now(), writer) {
			return
		}
	}
}

// send writes a report of each stream that has sent; false once the interceptor is closed.
func (r *senderReports) send(now time.Time, writer interceptor.RTCPWriter) bool {
	r.mu.Lock()
	pkts := r.pkts[:0]
	for _, s := range r.streams {
		if sr := s.report(now); sr != nil {
			pkts = append(pkts, sr)
		}
	}
	r.pkts = pkts
	r.mu.Unlock()
	for _, p := range pkts {
		if _, err := writer.Write([]rtcp.Packet{p}, interceptor.Attributes{}); err != nil {
			select {
			case <-r.closed:
				return false
			default:
			}
		}
	}
	return true
}

// Close stops reporting and waits for the loop.
func (r *senderReports) Close() error {
	r.mu.Lock()
	r.closeOnce.Do(func() { close(r.closed) })
	r.mu.Unlock()
	if r.sched != nil {
		r.sched.remove(r)
	}
	r.wg.Wait()
	return nil
}

// srScheduler sends the sender reports of every PeerConnection of an engine from one goroutine, once
// per srInterval: no goroutine and no timer per viewer.
type srScheduler struct {
	mu   sync.Mutex
	set  map[*senderReports]interceptor.RTCPWriter
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func newSRScheduler() *srScheduler {
	s := &srScheduler{set: map[*senderReports]interceptor.RTCPWriter{}, stop: make(chan struct{})}
	s.wg.Add(1)
	go s.run()
	return s
}

func (s *srScheduler) add(r *senderReports, w interceptor.RTCPWriter) {
	s.mu.Lock()
	s.set[r] = w
	s.mu.Unlock()
}

func (s *srScheduler) remove(r *senderReports) {
	s.mu.Lock()
	delete(s.set, r)
	s.mu.Unlock()
}

type srTarget struct {
	r *senderReports
	w interceptor.RTCPWriter
}

func (s *srScheduler) run() {
	defer s.wg.Done()
	tick := time.NewTicker(srInterval)
	defer tick.Stop()
	var targets []srTarget
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		targets = targets[:0]
		s.mu.Lock()
		for r, w := range s.set {
			targets = append(targets, srTarget{r, w})
		}
		s.mu.Unlock()
		now := time.Now()
		for _, t := range targets { // outside the lock: the writes are I/O
			t.r.send(now, t.w)
		}
		clear(targets)
	}
}

// close stops the scheduler and waits for it. Idempotent.
func (s *srScheduler) close() {
	s.once.Do(func() { close(s.stop) })
	s.wg.Wait()
}
