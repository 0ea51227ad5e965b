package metrics

import (
	"slices"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/estuary-media/estuary/sfu"
)

// trackAcc accumulates one track's counters across scrapes. Ingest counters are monotonic while the
// track lives; the writers' sums are not (a leaving writer takes its counts along), so only their
// increases are added: the totals never go down.
type trackAcc struct {
	seen                               uint64 // scrape generation that last saw the track
	lastOutPkts, lastOutBytes, lastDrp uint64
	outPkts, outBytes, dropped         uint64
	lastRtx, lastRtxMiss, rtx, rtxMiss uint64
	kf                                 uint64 // keyframe requests forwarded (monotonic per track)
}

// nodeCollector reads the hub (and the adapters' accessors) on every scrape.
type nodeCollector struct {
	cfg  Config
	deps Deps

	streams, publishers, viewers, info              *prometheus.Desc
	inBytes, inPkts, outBytes, outPkts, dropped     *prometheus.Desc
	sInBytes, sInPkts, sOutBytes, sOutPkts, sDrop   *prometheus.Desc
	sViewers, relays, regLeases, regErrors          *prometheus.Desc
	regRetaken, regLost, regUnreachable, conns, ref *prometheus.Desc
	viewerDropped, kfReqs, sKFReqs, nacks           *prometheus.Desc
	batchedDatagrams, batchSyscalls                 *prometheus.Desc
	rtx, rtxMiss                                    *prometheus.Desc
	transcode                                       *prometheus.Desc

	mu     sync.Mutex // guards the fields below (concurrent scrapes)
	gen    uint64
	tracks map[*sfu.Track]*trackAcc
	// gone are the totals of tracks no longer in the hub (node totals stay monotonic).
	goneInPkts, goneInBytes, goneOutPkts, goneOutBytes, goneDropped uint64
	goneKF, goneRtx, goneRtxMiss                                    uint64
	lastIn                                                          map[*sfu.Track]sfu.TrackStats
}

func newNodeCollector(cfg Config, deps Deps) *nodeCollector {
	ns := cfg.Namespace
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(ns+"_"+name, help, labels, nil)
	}
	return &nodeCollector{
		cfg: cfg, deps: deps,
		info:             d("build_info", "Always 1: the node's identity.", "node_id", "role", "version"),
		streams:          d("streams", "Streams on this node (published, pulled or in grace)."),
		publishers:       d("publishers", "Live publishers by protocol.", "protocol"),
		viewers:          d("viewers", "Viewers by protocol (hub subscribers and frame-output viewers).", "protocol"),
		inBytes:          d("received_bytes_total", "RTP payload bytes received from publishers."),
		inPkts:           d("received_packets_total", "RTP packets received from publishers."),
		outBytes:         d("sent_bytes_total", "RTP payload bytes sent to WebRTC viewers and relays."),
		outPkts:          d("sent_packets_total", "RTP packets sent to WebRTC viewers and relays."),
		dropped:          d("dropped_packets_total", "Packets dropped for slow viewers (WebRTC writers)."),
		kfReqs:           d("keyframe_requests_total", "Keyframe requests forwarded to publishers (PLIs for WebRTC publishers)."),
		nacks:            d("nacks_received_total", "Lost packets WebRTC viewers asked for by RTCP NACK."),
		rtx:              d("retransmitted_packets_total", "Packets resent to WebRTC viewers at their request (RTCP NACK), from the tracks' shared history."),
		rtxMiss:          d("retransmit_missed_packets_total", "Packets WebRTC viewers asked for that were not resent (unmappable, too old, over the rate or queue bound)."),
		batchedDatagrams: d("webrtc_batched_datagrams_total", "Datagrams sent to WebRTC viewers in batches (webrtc.batch)."),
		batchSyscalls:    d("webrtc_batch_syscalls_total", "System calls that sent the batched datagrams (fewer with UDP GSO)."),
		transcode:        d("transcode_seconds_total", "Time spent transcoding audio (decode, resample, encode), by direction.", "direction"),
		sKFReqs:          d("stream_keyframe_requests_total", "Keyframe requests forwarded to the publisher, per stream and track.", "stream", "track"),
		viewerDropped:    d("frame_viewer_dropped_total", "Tags dropped for slow frame-output viewers (FLV, RTMP play) now connected."),
		sInBytes:         d("stream_received_bytes_total", "RTP payload bytes received, per stream and track.", "stream", "track"),
		sInPkts:          d("stream_received_packets_total", "RTP packets received, per stream and track.", "stream", "track"),
		sOutBytes:        d("stream_sent_bytes_total", "RTP payload bytes sent, per stream and track.", "stream", "track"),
		sOutPkts:         d("stream_sent_packets_total", "RTP packets sent, per stream and track.", "stream", "track"),
		sDrop:            d("stream_dropped_packets_total", "Packets dropped for slow viewers, per stream and track.", "stream", "track"),
		sViewers:         d("stream_viewers", "Hub subscribers per stream.", "stream"),
		relays:           d("relays", "Relays by direction (serve, pull) and state (up, down).", "direction", "state"),
		regLeases:        d("registry_leases", "Stream leases this node holds."),
		regErrors:        d("registry_refresh_errors_total", "Failed node/lease refreshes (store unreachable)."),
		regRetaken:       d("registry_leases_retaken_total", "Leases re-taken after they vanished."),
		regLost:          d("registry_leases_lost_total", "Leases lost to another owner."),
		regUnreachable:   d("registry_unreachable", "1 when the registry's last operation failed."),
		conns:            d("connections", "Open connections by protocol (as counted for limits.max_connections).", "protocol"),
		ref:              d("connections_refused_total", "Connections refused by limits.max_connections, by protocol.", "protocol"),
		tracks:           map[*sfu.Track]*trackAcc{},
		lastIn:           map[*sfu.Track]sfu.TrackStats{},
	}
}

