package packetize

import (
	"testing"

	"github.com/pion/rtp/codecs"
	"github.com/stretchr/testify/require"
)

// obuWithSize makes an OBU of type typ with a size field and a payload of n bytes.
func obuWithSize(typ byte, n int) []byte {
	b := []byte{typ<<3 | 0x02}
	b = appendLEB(b, n)
	for i := range n {
		b = append(b, byte(i*3)+typ)
	}
	return b
}

func TestAV1Packetizer(t *testing.T) {
	td := obuWithSize(obuTemporalDelimiter, 0)
	seq := obuWithSize(obuSequenceHeader, 12)
	frame := obuWithSize(6, 3000) // OBU_FRAME
	small := obuWithSize(6, 200)
	pad := obuWithSize(obuPadding, 5)
	cases := []struct {
		name    string
		tu      []byte
		key     bool
		packets int
		want    []byte
		n       bool
		setSeq  bool
	}{
		{name: "key with seq header", tu: cat(td, seq, frame), key: true, packets: 3, want: cat(seq, frame), n: true},
		{name: "inter", tu: cat(td, small, pad), packets: 1, want: small},
		{name: "key without seq header gets it", tu: cat(td, frame), key: true, setSeq: true, packets: 3, want: cat(seq, frame), n: true},
		{name: "only delimiter", tu: td, packets: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var col collector
			p := NewAV1(&col, Config{})
			if c.setSeq {
				p.SetSequenceHeader(seq)
			}
			require.NoError(t, p.WriteTemporalUnit(c.tu, 90, c.key))
			require.Len(t, col.pkts, c.packets)
			if c.packets == 0 {
				return
			}
			require.Equal(t, c.n, col.pkts[0].Payload[0]&0x08 != 0)
			var d codecs.AV1Depacketizer
			var got []byte
			for i, pkt := range col.pkts {
				require.Equal(t, i == len(col.pkts)-1, pkt.Marker)
				require.LessOrEqual(t, len(pkt.Payload), DefaultMaxPayload)
				if i > 0 {
					require.Zero(t, pkt.Payload[0]&0x08, "N only on the first packet")
				}
				out, err := d.Unmarshal(pkt.Payload)
				require.NoError(t, err)
				got = append(got, out...)
			}
			require.Equal(t, c.want, got)
		})
	}
	p := NewAV1(&discard{}, Config{})
	require.ErrorIs(t, p.WriteTemporalUnit([]byte{0x32, 10, 1}, 0, false), ErrBadOBU)
	require.ErrorIs(t, p.WriteTemporalUnit([]byte{0x80}, 0, false), ErrBadOBU)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestAV1Allocs(t *testing.T) {
	p := NewAV1(&discard{}, Config{})
	tu := cat(obuWithSize(obuTemporalDelimiter, 0), obuWithSize(6, 5000))
	require.Zero(t, testing.AllocsPerRun(200, func() { _ = p.WriteTemporalUnit(tu, 0, false) }))
}

func FuzzAV1RoundTrip(f *testing.F) {
	f.Add(cat(obuWithSize(obuTemporalDelimiter, 0), obuWithSize(obuSequenceHeader, 12), obuWithSize(6, 3000)), uint16(0), true)
	f.Add(obuWithSize(6, 300), uint16(65), false)
	f.Fuzz(func(t *testing.T, tu []byte, mtu uint16, key bool) {
		var col collector
		p := NewAV1(&col, Config{MaxPayload: int(mtu)})
		if err := p.WriteTemporalUnit(tu, 0, key); err != nil {
			return
		}
		// Expected: kept OBUs, re-encoded with size fields (pion's depacketizer output).
		var want []byte
		for rest := tu; len(rest) > 0; {
			o, r, err := nextOBU(rest)
			require.NoError(t, err)
			rest = r
			if av1Skip(o.typ) {
				continue
			}
			want = append(want, o.hdr[0]|0x02)
			want = append(want, o.hdr[1:o.hdrLen]...)
			want = appendLEB(want, len(o.payload))
			want = append(want, o.payload...)
		}
		var d codecs.AV1Depacketizer
		var got []byte
		for i, pkt := range col.pkts {
			require.Equal(t, i == len(col.pkts)-1, pkt.Marker)
			out, err := d.Unmarshal(pkt.Payload)
			require.NoError(t, err)
			got = append(got, out...)
		}
		if len(want) == 0 {
			require.Empty(t, got)
			return
		}
		require.Equal(t, want, got)
	})
}
