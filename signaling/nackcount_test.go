package signaling

import (
	"testing"

	"github.com/pion/rtcp"
	"github.com/stretchr/testify/require"
)

func TestNackedPackets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pairs []rtcp.NackPair
		want  uint64
	}{
		{name: "none", want: 0},
		{name: "one", pairs: []rtcp.NackPair{{PacketID: 7}}, want: 1},
		{name: "bitmask", pairs: []rtcp.NackPair{{PacketID: 7, LostPackets: 0b1011}}, want: 4},
		{name: "full and one", pairs: []rtcp.NackPair{{PacketID: 1, LostPackets: 0xffff}, {PacketID: 100}}, want: 18},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &rtcp.TransportLayerNack{Nacks: tc.pairs}
			require.Equal(t, tc.want, nackedPackets(n))
			var list int
			for _, p := range tc.pairs {
				list += len(p.PacketList())
			}
			require.Equal(t, uint64(list), nackedPackets(n), "same as pion's PacketList")
		})
	}
}
