package main

import (
	"math"
	"time"

	"github.com/estuary-media/estuary/cmd/estuary-bench/internal/stats"
)

// Report is the JSON report. Rates are over the measurement window (after every reader joined or
// failed, and the warm-up); joins, failures and time to first media cover the whole run.
type Report struct {
	Version       int                    `json:"version"`
	Start         time.Time              `json:"start"`
	Stream        string                 `json:"stream"`
	RampPerSecond float64                `json:"ramp_per_s"`
	JoinSeconds   float64                `json:"join_s"`   // from the first start until every reader joined or failed
	WindowSeconds float64                `json:"window_s"` // the measurement window
	Kinds         map[string]*KindReport `json:"kinds"`
	TotalMbps     float64                `json:"total_mbps"`
	Server        *ServerReport          `json:"server,omitempty"`
	Client        ClientReport           `json:"client"`
	// HostUDP is the host's UDP counters over the window (/proc/net/snmp: every socket on the
	// machine, other processes' included): rcvbuf_errors are datagrams the kernel dropped
	// because a receiving socket was full, the usual cause of WHEP loss on a loaded client.
	HostUDP *stats.UDPCounters `json:"host_udp,omitempty"`
}

// KindReport is one reader kind's figures. Bytes: WHEP counts RTP packets (header + payload,
// after SRTP), HTTP-FLV the response body, RTMP the TCP stream, HLS segments (init included).
// Units: RTP packets, FLV media tags, RTMP audio/video messages, HLS segments.
type KindReport struct {
	URL            string         `json:"url"`
	Readers        int            `json:"readers"`
	Joined         int64          `json:"joined"`
	JoinFailures   int64          `json:"join_failures"`
	FailureReasons map[string]int `json:"failure_reasons,omitempty"`
	Disconnects    int64          `json:"disconnects"` // joined, then lost before the end
	DisconnectWhy  map[string]int `json:"disconnect_reasons,omitempty"`
	ActiveAtEnd    int64          `json:"active_at_end"`
	Bytes          int64          `json:"bytes"` // in the window
	Mbps           float64        `json:"mbps"`
	MbpsPerReader  float64        `json:"mbps_per_reader"`
	Units          int64          `json:"units"`
	UnitsPerSecond float64        `json:"units_per_s"`
	Keyframes      int64          `json:"keyframes"`
	// Lost: missing RTP sequence numbers (WHEP), video frames missing by timestamp jumps (FLV,
	// RTMP: a server dropping a slow reader's frames to the next keyframe), skipped segments (HLS).
	Lost       int64              `json:"lost"`
	Gaps       int64              `json:"gaps"`
	Late       int64              `json:"late"` // reordered, duplicated or retransmitted
	LossRatio  float64            `json:"loss_ratio"`
	TTFM       stats.Distribution `json:"ttfm"`
	TotalBytes int64              `json:"total_bytes"` // whole run
}

// ServerReport comes from /proc/PID of -pid, over the measurement window (RSS: before the first
// reader and at the window's end).
type ServerReport struct {
	PID            int     `json:"pid"`
	CPUSeconds     float64 `json:"cpu_s"`
	Cores          float64 `json:"cores"`
	MbpsPerCore    float64 `json:"mbps_per_core"`
	CPUusPerPacket float64 `json:"cpu_us_per_packet,omitempty"` // per WHEP RTP packet delivered (only WHEP running)
	CPUusPerUnit   float64 `json:"cpu_us_per_unit"`             // per delivered unit of every kind
	RSSStart       int64   `json:"rss_start_bytes"`
	RSSEnd         int64   `json:"rss_end_bytes"`
	RSSDelta       int64   `json:"rss_delta_bytes"`
	RSSPerReader   float64 `json:"rss_per_reader_bytes"`
	Error          string  `json:"error,omitempty"`
}

// ClientReport is estuary-bench's own CPU over the window (it shares the machine in most runs).
type ClientReport struct {
	CPUSeconds float64 `json:"cpu_s"`
	Cores      float64 `json:"cores"`
}

// kindReport builds one kind's report from the window's counter delta.
func kindReport(k *kind, d stats.Snapshot, end stats.Snapshot, total int64, window time.Duration) *KindReport {
	failures, drops := k.reasons()
	r := &KindReport{
		URL: k.url, Readers: k.n, Joined: end.Joined, JoinFailures: end.Failed, FailureReasons: failures,
		Disconnects: end.Dropped, DisconnectWhy: drops, ActiveAtEnd: end.Active,
		Bytes: d.Bytes, Mbps: round(stats.Mbps(d.Bytes, window), 3),
		Units: d.Units, UnitsPerSecond: round(stats.PerSecond(d.Units, window), 1),
		Keyframes: d.Keyframes, Lost: d.Lost, Gaps: d.Gaps, Late: d.Late,
		LossRatio:  round(stats.LossRatio(d.Units, d.Lost), 6),
		TTFM:       stats.Summarize(k.ttfmSnapshot()),
		TotalBytes: total,
	}
	r.MbpsPerReader = round(stats.Ratio(r.Mbps, float64(max(end.Active, 0))), 4)
	return r
}

func round(v float64, digits int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
