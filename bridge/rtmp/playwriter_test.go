package rtmp

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	gortmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"

	"github.com/estuary-media/estuary/bridge/flv"
)

// decoded is a message read back: type, message stream ID, payload (or data name).
type decoded struct {
	msg      message.Message
	streamID uint32
	body     []byte
}

// decodeMessages reads RTMP messages (chunk size chunk) from b with go-rtmp's chunk reader.
func decodeMessages(t testing.TB, b []byte, chunk uint32, n int) []decoded {
	t.Helper()
	cs := gortmp.NewChunkStreamer(bytes.NewReader(b), io.Discard, nil)
	defer func() { _ = cs.Close(); <-cs.Done() }()
	require.NoError(t, cs.PeerState().SetChunkSize(chunk))
	var out []decoded
	for range n {
		var m gortmp.ChunkMessage
		_, _, err := cs.Read(&m)
		require.NoError(t, err)
		d := decoded{msg: m.Message, streamID: m.StreamID}
		switch x := m.Message.(type) { // the payload is go-rtmp's buffer until the next Read
		case *message.VideoMessage:
			d.body, _ = io.ReadAll(x.Payload)
		case *message.AudioMessage:
			d.body, _ = io.ReadAll(x.Payload)
		}
		out = append(out, d)
	}
	return out
}

// pipeWriter is a playWriter on one end of a loopback TCP connection; read returns what it wrote.
func pipeWriter(t testing.TB, chunk uint32) (*playWriter, func(n int) []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cli, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	srv, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close(); srv.Close() })
	pw, err := newPlayWriter(&conn{Conn: srv}, 1, chunk)
	require.NoError(t, err)
	return pw, func(n int) []byte {
		b := make([]byte, n)
		_, err := io.ReadFull(cli, b)
		require.NoError(t, err)
		return b
	}
}

// The lean play path's chunks read back (go-rtmp's reader) as the messages written: every chunk size,
// bodies across chunk boundaries, the metadata written alone, and a batch sharing the
// chunked bodies among players.
func TestPlayWriterRoundTrip(t *testing.T) {
	video := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		chunk uint32
		sizes []int
	}{
		{name: "128", chunk: 128, sizes: []int{1, 127, 128, 129, 1000, 256}},
		{name: "4096", chunk: 4096, sizes: []int{5, 4095, 4096, 4097, 20000}},
		{name: "max", chunk: maxDirectChunk, sizes: []int{maxDirectChunk + 1, 3 * maxDirectChunk}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tags []*flv.Tag
			var ts []uint32
			for i, n := range tc.sizes {
				typ := uint8(flv.TagVideo)
				if i%2 == 1 {
					typ = flv.TagAudio
				}
				tags = append(tags, &flv.Tag{Type: typ, Body: video(n)})
				ts = append(ts, uint32(i*40))
			}
			meta := flv.MetaData{HasVideo: true}.Body()
			// Two players share the tags: the second uses the chunked bodies the first made.
			for player := range 2 {
				pw, read := pipeWriter(t, tc.chunk)
				require.NoError(t, pw.WriteTag(flv.TagScript, 0, meta))
				require.NoError(t, pw.WriteTags(tags, ts))
				msgs := decodeMessages(t, read(int(pw.sent)), tc.chunk, 1+len(tags))
				d, ok := msgs[0].msg.(*message.DataMessage)
				require.True(t, ok, "player %d: onMetaData is a data message", player)
				require.Equal(t, "onMetaData", d.Name)
				for i, m := range msgs[1:] {
					require.Equal(t, uint32(1), m.streamID)
					got := m.body
					switch x := m.msg.(type) {
					case *message.VideoMessage:
						require.Equal(t, uint8(flv.TagVideo), tags[i].Type)
					case *message.AudioMessage:
						require.Equal(t, uint8(flv.TagAudio), tags[i].Type)
					default:
						t.Fatalf("message %d: %T", i, x)
					}
					require.Equal(t, len(tags[i].Body), len(got), "message %d", i)
					require.True(t, bytes.Equal(tags[i].Body, got), "message %d", i)
				}
			}
		})
	}
}

// Timestamps: the type-0 header carries the player's timestamp; from 0xFFFFFF on, the extended
// timestamp follows every chunk header (the spec; go-rtmp reads it on the first only, so the bytes
// are checked here).
func TestPlayWriterTimestamps(t *testing.T) {
	pw, read := pipeWriter(t, 128)
	tags := []*flv.Tag{{Type: flv.TagVideo, Body: make([]byte, 10)}, {Type: flv.TagAudio, Body: make([]byte, 10)}}
	require.NoError(t, pw.WriteTags(tags, []uint32{1234, 0xFFFFFE}))
	b := read(int(pw.sent))
	require.Equal(t, []byte{csPlayVideo, 0, 0x04, 0xd2, 0, 0, 10, 9, 1, 0, 0, 0}, b[:12])
	msgs := decodeMessages(t, b, 128, 2)
	require.IsType(t, &message.AudioMessage{}, msgs[1].msg)

	pw, read = pipeWriter(t, 128)
	body := make([]byte, 200)
	require.NoError(t, pw.WriteTags([]*flv.Tag{{Type: flv.TagVideo, Body: body}}, []uint32{0x01000000}))
	b = read(int(pw.sent))
	want := []byte{csPlayVideo, 0xff, 0xff, 0xff, 0, 0, 200, 9, 1, 0, 0, 0, 1, 0, 0, 0}
	want = append(want, body[:128]...)
	want = append(want, 3<<6|csPlayVideo, 1, 0, 0, 0)
	want = append(want, body[128:]...)
	require.Equal(t, want, b)
}

