package rtmp

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/estuary-media/estuary/bridge/flv"
)

// playWriter is an RTMP play's lean media path (a flv.BatchSink): it chunks messages itself and
// writes each batch of tags with one writev on the connection, between go-rtmp's own chunks (acks,
// command replies), which it never touches. Each tag's body is chunked once per stream (type-3
// headers between chunks, the same for every player of the server: one chunk size, one chunk stream
// per message type) and shared through flv.Tag.Shared; a player adds only its own 12-byte type-0
// header (its timestamp, its message stream ID). Timestamps from 0xFFFFFF on (after 4.6 hours of
// play) need the extended timestamp in every chunk: such messages are chunked for the player alone.
type playWriter struct {
	nc       *conn
	streamID uint32
	chunk    uint32 // our outgoing chunk size, announced at connect

	hdr  []byte      // type-0 headers of the batch
	vec  net.Buffers // the batch: header, shared chunked body, ...
	out  net.Buffers // what WriteTo consumes (a view of vec or one: consuming it keeps their capacity)
	one  [1][]byte
	own  []byte // a message chunked for this player alone (extended timestamps, metadata)
	sent uint64 // bytes written (tests)
	err  error  // the write error that ended the play
}

var _ flv.BatchSink = (*playWriter)(nil)

// Chunk stream IDs of the messages a play writes itself (go-rtmp writes its own on 2, 3, the client's
// command chunk stream and csData for our onStatus).
const (
	csPlayData  = 4
	csPlayVideo = csVideo
	csPlayAudio = csAudio
)

// maxDirectChunk is the largest chunk size for which go-rtmp writes each chunk with one socket write
// when its buffered writer has the default 16 KiB (it is flushed after every chunk; a chunk header is
// at most 18 bytes), so our writes can go between them.
const maxDirectChunk = 16<<10 - 18

func newPlayWriter(nc *conn, streamID, chunk uint32) (*playWriter, error) {
	limit := uint32(maxDirectChunk)
	if nc.wbuf > 0 {
		limit = uint32(nc.wbuf - 18)
	}
	if chunk < 128 || chunk > limit {
		return nil, fmt.Errorf("rtmp play: chunk size %d outside 128..%d", chunk, limit)
	}
	return &playWriter{nc: nc, streamID: streamID, chunk: chunk}, nil
}

// messageOf maps an FLV tag type to its RTMP message type and chunk stream (ok false: not sent).
func messageOf(typ uint8) (msgType byte, csid byte, ok bool) {
	switch typ {
	case flv.TagVideo:
		return 9, csPlayVideo, true
	case flv.TagAudio:
		return 8, csPlayAudio, true
	case flv.TagScript:
		return 18, csPlayData, true // AMF0 data message: the FLV script tag body as it is
	}
	return 0, 0, false
}

// chunkKey is the flv.Tag.Shared key of a body chunked with chunk size for chunk stream csid.
func chunkKey(chunk uint32, csid byte) uint64 { return uint64(chunk)<<8 | uint64(csid) }

// chunkBody cuts body into chunks of the key's size with a type-3 header (fmt 3, csid) before every
// chunk but the first: what follows a message's type-0 header when its timestamp fits in 24 bits.
func chunkBody(body []byte, key uint64) []byte {
	size, csid := int(key>>8), byte(key&0x3f)
	n := len(body)
	pieces := (n + size - 1) / size
	out := make([]byte, 0, n+max(pieces-1, 0))
	for off := 0; off < n; off += size {
		if off > 0 {
			out = append(out, 3<<6|csid)
		}
		out = append(out, body[off:min(off+size, n)]...)
	}
	return out
}

// putType0 writes a type-0 chunk header (12 bytes) for a message of length n; a timestamp of
// 0xFFFFFF or more is written as 0xFFFFFF (the extended timestamp follows; the caller adds it).
func putType0(b []byte, csid byte, ts uint32, msgType byte, n int, streamID uint32) {
	_ = b[11]
	b[0] = csid
	t := min(ts, 0xFFFFFF)
	b[1], b[2], b[3] = byte(t>>16), byte(t>>8), byte(t)
	b[4], b[5], b[6] = byte(n>>16), byte(n>>8), byte(n)
	b[7] = msgType
	binary.LittleEndian.PutUint32(b[8:], streamID)
}

// appendMessage appends a whole message, chunked for one player: a type-0 header, then type-3 headers
// between chunks, each header followed by the extended timestamp when ts >= 0xFFFFFF.
func appendMessage(dst []byte, csid byte, ts uint32, msgType byte, streamID uint32, body []byte, chunk int) []byte {
	var h [12]byte
	putType0(h[:], csid, ts, msgType, len(body), streamID)
	dst = append(dst, h[:]...)
	ext := ts >= 0xFFFFFF
	if ext {
		dst = binary.BigEndian.AppendUint32(dst, ts)
	}
	for off := 0; off < len(body); off += chunk {
		if off > 0 {
			dst = append(dst, 3<<6|csid)
			if ext {
				dst = binary.BigEndian.AppendUint32(dst, ts)
			}
		}
		dst = append(dst, body[off:min(off+chunk, len(body))]...)
	}
	return dst
}

// WriteTag writes one message chunked for this player alone (onMetaData at the start).
func (w *playWriter) WriteTag(typ uint8, ts uint32, body []byte) error {
	msgType, csid, ok := messageOf(typ)
	if !ok {
		return nil
	}
	w.own = appendMessage(w.own[:0], csid, ts, msgType, w.streamID, body, int(w.chunk))
	w.one[0] = w.own
	w.out = w.one[:]
	return w.flush()
}

// WriteTags writes a batch with one writev: per tag, the player's type-0 header and the tag's shared
// chunked body. It does not allocate once its buffers have grown (the shared bodies are made once per
// tag by the first player).
func (w *playWriter) WriteTags(tags []*flv.Tag, ts []uint32) error {
	if need := 12 * len(tags); cap(w.hdr) < need {
		w.hdr = make([]byte, need)
	}
	hdr := w.hdr[:cap(w.hdr)]
	w.vec = w.vec[:0]
	off := 0
	for i, t := range tags {
		msgType, csid, ok := messageOf(t.Type)
		if !ok {
			continue
		}
		if ts[i] >= 0xFFFFFF {
			// Extended timestamps: write what is pending, then this message chunked for us alone.
			if err := w.writeVec(); err != nil {
				return err
			}
			if err := w.WriteTag(t.Type, ts[i], t.Body); err != nil {
				return err
			}
			continue
		}
		putType0(hdr[off:], csid, ts[i], msgType, len(t.Body), w.streamID)
		w.vec = append(w.vec, hdr[off:off+12], t.Shared(chunkKey(w.chunk, csid), chunkBody))
		off += 12
	}
	return w.writeVec()
}

func (w *playWriter) writeVec() error {
	if len(w.vec) == 0 {
		return nil
	}
	w.out = w.vec
	w.vec = w.vec[:0]
	return w.flush()
}

func (w *playWriter) flush() error {
	for _, b := range w.out {
		w.sent += uint64(len(b))
	}
	err := w.nc.writeBuffers(&w.out)
	w.out = nil
	if err != nil {
		w.err = fmt.Errorf("rtmp play write: %w", err)
		return w.err
	}
	return nil
}
