package rtc

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

// srWall maps ts to wall time through sr.
func srWall(sr *rtcp.SenderReport, ts uint32, clock float64) time.Time {
	secs := int64(sr.NTPTime>>32) - 2208988800
	frac := float64(sr.NTPTime&0xffffffff) / (1 << 32)
	return time.Unix(secs, int64(frac*1e9)).Add(time.Duration(float64(int32(ts-sr.RTPTime)) / clock * float64(time.Second)))
}

func TestSenderReportMapping(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	const clock = 48000.0
	cases := []struct {
		name string
		// packets: timestamp offset (ticks from 1000) and send delay after its media time
		ticks  []int64
		delays []time.Duration
		base   uint32        // RTP timestamp of tick 0 (default 1000)
		extra  time.Duration // time after the last media time of the report
		want   time.Duration // wall time of tick 0 the report must give (offset from t0)
	}{
		{name: "on time", ticks: []int64{0, 960, 1920, 2880}, delays: []time.Duration{0, 0, 0, 0}, extra: time.Second},
		{name: "jitter: least-delayed packet wins", ticks: []int64{0, 960, 1920, 2880, 3840},
			delays: []time.Duration{30 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 5 * time.Millisecond, 28 * time.Millisecond},
			extra:  500 * time.Millisecond, want: 5 * time.Millisecond},
		{name: "retransmission is not a mapping", ticks: []int64{0, 960, 0, 1920}, delays: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 900 * time.Millisecond, 10 * time.Millisecond},
			extra: 100 * time.Millisecond, want: 10 * time.Millisecond},
		{name: "a pause re-bases", ticks: []int64{0, 960, 1920}, delays: []time.Duration{0, 0, 3 * time.Second}, extra: 100 * time.Millisecond, want: 3 * time.Second},
		{name: "timestamp wrap", base: 1<<32 - 2000, ticks: []int64{0, 960, 1920, 2880}, delays: []time.Duration{2 * time.Millisecond, 0, 0, 1 * time.Millisecond}, extra: time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &srStream{ssrc: 7, clock: clock}
			base := c.base
			if base == 0 {
				base = 1000
			}
			var last time.Time
			for i, k := range c.ticks {
				at := t0.Add(time.Duration(float64(k)/clock*float64(time.Second)) + c.delays[i])
				s.process(at, &rtp.Header{Timestamp: base + uint32(k)}, 100)
				last = at
			}
			now := last.Add(c.extra)
			sr := s.report(now)
			require.NotNil(t, sr)
			require.Equal(t, uint32(len(c.ticks)), sr.PacketCount)
			require.Equal(t, uint32(100*len(c.ticks)), sr.OctetCount)
			got := srWall(sr, base, clock).Sub(t0)
			t.Logf("tick 0 maps to %v (want %v)", got, c.want)
			require.InDelta(t, c.want.Seconds(), got.Seconds(), 0.0005)
		})
	}
	require.Nil(t, (&srStream{clock: clock}).report(t0), "no report before the first packet")
}

// TestSenderReportInterceptor runs the interceptor's loop: reports for a bound stream, none after
// Unbind, and Close waits for the loop.
func TestSenderReportInterceptor(t *testing.T) {
	t.Run("own loop", func(t *testing.T) { testSenderReports(t, senderReportFactory{}) })
	t.Run("scheduler", func(t *testing.T) {
		sched := newSRScheduler()
		defer sched.close()
		testSenderReports(t, senderReportFactory{sched: sched})
		sched.mu.Lock()
		require.Empty(t, sched.set, "Close leaves the scheduler")
		sched.mu.Unlock()
	})
}

func testSenderReports(t *testing.T, f senderReportFactory) {
	i, err := f.NewInterceptor("")
	require.NoError(t, err)
	var mu sync.Mutex
	var got []*rtcp.SenderReport
	i.BindRTCPWriter(interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, _ interceptor.Attributes) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range pkts {
			got = append(got, p.(*rtcp.SenderReport))
		}
		return 0, nil
	}))
	info := &interceptor.StreamInfo{SSRC: 42, ClockRate: 90000}
	w := i.BindLocalStream(info, interceptor.RTPWriterFunc(func(*rtp.Header, []byte, interceptor.Attributes) (int, error) { return 0, nil }))
	for k := range 5 {
		_, _ = w.Write(&rtp.Header{Timestamp: uint32(3000 * k)}, make([]byte, 10), nil)
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) > 0 }, 3*time.Second, 10*time.Millisecond)
	mu.Lock()
	require.Equal(t, uint32(42), got[0].SSRC)
	require.Equal(t, uint32(5), got[0].PacketCount)
	mu.Unlock()
	i.UnbindLocalStream(info)
	require.NoError(t, i.Close())
}