// A player's batch does not allocate once its buffers have grown and the tags' chunked bodies exist.
func TestPlayWriterAllocs(t *testing.T) {
	pw, _ := pipeWriter(t, 4096)
	pw.nc.Conn = discardConn{pw.nc.Conn}
	var tags []*flv.Tag
	var ts []uint32
	for i := range 8 {
		tags = append(tags, &flv.Tag{Type: flv.TagVideo, Body: make([]byte, 9000)})
		ts = append(ts, uint32(i))
	}
	require.NoError(t, pw.WriteTags(tags, ts))
	require.Zero(t, testing.AllocsPerRun(200, func() {
		if err := pw.WriteTags(tags, ts); err != nil {
			panic(err)
		}
	}))
}

// discardConn drops writes (writev-free, so net.Buffers writes each buffer).
type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error) { return len(b), nil }

// dechunk reads one message (type-0 header, then type-3 chunks of csid) from b: its header fields and
// body, and what follows it.
func dechunk(b []byte, chunk int) (csid byte, ts uint32, msgType byte, streamID uint32, body, rest []byte, ok bool) {
	if len(b) < 12 || b[0]>>6 != 0 {
		return 0, 0, 0, 0, nil, nil, false
	}
	csid = b[0] & 0x3f
	ts = uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := int(b[4])<<16 | int(b[5])<<8 | int(b[6])
	msgType = b[7]
	streamID = uint32(b[8]) | uint32(b[9])<<8 | uint32(b[10])<<16 | uint32(b[11])<<24
	b = b[12:]
	ext := ts == 0xFFFFFF
	if ext {
		if len(b) < 4 {
			return 0, 0, 0, 0, nil, nil, false
		}
		ts, b = uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]), b[4:]
	}
	for len(body) < n {
		if len(body) > 0 {
			if len(b) < 1 || b[0] != 3<<6|csid {
				return 0, 0, 0, 0, nil, nil, false
			}
			b = b[1:]
			if ext {
				if len(b) < 4 {
					return 0, 0, 0, 0, nil, nil, false
				}
				b = b[4:]
			}
		}
		k := min(chunk, n-len(body))
		if len(b) < k {
			return 0, 0, 0, 0, nil, nil, false
		}
		body, b = append(body, b[:k]...), b[k:]
	}
	return csid, ts, msgType, streamID, body, b, true
}

// FuzzPlayWriterChunks: any body, chunk size and timestamp: the shared chunked body behind a player's
// type-0 header is exactly the per-player chunking (below 0xFFFFFF), and both read back whole.
func FuzzPlayWriterChunks(f *testing.F) {
	f.Add([]byte("hello"), uint16(128), uint32(0))
	f.Add(make([]byte, 300), uint16(128), uint32(40))
	f.Add(make([]byte, 5000), uint16(4096), uint32(0xFFFFFE))
	f.Add(make([]byte, 700), uint16(200), uint32(0x01000000))
	f.Add([]byte{}, uint16(200), uint32(7))
	f.Fuzz(func(t *testing.T, body []byte, chunk uint16, ts uint32) {
		size := max(128, int(chunk))
		per := appendMessage(nil, csPlayAudio, ts, 8, 3, body, size)
		if ts < 0xFFFFFF {
			var h [12]byte
			putType0(h[:], csPlayAudio, ts, 8, len(body), 3)
			shared := append(h[:], chunkBody(body, chunkKey(uint32(size), csPlayAudio))...)
			require.Equal(t, per, shared, "shared and per-player chunking agree")
		}
		csid, gotTS, typ, sid, got, rest, ok := dechunk(per, size)
		require.True(t, ok)
		require.Empty(t, rest)
		require.Equal(t, byte(csPlayAudio), csid)
		require.Equal(t, ts, gotTS)
		require.Equal(t, byte(8), typ)
		require.Equal(t, uint32(3), sid)
		require.True(t, bytes.Equal(body, got))
		if ts < 0xFFFFFF && len(body) > 0 && len(body) < 1<<16 {
			msgs := decodeMessages(t, per, uint32(size), 1) // and go-rtmp agrees
			require.True(t, bytes.Equal(body, msgs[0].body))
		}
	})
}
