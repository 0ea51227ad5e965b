package packetize

import (
	"bytes"
	"testing"

	"github.com/pion/rtp/codecs"
	"github.com/stretchr/testify/require"
)

func avcc(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = append(b, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
		b = append(b, n...)
	}
	return b
}

func annexB(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = append(b, 0, 0, 0, 1)
		b = append(b, n...)
	}
	return b
}

func nal(hdr byte, size int) []byte {
	n := make([]byte, size)
	n[0] = hdr
	for i := 1; i < size; i++ {
		n[i] = byte(i*7 + 1)
	}
	return n
}

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

func TestH264Packetizer(t *testing.T) {
	aud := []byte{0x09, 0xf0}
	sei := nal(0x06, 30)
	idr := nal(0x65, 5000)
	p1 := nal(0x41, 900)
	filler := nal(0x0c, 40)
	bslice := []byte{0x01, 0xa0, 1, 2, 3} // nal_ref_idc 0, slice_type B
	newSPS := append(append([]byte{}, testSPS...), 0x11)

	cases := []struct {
		name     string
		au       []byte
		dropB    bool
		packets  int
		want     []byte // Annex-B after depacketizing
		changed  bool
		stapNext bool // first packet is a STAP-A
	}{
		{name: "idr with aud and sei", au: avcc(aud, sei, idr), packets: 1 + 1 + 5, want: annexB(testSPS, testPPS, sei, idr), stapNext: true},
		{name: "p slice", au: avcc(p1), packets: 1, want: annexB(p1)},
		{name: "filler dropped", au: avcc(filler, p1, filler), packets: 1, want: annexB(p1)},
		{name: "b kept", au: avcc(bslice), packets: 1, want: annexB(bslice)},
		{name: "b dropped", au: avcc(bslice), dropB: true, packets: 0},
		{name: "only aud", au: avcc(aud), packets: 0},
		{name: "in-band new sps", au: avcc(newSPS, testPPS, idr), packets: 1 + 5, want: annexB(newSPS, testPPS, idr), changed: true, stapNext: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var col collector
			p := NewH264(&col, Config{SSRC: 1, PayloadType: 96, FirstSeq: 100})
			p.SetParameterSets([][]byte{testSPS}, [][]byte{testPPS})
			p.DropDisposableB = c.dropB
			require.NoError(t, p.WriteAVCC(c.au, 4, 9000))
			require.Len(t, col.pkts, c.packets)
			require.Equal(t, c.changed, p.ParamsChanged)
			if c.packets == 0 {
				return
			}
			if c.stapNext {
				require.Equal(t, byte(h264STAPA), col.pkts[0].Payload[0]&0x1f)
			}
			var depack codecs.H264Packet
			var got []byte
			var fuSizes []int
			for i, pkt := range col.pkts {
				require.Equal(t, uint16(100+i), pkt.SequenceNumber)
				require.Equal(t, uint32(9000), pkt.Timestamp)
				require.Equal(t, i == len(col.pkts)-1, pkt.Marker, "marker only on the last packet")
				require.LessOrEqual(t, len(pkt.Payload), DefaultMaxPayload)
				if pkt.Payload[0]&0x1f == h264FUA {
					fuSizes = append(fuSizes, len(pkt.Payload))
				}
				out, err := depack.Unmarshal(pkt.Payload)
				require.NoError(t, err)
				got = append(got, out...)
			}
			require.Equal(t, c.want, got)
			for _, s := range fuSizes {
				require.InDelta(t, fuSizes[0], s, 1, "FU-A fragments of equal size")
			}
		})
	}
}

func TestH264Errors(t *testing.T) {
	p := NewH264(&discard{}, Config{})
	require.ErrorIs(t, p.WriteAVCC([]byte{0, 0, 0, 9, 1}, 4, 0), ErrBadNALU)
	require.ErrorIs(t, p.WriteAVCC([]byte{0, 0, 0}, 4, 0), ErrBadNALU)
	require.ErrorIs(t, p.WriteAVCC([]byte{0, 0, 0, 0}, 4, 0), ErrBadNALU)
	require.ErrorIs(t, p.WriteAVCC([]byte{1, 0x41}, 3, 0), ErrBadNALU)
	require.NoError(t, p.WriteAVCC([]byte{1, 0x41}, 1, 0))
	require.NoError(t, p.WriteAVCC([]byte{0, 1, 0x41}, 2, 0))
}

