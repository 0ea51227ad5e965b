package packetize

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOpus(t *testing.T) {
	var col collector
	p := NewOpus(&col, Config{SSRC: 5, PayloadType: 111, FirstSeq: 65535})
	require.NoError(t, p.WriteFrame([]byte{0xfc, 1, 2}, 960))
	require.NoError(t, p.WriteFrame([]byte{0xfc, 3}, 1920))
	require.ErrorIs(t, p.WriteFrame(nil, 0), ErrEmptyAU)
	require.Len(t, col.pkts, 2)
	require.Equal(t, uint16(65535), col.pkts[0].SequenceNumber)
	require.Equal(t, uint16(0), col.pkts[1].SequenceNumber)
	require.Equal(t, []byte{0xfc, 3}, col.pkts[1].Payload)
	require.Equal(t, uint32(1920), col.pkts[1].Timestamp)
	require.Equal(t, uint8(111), col.pkts[1].PayloadType)
}