// Describe sends every descriptor.
func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.info, c.streams, c.publishers, c.viewers, c.inBytes, c.inPkts, c.outBytes, c.outPkts, c.dropped,
		c.viewerDropped, c.kfReqs, c.sKFReqs, c.sInBytes, c.sInPkts, c.sOutBytes, c.sOutPkts, c.sDrop, c.sViewers, c.relays,
		c.regLeases, c.regErrors, c.regRetaken, c.regLost, c.regUnreachable, c.conns, c.ref, c.nacks, c.batchedDatagrams, c.batchSyscalls, c.rtx, c.rtxMiss, c.transcode,
	} {
		ch <- d
	}
}

// incr is how much cur grew since last (0 when it shrank: a writer left with its counts).
func incr(cur, last uint64) uint64 {
	if cur > last {
		return cur - last
	}
	return 0
}

// Collect reads the hub and the accessors.
func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.info, 1, c.cfg.NodeID, c.cfg.Role, c.cfg.Version)

	streams := c.deps.Hub.Streams()
	pubs := map[string]int{}
	views := map[string]int{}
	gauge(c.streams, float64(len(streams)))

	c.mu.Lock()
	c.gen++
	var inP, inB, outP, outB, drp, kf, rtx, rtxMiss uint64
	for _, s := range streams {
		key := s.Key()
		if p := s.Publisher(); p != nil {
			pubs[p.Info().Protocol]++
		}
		n := 0
		for _, sub := range s.Subscribers() {
			proto := sub.Info().Protocol
			if slices.Contains(c.cfg.HiddenProtocols, proto) {
				continue
			}
			views[proto]++
			n++
		}
		gauge(c.sViewers, float64(n), key)
		for _, t := range s.Tracks() {
			acc := c.tracks[t]
			if acc == nil {
				acc = &trackAcc{}
				c.tracks[t] = acc
			}
			acc.seen = c.gen
			acc.kf = t.KeyframeRequests()
			in := t.Stats()
			c.lastIn[t] = in
			ws := t.WriterStats()
			acc.outPkts += incr(ws.Packets, acc.lastOutPkts)
			acc.outBytes += incr(ws.Bytes, acc.lastOutBytes)
			acc.dropped += incr(ws.Dropped, acc.lastDrp)
			acc.lastOutPkts, acc.lastOutBytes, acc.lastDrp = ws.Packets, ws.Bytes, ws.Dropped
			acc.rtx += incr(ws.Retransmitted, acc.lastRtx)
			acc.rtxMiss += incr(ws.RetransmitMissed, acc.lastRtxMiss)
			acc.lastRtx, acc.lastRtxMiss = ws.Retransmitted, ws.RetransmitMissed
			rtx += acc.rtx
			rtxMiss += acc.rtxMiss
			id := t.ID()
			counter(c.sInBytes, in.Bytes, key, id)
			counter(c.sInPkts, in.Packets, key, id)
			counter(c.sOutBytes, acc.outBytes, key, id)
			counter(c.sOutPkts, acc.outPkts, key, id)
			counter(c.sDrop, acc.dropped, key, id)
			counter(c.sKFReqs, acc.kf, key, id)
			kf += acc.kf
			inP += in.Packets
			inB += in.Bytes
			outP += acc.outPkts
			outB += acc.outBytes
			drp += acc.dropped
		}
	}
	// Tracks gone since the last scrape keep counting in the node totals.
	for t, acc := range c.tracks {
		if acc.seen == c.gen {
			continue
		}
		last := c.lastIn[t]
		c.goneInPkts += last.Packets
		c.goneInBytes += last.Bytes
		c.goneOutPkts += acc.outPkts
		c.goneOutBytes += acc.outBytes
		c.goneDropped += acc.dropped
		c.goneKF += acc.kf
		c.goneRtx += acc.rtx
		c.goneRtxMiss += acc.rtxMiss
		delete(c.tracks, t)
		delete(c.lastIn, t)
	}
	counter(c.inPkts, inP+c.goneInPkts)
	counter(c.inBytes, inB+c.goneInBytes)
	counter(c.outPkts, outP+c.goneOutPkts)
	counter(c.outBytes, outB+c.goneOutBytes)
	counter(c.dropped, drp+c.goneDropped)
	counter(c.kfReqs, kf+c.goneKF)
	counter(c.rtx, rtx+c.goneRtx)
	counter(c.rtxMiss, rtxMiss+c.goneRtxMiss)
	c.mu.Unlock()

	var vdrop uint64
	if c.deps.Viewers != nil {
		for _, v := range c.deps.Viewers() {
			views[v.Protocol]++
			vdrop += v.Dropped
		}
	}
	gauge(c.viewerDropped, float64(vdrop))
	for _, p := range sortedKeys(pubs) {
		gauge(c.publishers, float64(pubs[p]), p)
	}
	for _, p := range sortedKeys(views) {
		gauge(c.viewers, float64(views[p]), p)
	}

	if c.deps.Relays != nil {
		type dirState struct{ dir, state string }
		n := map[dirState]int{
			{"serve", "up"}: 0, {"pull", "up"}: 0, {"pull", "down"}: 0,
		}
		for _, r := range c.deps.Relays() {
			st := "down"
			if r.Up {
				st = "up"
			}
			k := r.Sessions
			if k <= 0 {
				k = 1
			}
			n[dirState{r.Direction, st}] += k
		}
		for k, v := range n {
			gauge(c.relays, float64(v), k.dir, k.state)
		}
	}
	if c.deps.Registry != nil {
		st := c.deps.Registry()
		gauge(c.regLeases, float64(st.Leases))
		counter(c.regErrors, st.RefreshErrors)
		counter(c.regRetaken, st.Retaken)
		counter(c.regLost, st.Lost)
		u := 0.0
		if st.Unreachable {
			u = 1
		}
		gauge(c.regUnreachable, u)
	}
	if c.deps.Connections != nil {
		m := c.deps.Connections()
		for _, p := range sortedKeys(m) {
			gauge(c.conns, float64(m[p]), p)
		}
	}
	if c.deps.Refused != nil {
		m := c.deps.Refused()
		for _, p := range sortedKeys(m) {
			counter(c.ref, m[p], p)
		}
	}
	if c.deps.NACKs != nil {
		counter(c.nacks, c.deps.NACKs())
	}
	if c.deps.UDPBatches != nil {
		dg, calls := c.deps.UDPBatches()
		counter(c.batchedDatagrams, dg)
		counter(c.batchSyscalls, calls)
	}
	if c.deps.TranscodeSeconds != nil {
		m := c.deps.TranscodeSeconds()
		for _, dir := range sortedKeys(m) {
			ch <- prometheus.MustNewConstMetric(c.transcode, prometheus.CounterValue, m[dir], dir)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
