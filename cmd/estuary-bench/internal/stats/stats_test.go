package stats

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSeqTracker(t *testing.T) {
	cases := []struct {
		name             string
		seqs             []uint16
		lost, gaps, late int
	}{
		{name: "in order", seqs: []uint16{1, 2, 3, 4}},
		{name: "one gap of two", seqs: []uint16{1, 2, 5, 6}, lost: 2, gaps: 1},
		{name: "two gaps", seqs: []uint16{10, 12, 15}, lost: 3, gaps: 2},
		{name: "wraparound in order", seqs: []uint16{65534, 65535, 0, 1}},
		{name: "wraparound with loss", seqs: []uint16{65534, 1}, lost: 2, gaps: 1},
		{name: "reordered packet is late, not lost twice", seqs: []uint16{1, 3, 2, 4}, lost: 1, gaps: 1, late: 1},
		{name: "duplicate", seqs: []uint16{7, 7, 8}, late: 1},
		{name: "huge jump is a restart", seqs: []uint16{100, 20000, 20001}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s SeqTracker
			var lost, gaps, late int
			for _, q := range c.seqs {
				l, g, lt := s.Push(q)
				lost += l
				if g {
					gaps++
				}
				if lt {
					late++
				}
			}
			require.Equal(t, c.lost, lost, "lost")
			require.Equal(t, c.gaps, gaps, "gaps")
			require.Equal(t, c.late, late, "late")
		})
	}
}

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	cases := []struct {
		name string
		in   []time.Duration
		want Distribution
	}{
		{name: "empty", in: nil, want: Distribution{}},
		{name: "one", in: ms(7), want: Distribution{Count: 1, Min: 7, Mean: 7, P50: 7, P90: 7, P99: 7, Max: 7}},
		{name: "unsorted ten", in: ms(10, 1, 9, 2, 8, 3, 7, 4, 6, 5),
			want: Distribution{Count: 10, Min: 1, Mean: 5.5, P50: 5, P90: 9, P99: 10, Max: 10}},
		{name: "hundred", in: func() []time.Duration {
			var v []int
			for i := 100; i >= 1; i-- {
				v = append(v, i)
			}
			return ms(v...)
		}(), want: Distribution{Count: 100, Min: 1, Mean: 50.5, P50: 50, P90: 90, P99: 99, Max: 100}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := append([]time.Duration(nil), c.in...)
			require.Equal(t, c.want, Summarize(c.in))
			require.Equal(t, in, c.in, "Summarize must not reorder its input")
		})
	}
}

func TestRates(t *testing.T) {
	cases := []struct {
		name string
		got  float64
		want float64
	}{
		{name: "1 MB in 8 s is 1 Mbit/s", got: Mbps(1_000_000, 8*time.Second), want: 1},
		{name: "zero window", got: Mbps(100, 0), want: 0},
		{name: "per second", got: PerSecond(300, 2*time.Second), want: 150},
		{name: "loss", got: LossRatio(99, 1), want: 0.01},
		{name: "no loss, nothing received", got: LossRatio(0, 0), want: 0},
		{name: "ratio", got: Ratio(6, 3), want: 2},
		{name: "ratio by zero", got: Ratio(6, 0), want: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.InDelta(t, c.want, c.got, 1e-9)
		})
	}
}

func TestSnapshotSub(t *testing.T) {
	var c Counters
	c.Bytes.Add(100)
	c.Units.Add(10)
	c.Joined.Add(3)
	a := c.Snapshot()
	c.Bytes.Add(50)
	c.Units.Add(5)
	c.Lost.Add(2)
	c.Joined.Add(1)
	d := c.Snapshot().Sub(a)
	require.Equal(t, int64(50), d.Bytes)
	require.Equal(t, int64(5), d.Units)
	require.Equal(t, int64(2), d.Lost)
	require.Equal(t, int64(4), d.Joined, "Joined is a level")
}

