package rtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	gortmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"

	"github.com/estuary-media/estuary/bridge/flv"
	"github.com/estuary-media/estuary/sfu"
)

// Viewer is what RTMP play reads: a stream's FLV tags (bridge/flv.Viewer satisfies it).
type Viewer interface {
	// Pump writes onMetaData, the sequence headers, the kept GOP and live tags to sink until ctx
	// ends, the viewer ends or sink fails.
	Pump(ctx context.Context, sink flv.TagSink) error
	// Close removes the viewer.
	Close()
}

// Chunk stream IDs of what a play connection carries (as SRS numbers them).
const (
	csData  = 5
	csVideo = 6
	csAudio = 7
)

// player is one RTMP play of a session: the viewer and the goroutine pumping its tags.
type player struct {
	v      Viewer
	cancel context.CancelFunc
	done   chan struct{}
}

// OnPlay subscribes to the stream and starts pumping its tags; an unknown stream gets
// NetStream.Play.StreamNotFound with a reason (then go-rtmp's "Play failed." and the connection closes).
func (ss *session) OnPlay(sctx *gortmp.StreamContext, ts uint32, cmd *message.NetStreamPlay) error {
	play := ss.srv.deps.Play
	if play == nil {
		ss.log.Info("rtmp play refused: not available", "name", stripQuery(cmd.StreamName))
		_ = ss.writeStatus(sctx.StreamID, ts, message.NetStreamOnStatusLevelError, message.NetStreamOnStatusCodePlayFailed,
			"RTMP play is not available on this server; play with WebRTC (WHEP)")
		return ErrPlayUnsupported
	}
	if ss.ing != nil || ss.play != nil {
		return ss.refusePlay(sctx.StreamID, ts, message.NetStreamOnStatusCodePlayFailed,
			"this connection is already publishing or playing", fmt.Errorf("%w: second play", ErrBadKey))
	}
	key := streamKey(ss.app, cmd.StreamName)
	if !sfu.ValidKey(key) {
		return ss.refusePlay(sctx.StreamID, ts, message.NetStreamOnStatusCodePlayFailed,
			fmt.Sprintf("invalid stream key %q: want {app}/{stream} of [A-Za-z0-9_.-]", key), fmt.Errorf("%w: %q", ErrBadKey, key))
	}
	if reason, err := ss.authorize(sfu.ActionPlay, key, cmd.StreamName); err != nil {
		return ss.refusePlay(sctx.StreamID, ts, message.NetStreamOnStatusCodePlayFailed, reason, err)
	}
	ss.log = ss.log.With("stream", key)
	ctx, cancel := context.WithTimeout(ss.srv.ctx, 10*time.Second)
	v, err := play(ctx, key, ss.nc.RemoteAddr().String())
	cancel()
	if err != nil {
		if errors.Is(err, sfu.ErrStreamNotFound) {
			return ss.refusePlay(sctx.StreamID, ts, codePlayStreamNotFound, "stream "+key+" is not published", err)
		}
		return ss.refusePlay(sctx.StreamID, ts, message.NetStreamOnStatusCodePlayFailed, "play failed: "+err.Error(), err)
	}
	// A player sends nothing once playing: no idle read deadline (a dead peer fails the writes).
	ss.nc.idle = 0
	_ = ss.nc.Conn.SetReadDeadline(time.Time{})
	streamID := sctx.StreamID
	_ = ss.writeUserCtrlStreamBegin(streamID)
	if err := ss.writeStatus(streamID, ts, message.NetStreamOnStatusLevelStatus, codePlayReset, "Playing and resetting "+key+"."); err != nil {
		v.Close()
		return err
	}
	if err := ss.writeStatus(streamID, ts, message.NetStreamOnStatusLevelStatus, message.NetStreamOnStatusCodePlayStart, "Started playing "+key+"."); err != nil {
		v.Close()
		return err
	}
	pctx, pcancel := context.WithCancel(ss.srv.ctx)
	p := &player{v: v, cancel: pcancel, done: make(chan struct{})}
	ss.play = p
	ss.log.Info("rtmp play")
	go ss.pump(pctx, p, streamID)
	return nil
}

// Status codes go-rtmp does not name.
const (
	codePlayStreamNotFound  message.NetStreamOnStatusCode = "NetStream.Play.StreamNotFound"
	codePlayReset           message.NetStreamOnStatusCode = "NetStream.Play.Reset"
	codePlayUnpublishNotify message.NetStreamOnStatusCode = "NetStream.Play.UnpublishNotify"
)

func (ss *session) refusePlay(streamID, ts uint32, code message.NetStreamOnStatusCode, reason string, err error) error {
	ss.log.Warn("rtmp play refused", "reason", reason)
	if werr := ss.writeStatus(streamID, ts, message.NetStreamOnStatusLevelError, code, reason); werr != nil {
		ss.log.Debug("rtmp onStatus write failed", "err", werr)
	}
	return err
}

// writeUserCtrlStreamBegin tells the player the stream begins (on the connection goroutine).
func (ss *session) writeUserCtrlStreamBegin(streamID uint32) error {
	ctx, cancel := context.WithTimeout(ss.srv.ctx, 5*time.Second)
	defer cancel()
	return ss.rc.Write(ctx, 2, 0, &gortmp.ChunkMessage{StreamID: 0, Message: &message.UserCtrl{
		Event: &message.UserCtrlEventStreamBegin{StreamID: streamID}}})
}

