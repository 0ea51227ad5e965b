// Package stats holds estuary-bench's counters and the arithmetic of its report: RTP sequence
// tracking (loss, gaps, late packets), time-to-first-media percentiles and rates.
package stats

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// Counters are one reader kind's running totals, updated by every reader of that kind (atomics:
// readers add, the progress loop reads).
type Counters struct {
	Bytes     atomic.Int64 // media bytes received (see the report's doc for what counts per kind)
	Units     atomic.Int64 // RTP packets, FLV tags, RTMP media messages or HLS segments
	Keyframes atomic.Int64 // video keyframes seen (FLV, RTMP); 0 for WHEP (no parsing past RTP)
	Lost      atomic.Int64 // sequence numbers never received (WHEP, HLS media sequence)
	Gaps      atomic.Int64 // runs of missing sequence numbers
	Late      atomic.Int64 // packets older than the highest seen (reordered or duplicated)
	Joined    atomic.Int64 // readers that got their first media
	Failed    atomic.Int64 // readers that never joined (join failures)
	Dropped   atomic.Int64 // readers that joined and then lost their connection before the end
	Active    atomic.Int64 // readers currently connected and receiving
}

// Snapshot is a copy of Counters at one instant.
type Snapshot struct {
	Bytes, Units, Keyframes, Lost, Gaps, Late, Joined, Failed, Dropped, Active int64
}

// Snapshot copies the counters.
func (c *Counters) Snapshot() Snapshot {
	return Snapshot{
		Bytes: c.Bytes.Load(), Units: c.Units.Load(), Keyframes: c.Keyframes.Load(),
		Lost: c.Lost.Load(), Gaps: c.Gaps.Load(), Late: c.Late.Load(),
		Joined: c.Joined.Load(), Failed: c.Failed.Load(), Dropped: c.Dropped.Load(),
		Active: c.Active.Load(),
	}
}

// Sub is s - o field by field (Active and Joined stay s's: they are levels, not totals).
func (s Snapshot) Sub(o Snapshot) Snapshot {
	return Snapshot{
		Bytes: s.Bytes - o.Bytes, Units: s.Units - o.Units, Keyframes: s.Keyframes - o.Keyframes,
		Lost: s.Lost - o.Lost, Gaps: s.Gaps - o.Gaps, Late: s.Late - o.Late,
		Joined: s.Joined, Failed: s.Failed - o.Failed, Dropped: s.Dropped - o.Dropped, Active: s.Active,
	}
}

// Mbps is bytes over d in megabits per second (0 for d <= 0).
func Mbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) * 8 / 1e6 / d.Seconds()
}

// PerSecond is n over d per second (0 for d <= 0).
func PerSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// LossRatio is lost / (received + lost), 0 when nothing was expected.
func LossRatio(received, lost int64) float64 {
	if received+lost <= 0 {
		return 0
	}
	return float64(lost) / float64(received+lost)
}

// Ratio is a / b, 0 when b is 0 (report fields stay finite: JSON has no NaN or Inf).
func Ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return 0
	}
	return a / b
}

// SeqTracker follows one RTP stream's 16-bit sequence numbers: packets that arrive after a jump
// count the skipped numbers as lost (one gap per jump); a packet at or behind the highest number
// seen counts as late and is not lost twice. Not safe for concurrent use (one per track reader).
type SeqTracker struct {
	started bool
	highest uint16
}

// maxJump bounds what counts as loss: a forward jump of more than this is taken as a stream
// restart (new publisher, SSRC change) rather than thousands of lost packets.
const maxJump = 3000

// Push records sequence number seq and returns how many numbers it skipped (lost), whether
// that was a gap and whether the packet was late (older than or equal to the highest seen).
func (s *SeqTracker) Push(seq uint16) (lost int, gap, late bool) {
	if !s.started {
		s.started = true
		s.highest = seq
		return 0, false, false
	}
	diff := seq - s.highest // modulo 2^16
	switch {
	case diff == 0:
		return 0, false, true // duplicate
	case diff < 0x8000: // ahead
		s.highest = seq
		if diff == 1 {
			return 0, false, false
		}
		if diff > maxJump {
			return 0, false, false
		}
		return int(diff - 1), true, false
	default: // behind
		return 0, false, true
	}
}

// Distribution summarizes durations in milliseconds.
type Distribution struct {
	Count int     `json:"count"`
	Min   float64 `json:"min_ms"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Summarize computes the distribution of ds (nearest-rank percentiles); it sorts a copy.
func Summarize(ds []time.Duration) Distribution {
	if len(ds) == 0 {
		return Distribution{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	return Distribution{
		Count: len(s),
		Min:   ms(s[0]),
		Mean:  ms(sum / time.Duration(len(s))),
		P50:   ms(Percentile(s, 50)),
		P90:   ms(Percentile(s, 90)),
		P99:   ms(Percentile(s, 99)),
		Max:   ms(s[len(s)-1]),
	}
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of sorted, which must be sorted
// ascending; 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// FrameGapTracker finds missing video frames in a frame-based stream (FLV, RTMP) from timestamp
// jumps: the frame interval is the smallest timestamp step seen of at least minFrameStep (steps
// below it, such as a server's GOP replay compressed to catch up at once, teach nothing), and a
// step of more than 2.5 intervals counts round(step/interval)-1 missing frames (one gap). A
// server that drops a slow reader's frames up to the next keyframe shows up here. Timestamps in
// milliseconds; steps backwards or over 10 s are ignored (restart, wraparound).
// minFrameStep is the smallest timestamp step (ms) taken as a frame interval: 100 fps.
const minFrameStep = 10

type FrameGapTracker struct {
	started  bool
	last     uint32
	interval uint32
}

// Push records a video frame's timestamp.
func (f *FrameGapTracker) Push(ts uint32) (lost int, gap bool) {
	if !f.started {
		f.started, f.last = true, ts
		return 0, false
	}
	step := ts - f.last
	if int32(step) < 0 || step > 10000 { // restart or wraparound: start over from here
		f.last = ts
		return 0, false
	}
	if step == 0 {
		return 0, false
	}
	f.last = ts
	if step >= minFrameStep && (f.interval == 0 || step < f.interval) {
		f.interval = step
	}
	if f.interval == 0 || step*2 <= f.interval*5 {
		return 0, false
	}
	n := int((step + f.interval/2) / f.interval)
	return n - 1, true
}
