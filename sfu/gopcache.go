package sfu

import "github.com/pion/rtp"

// gopPacket is one cached packet: the header fields a replay needs and a pooled payload copy.
type gopPacket struct {
	sn     uint16
	ts     uint32
	marker bool
	buf    *pktBuf // one reference held by the cache
}

// gopCache keeps the packets of a video track since its last keyframe, so a new writer starts at
// once. It belongs to a Track and is guarded by Track.writeMu.
type gopCache struct {
	codec     codecID
	maxTicks  uint32 // duration cap in clock ticks
	maxBytes  int
	pkts      []gopPacket // reused across GOPs
	bytes     int
	ssrc      uint32
	haveSSRC  bool
	active    bool   // pkts hold a GOP that starts with a keyframe
	keyTS     uint32 // the RTP timestamp of that keyframe
	lastSN    uint16 // the last packet seen from the source, padding included
	lastTS    uint32
	overflows uint64 // GOPs dropped for exceeding a cap (for tests and stats)
}

func newGOPCache(codec codecID, clockRate uint32, cfg *Config) *gopCache {
	ticks := uint64(cfg.GOPCacheMaxDuration.Seconds() * float64(clockRate))
	if ticks > 1<<31-1 {
		ticks = 1<<31 - 1
	}
	return &gopCache{codec: codec, maxTicks: uint32(ticks), maxBytes: cfg.GOPCacheMaxBytes}
}

// push records p, whose payload is in pb (the cache takes its own reference). A keyframe packet with a new timestamp starts a new GOP;
// packets of the same timestamp (SPS/PPS, then the IDR's fragments) stay together.
func (g *gopCache) push(p *rtp.Packet, pb *pktBuf) {
	if !g.haveSSRC || p.SSRC != g.ssrc {
		g.reset()
		g.ssrc, g.haveSSRC = p.SSRC, true
	}
	g.lastSN, g.lastTS = p.SequenceNumber, p.Timestamp
	if pb == nil {
		return // padding: nothing to replay
	}
	if isKeyframe(g.codec, p.Payload) && (!g.active || p.Timestamp != g.keyTS) {
		g.reset()
		g.active, g.keyTS = true, p.Timestamp
	}
	if !g.active {
		return
	}
	if d := int32(p.Timestamp - g.keyTS); d > int32(g.maxTicks) || g.bytes+len(p.Payload) > g.maxBytes {
		g.overflows++
		g.reset() // too long: nothing until the next keyframe
		return
	}
	pb.retain()
	g.pkts = append(g.pkts, gopPacket{sn: p.SequenceNumber, ts: p.Timestamp, marker: p.Marker, buf: pb})
	g.bytes += len(p.Payload)
}

// reset empties the cache, releasing its buffers (the packet slice keeps its capacity).
func (g *gopCache) reset() {
	for i := range g.pkts {
		g.pkts[i].buf.release()
		g.pkts[i] = gopPacket{}
	}
	g.pkts = g.pkts[:0]
	g.bytes = 0
	g.active = false
}

// forget resets the cache and the source it follows (a new publication).
func (g *gopCache) forget() {
	g.reset()
	g.haveSSRC = false
}