// pump runs the viewer into the connection, then ends the connection (stream end, slow viewer, write
// error). Media goes through the lean path (playWriter: our own chunks, one writev per batch); with a
// chunk size too large for it, through go-rtmp (playSink), each write holding the connection's write
// turn (conn.turn), as go-rtmp's writer is not safe for concurrent use.
func (ss *session) pump(ctx context.Context, p *player, streamID uint32) {
	defer close(p.done)
	var sink flv.TagSink
	var werr func() error
	pw, err := ss.startDirect(ctx, streamID)
	switch {
	case err == nil:
		sink, werr = pw, func() error { return pw.err }
	case ctx.Err() != nil:
		return
	default:
		ss.log.Debug("rtmp play through go-rtmp's writer", "err", err)
		ps := &playSink{ss: ss, ctx: ctx, streamID: streamID}
		sink, werr = ps, func() error { return ps.err }
	}
	err = p.v.Pump(ctx, sink)
	if ctx.Err() != nil {
		return // the connection ended
	}
	switch {
	case errors.Is(err, flv.ErrSlowViewer):
		ss.log.Warn("rtmp player too slow, closing", "err", err)
	case werr() != nil:
		ss.log.Info("rtmp player write failed, closing", "err", werr())
	default:
		ss.log.Info("rtmp play ended: stream ended", "err", err)
		if ss.nc.takeTurn(ctx) {
			_ = ss.writeStatusCtx(ctx, streamID, 0, message.NetStreamOnStatusLevelStatus, codePlayUnpublishNotify, "stream ended")
			ss.nc.giveTurn()
		}
	}
	ss.closeConn()
}

// startDirect makes the play's lean writer once go-rtmp has written what OnPlay sent (StreamBegin,
// Play.Reset, Play.Start): it sends |RtmpSampleAccess (as SRS does) on the onStatus chunk stream, which
// go-rtmp starts only when the previous message there, Play.Start, is on the wire.
func (ss *session) startDirect(ctx context.Context, streamID uint32) (*playWriter, error) {
	pw, err := newPlayWriter(ss.nc, streamID, ss.rc.GetChunkStreamer().SelfState().ChunkSize())
	if err != nil {
		return nil, err
	}
	if !ss.nc.takeTurn(ctx) {
		return nil, ctx.Err()
	}
	defer ss.nc.giveTurn()
	access := []byte{0x01, 0x01, 0x01, 0x01} // AMF0 true, true
	err = ss.rc.Write(ctx, csData, 0, &gortmp.ChunkMessage{StreamID: streamID, Message: &message.DataMessage{
		Name: "|RtmpSampleAccess", Encoding: message.EncodingTypeAMF0, Body: bytes.NewReader(access)}})
	if err != nil {
		return nil, fmt.Errorf("rtmp play: %w", err)
	}
	return pw, nil
}

// stopPlay ends the play (connection goroutine: OnClose, deleteStream).
func (ss *session) stopPlay() {
	p := ss.play
	if p == nil {
		return
	}
	ss.play = nil
	p.cancel()
	<-p.done
	p.v.Close()
	ss.log.Info("rtmp play stopped")
}

// playSink writes tags as RTMP messages (pump goroutine). It reuses its messages: go-rtmp copies the
// payload into its chunk writer before Write returns.
type playSink struct {
	ss       *session
	ctx      context.Context
	streamID uint32
	err      error

	rd    bytes.Reader
	video message.VideoMessage
	audio message.AudioMessage
	data  message.DataMessage
	cm    gortmp.ChunkMessage
}

func (s *playSink) WriteTag(typ uint8, ts uint32, body []byte) error {
	cs := csVideo
	switch typ {
	case flv.TagVideo:
		s.rd.Reset(body)
		s.video.Payload = &s.rd
		s.cm.Message = &s.video
	case flv.TagAudio:
		cs = csAudio
		s.rd.Reset(body)
		s.audio.Payload = &s.rd
		s.cm.Message = &s.audio
	case flv.TagScript:
		name, rest, ok := amfString(body)
		if !ok {
			return nil // not a named data message: nothing a player needs
		}
		cs = csData
		s.rd.Reset(rest)
		s.data = message.DataMessage{Name: name, Encoding: message.EncodingTypeAMF0, Body: &s.rd}
		s.cm.Message = &s.data
	default:
		return nil
	}
	s.cm.StreamID = s.streamID
	if !s.ss.nc.takeTurn(s.ctx) {
		return s.ctx.Err()
	}
	err := s.ss.rc.Write(s.ctx, cs, ts, &s.cm)
	s.ss.nc.giveTurn()
	s.rd.Reset(nil)
	if err != nil {
		s.err = err
		return fmt.Errorf("rtmp play write: %w", err)
	}
	return nil
}

// amfString splits an AMF0 string (marker 0x02, 16-bit length) off the front of b.
func amfString(b []byte) (s string, rest []byte, ok bool) {
	if len(b) < 3 || b[0] != 0x02 {
		return "", nil, false
	}
	n := int(b[1])<<8 | int(b[2])
	if len(b) < 3+n {
		return "", nil, false
	}
	return string(b[3 : 3+n]), b[3+n:], true
}
