package rtmp

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// chunkMsg encodes one message as chunks of size cs (fmt 0 then fmt 3), with csid's basic header.
func chunkMsg(csid int, typ byte, ts uint32, payload []byte, cs int) []byte {
	basic := func(f byte) []byte {
		switch {
		case csid < 64:
			return []byte{f<<6 | byte(csid)}
		case csid < 320:
			return []byte{f << 6, byte(csid - 64)}
		default:
			return []byte{f<<6 | 1, byte((csid - 64) % 256), byte((csid - 64) / 256)}
		}
	}
	var b []byte
	b = append(b, basic(0)...)
	tsField := min(ts, 0xffffff)
	b = append(b, byte(tsField>>16), byte(tsField>>8), byte(tsField))
	b = append(b, byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload)), typ, 1, 0, 0, 0)
	if ts >= 0xffffff {
		b = binary.BigEndian.AppendUint32(b, ts)
	}
	for i := 0; i < len(payload); i += cs {
		if i > 0 {
			b = append(b, basic(3)...)
		}
		b = append(b, payload[i:min(i+cs, len(payload))]...)
	}
	return b
}

func setChunkSize(n uint32) []byte {
	return chunkMsg(2, 1, 0, binary.BigEndian.AppendUint32(nil, n), 128)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

var guardCases = []struct {
	name string
	in   []byte
	err  error
}{
	{name: "small messages", in: cat(chunkMsg(3, 20, 0, make([]byte, 100), 128), chunkMsg(4, 9, 40, make([]byte, 1000), 128))},
	{name: "chunk size change", in: cat(setChunkSize(4096), chunkMsg(6, 9, 0, make([]byte, 100000), 4096), chunkMsg(4, 8, 0, make([]byte, 300), 4096))},
	{name: "tiny chunk size", in: cat(setChunkSize(1), chunkMsg(6, 9, 0, make([]byte, 300), 1))},
	{name: "extended timestamp", in: chunkMsg(5, 9, 0x1000000, make([]byte, 500), 128)},
	{name: "two-byte csid", in: chunkMsg(100, 9, 0, make([]byte, 300), 128)},
	{name: "three-byte csid", in: chunkMsg(1000, 9, 0, make([]byte, 300), 128)},
	{name: "fmt 2 continues the last length", in: cat(chunkMsg(4, 9, 0, make([]byte, 10), 128), []byte{0x84, 0, 0, 40}, make([]byte, 10))},
	{name: "interleaved chunk streams", in: cat(
		[]byte{0x04, 0, 0, 0, 0, 1, 0, 9, 1, 0, 0, 0}, make([]byte, 128), // csid 4: 256-byte message, first chunk
		chunkMsg(5, 8, 0, make([]byte, 50), 128),
		[]byte{0xc4}, make([]byte, 128))},
	{name: "too large", in: chunkMsg(4, 9, 0, make([]byte, 9<<20), 128), err: ErrMessageTooLarge},
	{name: "fmt 3 without message", in: []byte{0xc7, 1, 2, 3}, err: ErrChunkStream},
	{name: "fmt 2 without message", in: []byte{0x87, 0, 0, 1, 1}, err: ErrChunkStream},
	{name: "zero-length message", in: []byte{0x04, 0, 0, 0, 0, 0, 0, 9, 1, 0, 0, 0}, err: ErrChunkStream},
	{name: "chunk size zero", in: setChunkSize(0), err: ErrChunkSize},
	{name: "chunk size too big", in: setChunkSize(0x1000000), err: ErrChunkSize},
	{name: "short set chunk size", in: chunkMsg(2, 1, 0, []byte{0, 1}, 128), err: ErrChunkSize},
}

func TestChunkGuard(t *testing.T) {
	hs := make([]byte, handshakeClientBytes)
	for _, c := range guardCases {
		t.Run(c.name, func(t *testing.T) {
			for _, step := range []int{1, 7, 1 << 20} {
				g := newChunkGuard(8<<20, 32)
				in := append(append([]byte{}, hs...), c.in...)
				var err error
				for i := 0; i < len(in) && err == nil; i += step {
					err = g.feed(in[i:min(i+step, len(in))])
				}
				if c.err != nil {
					require.ErrorIs(t, err, c.err, "read step %d", step)
					continue
				}
				require.NoError(t, err, "read step %d", step)
				require.Equal(t, guardBasic, g.state, "ends at a chunk boundary")
				require.Zero(t, g.pending)
			}
		})
	}
	g := newChunkGuard(8<<20, 4)
	require.NoError(t, g.feed(hs))
	var err error
	for cs := 3; cs < 10 && err == nil; cs++ {
		err = g.feed(chunkMsg(cs, 9, 0, make([]byte, 10), 128))
	}
	require.ErrorIs(t, err, ErrChunkStream)
}

func FuzzChunkGuard(f *testing.F) {
	for _, c := range guardCases {
		if len(c.in) < 1<<16 {
			f.Add(c.in, uint8(3))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		// The guard's verdict must not depend on how reads split the stream.
		whole := newChunkGuard(1<<16, 8)
		whole.skip = 0
		errWhole := whole.feed(in)
		split := newChunkGuard(1<<16, 8)
		split.skip = 0
		var errSplit error
		s := int(step%16) + 1
		for i := 0; i < len(in) && errSplit == nil; i += s {
			errSplit = split.feed(in[i:min(i+s, len(in))])
		}
		require.Equal(t, errWhole == nil, errSplit == nil)
		if errWhole == nil {
			require.Equal(t, whole.state, split.state)
			require.Equal(t, whole.chunkSize, split.chunkSize)
			require.LessOrEqual(t, whole.pending, whole.maxPending)
		}
	})
}
