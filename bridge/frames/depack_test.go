package frames

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/bridge/packetize"
)

type pkt struct {
	payload []byte
	ts      uint32
	marker  bool
	lost    bool
}

// feed pushes packets and returns copies of the completed units.
func feed(d depacketizer, pkts []pkt) [][]byte {
	var out [][]byte
	var units []unit
	for _, p := range pkts {
		units = d.push(p.payload, p.ts, p.marker, p.lost, units[:0])
		for _, u := range units {
			out = append(out, append([]byte(nil), u.data...))
		}
	}
	return out
}

func avcc(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

func stap(nalus ...[]byte) []byte {
	b := []byte{24}
	for _, n := range nalus {
		b = binary.BigEndian.AppendUint16(b, uint16(len(n)))
		b = append(b, n...)
	}
	return b
}

func fill(hdr []byte, n int) []byte {
	b := append([]byte(nil), hdr...)
	for i := 0; len(b) < n; i++ {
		b = append(b, byte(i*7+1))
	}
	return b
}

func TestNALDepack(t *testing.T) {
	sps := []byte{0x67, 0x42, 0xc0, 0x1f, 0x11}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	idr := fill([]byte{0x65, 0x88}, 3000)
	p1 := fill([]byte{0x41, 0x9a}, 50)
	fuA := func(n []byte, start, end bool, data []byte) []byte {
		h := n[0]&0x1f | byte(btoi(start))<<7 | byte(btoi(end))<<6
		return append([]byte{n[0]&0xe0 | 28, h}, data...)
	}
	hevcIDR := fill([]byte{19 << 1, 1}, 2000)
	hevcVPS := []byte{32 << 1, 1, 0xaa}
	for _, tc := range []struct {
		name string
		hevc bool
		pkts []pkt
		want [][]byte
	}{
		{name: "single NAL units, marker ends the unit", pkts: []pkt{
			{payload: p1, ts: 1, marker: true}, {payload: p1, ts: 2, marker: true},
		}, want: [][]byte{avcc(p1), avcc(p1)}},
		{name: "timestamp change ends a unit without marker", pkts: []pkt{
			{payload: p1, ts: 1}, {payload: p1, ts: 2, marker: true},
		}, want: [][]byte{avcc(p1), avcc(p1)}},
		{name: "STAP-A then FU-A", pkts: []pkt{
			{payload: stap(sps, pps), ts: 5},
			{payload: fuA(idr, true, false, idr[1:1000]), ts: 5},
			{payload: fuA(idr, false, false, idr[1000:2000]), ts: 5},
			{payload: fuA(idr, false, true, idr[2000:]), ts: 5, marker: true},
		}, want: [][]byte{avcc(sps, pps, idr)}},
		{name: "lost fragment drops the unit, next unit fine", pkts: []pkt{
			{payload: fuA(idr, true, false, idr[1:1000]), ts: 5},
			{payload: fuA(idr, false, true, idr[2000:]), ts: 5, marker: true, lost: true},
			{payload: p1, ts: 6, marker: true},
		}, want: [][]byte{avcc(p1)}},
		{name: "fragment without start", pkts: []pkt{
			{payload: fuA(idr, false, true, idr[2000:]), ts: 5, marker: true},
			{payload: p1, ts: 6, marker: true},
		}, want: [][]byte{avcc(p1)}},
		{name: "bad STAP-A length", pkts: []pkt{
			{payload: []byte{24, 0, 9, 1}, ts: 5, marker: true},
		}, want: nil},
		{name: "H.265 AP and FU", hevc: true, pkts: []pkt{
			{payload: append([]byte{48 << 1, 1, 0, byte(len(hevcVPS))}, hevcVPS...), ts: 9},
			{payload: append([]byte{49 << 1, 1, 0x80 | 19}, hevcIDR[2:1000]...), ts: 9},
			{payload: append([]byte{49 << 1, 1, 0x40 | 19}, hevcIDR[1000:]...), ts: 9, marker: true},
		}, want: [][]byte{avcc(hevcVPS, hevcIDR)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := feed(newNALDepack(tc.hevc), tc.pkts)
			require.Equal(t, tc.want, got)
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// rtpSink keeps copies of packets.
type rtpSink struct{ pkts []pkt }

func (s *rtpSink) WriteRTP(p *rtp.Packet) error {
	s.pkts = append(s.pkts, pkt{payload: append([]byte(nil), p.Payload...), ts: p.Timestamp, marker: p.Marker})
	return nil
}

func TestRoundTripPacketizers(t *testing.T) {
	t.Run("H.264 through packetize.H264", func(t *testing.T) {
		var s rtpSink
		p := packetize.NewH264(&s, packetize.Config{MaxPayload: 300})
		sps := []byte{0x67, 0x42, 0xc0, 0x1f, 0x11}
		pps := []byte{0x68, 0xce, 0x3c, 0x80}
		idr := fill([]byte{0x65, 0x88}, 2500)
		p.SetParameterSets([][]byte{sps}, [][]byte{pps})
		require.NoError(t, p.WriteAVCC(avcc(idr), 4, 3000))
		got := feed(newNALDepack(false), s.pkts)
		require.Equal(t, [][]byte{avcc(sps, pps, idr)}, got)
	})
	t.Run("AV1 through packetize.AV1", func(t *testing.T) {
		var s rtpSink
		p := packetize.NewAV1(&s, packetize.Config{MaxPayload: 200})
		seq := append([]byte{1<<3 | 2, 10}, fill([]byte{0x00}, 10)...)
		frame := fill([]byte{6<<3 | 2, 0xe8, 0x07}, 3+1000) // size 1000 as leb128
		tu := append(append([]byte(nil), seq...), frame...)
		require.NoError(t, p.WriteTemporalUnit(tu, 90, true))
		got := feed(&av1Depack{}, s.pkts)
		require.Len(t, got, 1)
		require.Equal(t, tu, got[0])
	})
	t.Run("AAC through packetize.AAC, fragmented", func(t *testing.T) {
		var s rtpSink
		p := packetize.NewAAC(&s, packetize.Config{MaxPayload: 100})
		au1, au2 := fill([]byte{0x21}, 50), fill([]byte{0x21}, 400)
		require.NoError(t, p.WriteAU(au1, 0))
		require.NoError(t, p.WriteAU(au2, 1024))
		got := feed(newAACDepack(), s.pkts)
		require.Equal(t, [][]byte{au1, au2}, got)
	})
}

func TestAV1Record(t *testing.T) {
	// seq_profile 0, not still, not reduced, no timing info, no initial display delay,
	// 1 operating point (cnt_minus_1 0), idc 0, seq_level_idx 8 (4.0), tier 1.
	// bits: 000 0 0 | 0 | 0 | 00000 | 000000000000 | 01000 | 1
	var v uint32 = 8<<3 | 1<<2
	payload := []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	r := av1Record(payload, []byte{0x0a, 4, payload[0], payload[1], payload[2], payload[3]})
	require.Equal(t, byte(0x81), r[0])
	require.Equal(t, byte(8), r[1]&0x1f)
	require.Equal(t, byte(0x80), r[2])
}

// fuzzTrack runs a depacketizer and the per-codec analysis (keyframes, parameter sets, DTS) on
// arbitrary packets. Input: codec selector, then packets as [len u16][flags] payload.
func fuzzTrack(data []byte) {
	if len(data) < 1 {
		return
	}
	c := Codec(data[0]%5 + 1)
	tr := &trackState{codec: c, clock: 90000}
	switch c {
	case CodecH264:
		tr.dep = newNALDepack(false)
		tr.dts264.Initialize()
	case CodecH265:
		tr.dep = newNALDepack(true)
		tr.dts265.Initialize()
	case CodecAV1:
		tr.dep = &av1Depack{}
	case CodecAAC:
		tr.dep = newAACDepack()
	default:
		tr.dep = opusDepack{}
	}
	tr.needKey = c.Video()
	b := data[1:]
	var ts uint32
	var units []unit
	for len(b) >= 3 {
		n := int(binary.BigEndian.Uint16(b)) % 2048
		flags := b[2]
		b = b[3:]
		if n > len(b) {
			n = len(b)
		}
		payload := b[:n]
		b = b[n:]
		ts += uint32(flags>>2) * 1500
		units = tr.dep.push(payload, ts, flags&1 != 0, flags&2 != 0, units[:0])
		for _, u := range units {
			f := &Frame{Codec: c, Data: bytes.Clone(u.data)}
			switch c {
			case CodecH264, CodecH265:
				if tr.analyzeNAL(f) {
					if _, err := tr.extractDTS(int64(u.ts)); err != nil {
						tr.needKey = true
						tr.dts264.Initialize()
						tr.dts265.Initialize()
					}
				}
			case CodecAV1:
				tr.analyzeAV1(f, u.first)
			}
		}
	}
}

func FuzzDepacketize(f *testing.F) {
	seed := func(c byte, pkts ...pkt) []byte {
		b := []byte{c}
		for _, p := range pkts {
			b = binary.BigEndian.AppendUint16(b, uint16(len(p.payload)))
			b = append(b, byte(btoi(p.marker)|btoi(p.lost)<<1|4))
			b = append(b, p.payload...)
		}
		return b
	}
	sps := []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc6, 0x0c, 0xa8}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	idr := fill([]byte{0x65, 0x88, 0x84}, 500)
	f.Add(seed(0, pkt{payload: stap(sps, pps)}, pkt{payload: append([]byte{0x7c, 0x85}, idr[1:200]...)}, pkt{payload: append([]byte{0x7c, 0x45}, idr[200:]...), marker: true}))
	f.Add(seed(1, pkt{payload: append([]byte{49 << 1, 1, 0x80 | 19}, fill(nil, 100)...)}, pkt{payload: append([]byte{49 << 1, 1, 0x40 | 19}, fill(nil, 100)...), marker: true}))
	f.Add(seed(2, pkt{payload: []byte{0x18, 12, 1<<3 | 2, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, marker: true}))
	f.Add(seed(3, pkt{payload: []byte{0, 16, 0, 0x20, 1, 2, 3, 4}, marker: true}))
	f.Add(seed(4, pkt{payload: []byte{0xfc, 1, 2}, marker: true}))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzTrack(data) })
}