func TestParseStat(t *testing.T) {
	cases := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{name: "plain", stat: "1234 (estuary) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0",
			want: 3 * time.Second},
		{name: "name with spaces and parens", stat: "99 (a b) c)) R 1 2 3 4 5 6 7 8 9 10 7 3 0 0",
			want: 100 * time.Millisecond},
		{name: "truncated", stat: "99 (x) R 1 2 3", wantErr: true},
		{name: "no name", stat: "garbage", wantErr: true},
		{name: "negative", stat: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 -5 1 0 0", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseStatCPU([]byte(c.stat))
			if c.wantErr {
				require.ErrorIs(t, err, ErrProcFormat)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestParseStatusRSS(t *testing.T) {
	cases := []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{name: "present", status: "Name:\tx\nVmPeak:\t 10 kB\nVmRSS:\t   2048 kB\nThreads: 3\n", want: 2048 * 1024},
		{name: "missing", status: "Name:\tx\n", wantErr: true},
		{name: "bad unit", status: "VmRSS: 12 MB\n", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseStatusRSS([]byte(c.status))
			if c.wantErr {
				require.ErrorIs(t, err, ErrProcFormat)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, s.RSS)
	require.GreaterOrEqual(t, s.CPU, time.Duration(0))
}

func FuzzParseProc(f *testing.F) {
	f.Add([]byte("1234 (estuary) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0"))
	f.Add([]byte("VmRSS:\t   2048 kB\n"))
	f.Add([]byte("Udp: InDatagrams NoPorts InErrors RcvbufErrors\nUdp: 1 2 3 4\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseSNMPUDP(b)
		if d, err := ParseStatCPU(b); err == nil {
			require.GreaterOrEqual(t, d, time.Duration(0))
		}
		if n, err := ParseStatusRSS(b); err == nil {
			require.GreaterOrEqual(t, n, int64(0))
		}
	})
}

func TestParseSNMPUDP(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    UDPCounters
		wantErr bool
	}{
		{name: "linux 6", in: "Ip: Forwarding\nIp: 1\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n" +
			"Udp: 2656398 5300 275968 2938322 275960 3 0 0 0\nUdpLite: InDatagrams\nUdpLite: 0\n",
			want: UDPCounters{InDatagrams: 2656398, InErrors: 275968, RcvbufErrors: 275960, SndbufErrors: 3}},
		{name: "no udp", in: "Ip: Forwarding\nIp: 1\n", wantErr: true},
		{name: "short values", in: "Udp: InDatagrams NoPorts\nUdp: 1\n", wantErr: true},
		{name: "not a number", in: "Udp: InDatagrams\nUdp: x\n", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseSNMPUDP([]byte(c.in))
			if c.wantErr {
				require.ErrorIs(t, err, ErrProcFormat)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestFrameGapTracker(t *testing.T) {
	cases := []struct {
		name       string
		ts         []uint32
		lost, gaps int
	}{
		{name: "steady 30 fps", ts: []uint32{0, 33, 67, 100, 133, 167}},
		{name: "two frames missing", ts: []uint32{0, 33, 67, 167, 200}, lost: 2, gaps: 1},
		{name: "jump to the next keyframe", ts: []uint32{0, 40, 80, 2000, 2040}, lost: 47, gaps: 1},
		{name: "jitter is not loss", ts: []uint32{0, 40, 75, 130, 160}},
		{name: "restart backwards", ts: []uint32{5000, 5040, 0, 40}},
		{name: "equal stamps", ts: []uint32{0, 0, 40, 80}},
		{name: "compressed replay then live", ts: []uint32{0, 5, 11, 16, 22, 55, 88, 121, 154}},
		{name: "compressed replay then loss", ts: []uint32{0, 5, 11, 44, 77, 176, 209}, lost: 2, gaps: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f FrameGapTracker
			var lost, gaps int
			for _, ts := range c.ts {
				l, g := f.Push(ts)
				lost += l
				if g {
					gaps++
				}
			}
			require.Equal(t, c.lost, lost, "lost")
			require.Equal(t, c.gaps, gaps, "gaps")
		})
	}
}
