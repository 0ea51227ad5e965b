package rtmp

import (
	"encoding/binary"
	"fmt"
)

// handshakeClientBytes is what a client sends before its first chunk: C0 (1), C1 (1536), C2 (1536).
const handshakeClientBytes = 1 + 1536 + 1536

// chunkGuard follows the client's chunk stream byte by byte, exactly as go-rtmp v0.0.7 reads it, to
// enforce what go-rtmp does not: a maximum message size, a bound on chunk streams and on the bytes of
// unfinished messages buffered at once, a sane chunk size. It sees every byte before go-rtmp does, so a
// violation ends the connection before go-rtmp buffers the message.
type chunkGuard struct {
	maxMsg     uint32
	maxStreams int
	maxPending int64 // bytes of unfinished messages across chunk streams

	skip      int    // handshake bytes still to pass
	chunkSize uint32 // the peer's chunk size

	state   int // what the next bytes are: see the guard* constants
	hdr     [16]byte
	have    int // header bytes collected
	need    int // header bytes needed for this state
	fmtType byte
	csid    int
	cur     *csState
	left    uint32 // payload bytes left in the current chunk
	pending int64

	streams map[int]*csState
}

type csState struct {
	msgLen uint32
	typ    byte
	got    uint32
	scs    [4]byte // first bytes of a SetChunkSize payload
}

const (
	guardBasic = iota
	guardBasicExt
	guardMsgHeader
	guardExtTS
	guardPayload
)

func newChunkGuard(maxMsg uint32, maxStreams int) *chunkGuard {
	return &chunkGuard{
		maxMsg:     maxMsg,
		maxStreams: maxStreams,
		maxPending: 2*int64(maxMsg) + 1<<20,
		skip:       handshakeClientBytes,
		chunkSize:  128,
		need:       1,
		streams:    make(map[int]*csState, 8),
	}
}

var msgHeaderLen = [4]int{11, 7, 3, 0}

// feed checks the next bytes of the client's stream.
func (g *chunkGuard) feed(b []byte) error {
	if g.skip > 0 {
		n := min(g.skip, len(b))
		g.skip -= n
		b = b[n:]
	}
	for len(b) > 0 {
		if g.state == guardPayload {
			n := min(uint32(len(b)), g.left)
			g.payload(b[:n])
			b = b[n:]
			g.left -= n
			if g.left == 0 {
				if err := g.chunkDone(); err != nil {
					return err
				}
			}
			continue
		}
		n := min(g.need-g.have, len(b))
		copy(g.hdr[g.have:], b[:n])
		g.have += n
		b = b[n:]
		if g.have < g.need {
			continue
		}
		if err := g.headerDone(); err != nil {
			return err
		}
	}
	return nil
}

func (g *chunkGuard) next(state, need int) {
	g.state, g.need, g.have = state, need, 0
}

func (g *chunkGuard) headerDone() error {
	switch g.state {
	case guardBasic:
		g.fmtType = g.hdr[0] >> 6
		g.csid = int(g.hdr[0] & 0x3f)
		switch g.csid {
		case 0:
			g.next(guardBasicExt, 1)
			return nil
		case 1:
			g.next(guardBasicExt, 2)
			return nil
		}
		return g.basicDone()
	case guardBasicExt:
		if g.need == 1 {
			g.csid = int(g.hdr[0]) + 64
		} else {
			g.csid = int(g.hdr[1])*256 + int(g.hdr[0]) + 64
		}
		return g.basicDone()
	case guardMsgHeader:
		return g.msgHeaderDone()
	case guardExtTS:
		return g.startPayload()
	}
	return nil
}

func (g *chunkGuard) basicDone() error {
	cs := g.streams[g.csid]
	if cs == nil {
		if len(g.streams) >= g.maxStreams {
			return fmt.Errorf("%w: more than %d chunk streams", ErrChunkStream, g.maxStreams)
		}
		cs = &csState{}
		g.streams[g.csid] = cs
	}
	g.cur = cs
	if n := msgHeaderLen[g.fmtType]; n > 0 {
		g.next(guardMsgHeader, n)
		return nil
	}
	return g.startPayload()
}

func u24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

func (g *chunkGuard) msgHeaderDone() error {
	h := g.hdr[:g.need]
	if g.fmtType <= 1 {
		l := u24(h[3:])
		if l > g.maxMsg {
			return fmt.Errorf("%w: %d bytes (limit %d)", ErrMessageTooLarge, l, g.maxMsg)
		}
		g.cur.msgLen = l
		g.cur.typ = h[6]
	}
	if u24(h) == 0xffffff {
		g.next(guardExtTS, 4)
		return nil
	}
	return g.startPayload()
}

func (g *chunkGuard) startPayload() error {
	cs := g.cur
	if cs.msgLen == 0 || cs.got >= cs.msgLen {
		return fmt.Errorf("%w: chunk on stream %d has no message to continue", ErrChunkStream, g.csid)
	}
	g.left = min(cs.msgLen-cs.got, g.chunkSize)
	g.state = guardPayload
	return nil
}

func (g *chunkGuard) payload(b []byte) {
	cs := g.cur
	if cs.typ == 1 && cs.got < 4 {
		copy(cs.scs[cs.got:], b)
	}
	cs.got += uint32(len(b))
	g.pending += int64(len(b))
}

func (g *chunkGuard) chunkDone() error {
	cs := g.cur
	g.next(guardBasic, 1)
	if cs.got < cs.msgLen {
		if g.pending > g.maxPending {
			return fmt.Errorf("%w: %d bytes of unfinished messages", ErrMessageTooLarge, g.pending)
		}
		return nil
	}
	g.pending -= int64(cs.got)
	cs.got = 0
	if cs.typ == 1 { // SetChunkSize: go-rtmp applies it before reading the next chunk
		if cs.msgLen < 4 {
			return fmt.Errorf("%w: %d-byte message", ErrChunkSize, cs.msgLen)
		}
		size := binary.BigEndian.Uint32(cs.scs[:])
		if size == 0 || size > 0xffffff {
			return fmt.Errorf("%w: %d", ErrChunkSize, size)
		}
		g.chunkSize = size
	}
	return nil
}