func TestH264Allocs(t *testing.T) {
	p := NewH264(&discard{}, Config{})
	p.SetParameterSets([][]byte{testSPS}, [][]byte{testPPS})
	au := avcc([]byte{0x09, 0xf0}, nal(0x65, 20000), nal(0x06, 50))
	require.Zero(t, testing.AllocsPerRun(200, func() { _ = p.WriteAVCC(au, 4, 0) }))
}

func BenchmarkH264Packetize(b *testing.B) {
	p := NewH264(&discard{}, Config{})
	p.SetParameterSets([][]byte{testSPS}, [][]byte{testPPS})
	au := avcc(nal(0x41, 6000))
	b.SetBytes(int64(len(au)))
	b.ReportAllocs()
	for b.Loop() {
		_ = p.WriteAVCC(au, 4, 0)
	}
}

func FuzzH264RoundTrip(f *testing.F) {
	f.Add(avcc(nal(0x65, 3000), nal(0x06, 10)), uint16(1200))
	f.Add(avcc([]byte{0x09, 0xf0}, nal(0x41, 10)), uint16(100))
	f.Add([]byte{0, 0, 0, 9, 1}, uint16(0))
	f.Fuzz(func(t *testing.T, au []byte, mtu uint16) {
		var col collector
		p := NewH264(&col, Config{MaxPayload: int(mtu)})
		p.SetParameterSets([][]byte{testSPS}, [][]byte{testPPS})
		if err := p.WriteAVCC(au, 4, 0); err != nil {
			return
		}
		// Expected: the NAL units minus AUD/filler/SPS/PPS/RTP-only types, parameter sets first when the
		// access unit has an IDR.
		var want []byte
		idr := false
		for rest := au; len(rest) > 0; {
			n, r, err := nextNALU(rest, 4)
			require.NoError(t, err)
			rest = r
			switch t := n[0] & 0x1f; {
			case t == h264AUD, t == h264Filler, t == h264SPS, t == h264PPS, t == 0, t >= h264STAPA, n[0]&0x80 != 0:
				continue
			case t == h264IDR:
				idr = true
			}
			want = append(want, annexB(n)...)
		}
		if idr {
			want = append(annexB(p.sps[0], p.pps[0]), want...)
		}
		var depack codecs.H264Packet
		var got []byte
		for i, pkt := range col.pkts {
			require.LessOrEqual(t, len(pkt.Payload), max(int(mtu), 64, DefaultMaxPayload*btoi(mtu == 0)))
			require.Equal(t, i == len(col.pkts)-1, pkt.Marker)
			out, err := depack.Unmarshal(pkt.Payload)
			require.NoError(t, err)
			got = append(got, out...)
		}
		if !bytes.Equal(want, got) {
			require.Equal(t, want, got)
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestH264DropBFrames(t *testing.T) {
	var col collector
	p := NewH264(&col, Config{})
	p.DropBFrames = true
	p.SetParameterSets([][]byte{testSPS}, [][]byte{testPPS})
	refB := []byte{0x21, 0xa0, 1, 2} // nal_ref_idc 1, slice_type B
	nonRefB := []byte{0x01, 0xa0, 1, 2}
	pslice := nal(0x41, 50)
	require.NoError(t, p.WriteAVCC(avcc(refB), 4, 0))
	require.NoError(t, p.WriteAVCC(avcc(nonRefB), 4, 0))
	require.Empty(t, col.pkts, "every B slice is dropped")
	require.NoError(t, p.WriteAVCC(avcc(pslice), 4, 0))
	require.Len(t, col.pkts, 1)
	// The same in-band SPS again is not a change even when the one sent was rewritten.
	require.NoError(t, p.WriteAVCC(avcc(testSPS, testPPS, nal(0x65, 40)), 4, 0))
	require.False(t, p.ParamsChanged)
}
