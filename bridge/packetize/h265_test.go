package packetize

import (
	"testing"

	"github.com/pion/rtp/codecs"
	"github.com/stretchr/testify/require"
)

func hnal(typ byte, size int) []byte {
	n := make([]byte, size)
	n[0], n[1] = typ<<1, 1
	for i := 2; i < size; i++ {
		n[i] = byte(i*5 + 3)
	}
	return n
}

func TestH265Packetizer(t *testing.T) {
	vps, sps, pps := hnal(32, 24), hnal(33, 40), hnal(34, 8)
	idr := hnal(19, 4000) // IDR_W_RADL
	trail := hnal(1, 700)
	aud := hnal(35, 3)
	sei := hnal(39, 20)
	cases := []struct {
		name    string
		au      []byte
		packets int
		want    []byte
		ap      bool
	}{
		{name: "irap", au: avcc(aud, sei, idr), packets: 1 + 1 + 4, want: annexB(vps, sps, pps, sei, idr), ap: true},
		{name: "trail", au: avcc(trail), packets: 1, want: annexB(trail)},
		{name: "in-band params", au: avcc(vps, sps, pps, idr), packets: 1 + 4, want: annexB(vps, sps, pps, idr), ap: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var col collector
			p := NewH265(&col, Config{FirstSeq: 7})
			p.SetParameterSets([][]byte{vps}, [][]byte{sps}, [][]byte{pps})
			require.NoError(t, p.WriteAVCC(c.au, 4, 1234))
			require.Len(t, col.pkts, c.packets)
			require.False(t, p.ParamsChanged)
			if c.ap {
				require.Equal(t, byte(48), col.pkts[0].Payload[0]>>1&0x3f)
			}
			var d codecs.H265Depacketizer
			var got []byte
			for i, pkt := range col.pkts {
				require.Equal(t, i == len(col.pkts)-1, pkt.Marker)
				require.LessOrEqual(t, len(pkt.Payload), DefaultMaxPayload)
				out, err := d.Unmarshal(pkt.Payload)
				require.NoError(t, err)
				got = append(got, out...)
			}
			require.Equal(t, c.want, got)
		})
	}
	var col collector
	p := NewH265(&col, Config{})
	p.SetParameterSets([][]byte{vps}, [][]byte{sps}, [][]byte{pps})
	require.NoError(t, p.WriteAVCC(avcc(vps, hnal(33, 41), pps, idr), 4, 0))
	require.True(t, p.ParamsChanged)
	require.ErrorIs(t, p.WriteAVCC([]byte{0, 0, 0, 5, 1}, 4, 0), ErrBadNALU)
}

func TestH265Allocs(t *testing.T) {
	p := NewH265(&discard{}, Config{})
	p.SetParameterSets([][]byte{hnal(32, 24)}, [][]byte{hnal(33, 40)}, [][]byte{hnal(34, 8)})
	au := avcc(hnal(19, 9000), hnal(1, 100))
	require.Zero(t, testing.AllocsPerRun(200, func() { _ = p.WriteAVCC(au, 4, 0) }))
}

func FuzzH265Packetize(f *testing.F) {
	f.Add(avcc(hnal(19, 3000), hnal(39, 10)), uint16(1200))
	f.Add(avcc(hnal(32, 10), hnal(33, 10), hnal(34, 5), hnal(21, 50)), uint16(70))
	f.Fuzz(func(t *testing.T, au []byte, mtu uint16) {
		var col collector
		p := NewH265(&col, Config{MaxPayload: int(mtu)})
		p.SetParameterSets([][]byte{hnal(32, 24)}, [][]byte{hnal(33, 40)}, [][]byte{hnal(34, 8)})
		if err := p.WriteAVCC(au, 4, 0); err != nil {
			return
		}
		limit := max(int(mtu), 64)
		if mtu == 0 {
			limit = DefaultMaxPayload
		}
		for i, pkt := range col.pkts {
			require.LessOrEqual(t, len(pkt.Payload), limit)
			require.Equal(t, i == len(col.pkts)-1, pkt.Marker)
		}
	})
}
