package rtmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gortmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"

	"github.com/estuary-media/estuary/sfu"
)

// session is one client connection: go-rtmp's Handler, and the sfu.Publisher of its stream.
type session struct {
	gortmp.DefaultHandler

	srv     *Server
	nc      *conn
	log     *slog.Logger
	id      string
	started time.Time

	rc  *gortmp.Conn // from OnServe, to write our own onStatus
	app string

	tcURL  string            // connect's tcUrl (may carry ?token=)
	authed []sfu.AuthRequest // authorized publish/play, notified when they end

	ing  *ingest // set by publish; used only from the connection goroutine
	play *player // set by play; used only from the connection goroutine

	buf bytes.Buffer // reused media payload

	stopWatch chan struct{}
	watchWG   sync.WaitGroup
	closeOnce sync.Once
	release   atomic.Pointer[func()] // Deps.Admit's release, until the connection closes
}

var _ sfu.Publisher = (*session)(nil)

func newSession(s *Server, nc *conn) *session {
	id := sfu.NewClientID()
	addr := nc.RemoteAddr().String()
	return &session{
		srv:     s,
		nc:      nc,
		id:      id,
		started: time.Now(),
		log:     s.log.With("client_id", id, "remote_addr", addr),
	}
}

// Info implements sfu.Client.
func (ss *session) Info() sfu.ClientInfo {
	return sfu.ClientInfo{ID: ss.id, Protocol: "rtmp", RemoteAddr: ss.nc.RemoteAddr().String(), Started: ss.started}
}

// Close implements sfu.Client: it ends the connection (kick, takeover, shutdown).
func (ss *session) Close() error {
	ss.closeConn()
	return nil
}

func (ss *session) closeConn() { _ = ss.nc.Conn.Close() }

// RequestKeyframe implements sfu.Publisher: an RTMP source cannot be asked (the GOP cache answers).
func (ss *session) RequestKeyframe(string) {}

// OnServe keeps the connection so refusals can carry our own onStatus text.
func (ss *session) OnServe(c *gortmp.Conn) { ss.rc = c }

// OnConnect records the app (without any ?query) and raises our chunk size to Config.ChunkSize, so
// every reply (our onStatus texts included) goes out as one chunk, in order.
func (ss *session) OnConnect(_ uint32, cmd *message.NetConnectionConnect) error {
	if err := ss.setChunkSize(uint32(ss.srv.cfg.ChunkSize)); err != nil {
		return err
	}
	ss.app = stripQuery(cmd.Command.App)
	ss.tcURL = cmd.Command.TCURL
	if ss.app == "" {
		ss.app = appFromTCURL(cmd.Command.TCURL)
	}
	ss.log.Debug("rtmp connect", "app", ss.app, "tc_url", redactQuery(cmd.Command.TCURL), "flash_ver", cmd.Command.FlashVer)
	return ss.admit()
}

// setChunkSize switches our outgoing chunk size. It runs before the first reply of the connection, when
// go-rtmp's writer is idle; the 4-byte SetChunkSize message is one chunk whatever the size.
func (ss *session) setChunkSize(size uint32) error {
	if ss.rc == nil || size <= 128 {
		return nil
	}
	if err := ss.rc.GetChunkStreamer().SelfState().SetChunkSize(size); err != nil {
		return fmt.Errorf("rtmp chunk size: %w", err)
	}
	ctx, cancel := context.WithTimeout(ss.srv.ctx, 5*time.Second)
	defer cancel()
	return ss.rc.Write(ctx, 2, 0, &gortmp.ChunkMessage{StreamID: 0, Message: &message.SetChunkSize{ChunkSize: size}})
}

// stripQuery drops "?..." from an app or stream name.
func stripQuery(s string) string {
	s, _, _ = strings.Cut(s, "?")
	return strings.Trim(s, "/")
}

func redactQuery(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i] + "?..."
	}
	return s
}

// appFromTCURL takes the app from rtmp://host[:port]/app[?query].
func appFromTCURL(u string) string {
	u = stripQuery(u)
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexByte(u, '/'); i >= 0 {
		return strings.Trim(u[i+1:], "/")
	}
	return ""
}

// streamKey builds "{app}/{stream}" from the connect app and the publish name.
func streamKey(app, name string) string {
	return stripQuery(app) + "/" + stripQuery(name)
}

// OnPublish validates the key and refuses a live one with our own onStatus; the publication itself
// starts when the sequence headers arrive (ingest.go).
func (ss *session) OnPublish(sctx *gortmp.StreamContext, ts uint32, cmd *message.NetStreamPublish) error {
	if ss.ing != nil {
		return ss.refuse(sctx.StreamID, ts, "this connection is already publishing", fmt.Errorf("%w: second publish", ErrBadKey))
	}
	key := streamKey(ss.app, cmd.PublishingName)
	if !sfu.ValidKey(key) {
		return ss.refuse(sctx.StreamID, ts, fmt.Sprintf("invalid stream key %q: want {app}/{stream} of [A-Za-z0-9_.-]", key), fmt.Errorf("%w: %q", ErrBadKey, key))
	}
	if !ss.srv.cfg.Takeover {
		if st := ss.srv.deps.Hub.Stream(key); st != nil && st.Publisher() != nil {
			return ss.refuse(sctx.StreamID, ts, "stream "+key+" is already being published", fmt.Errorf("%w: %s", sfu.ErrPublisherExists, key))
		}
	}
	if reason, err := ss.authorize(sfu.ActionPublish, key, cmd.PublishingName); err != nil {
		return ss.refuse(sctx.StreamID, ts, reason, err)
	}
	ss.log = ss.log.With("stream", key)
	ss.ing = newIngest(ss, key, sctx.StreamID)
	ss.log.Info("rtmp publish", "type", cmd.PublishingType)
	ss.startWatchdog()
	return nil
}

// refuse writes NetStream.Publish.BadName with our reason (go-rtmp then adds its fixed "Publish failed."
// and closes the connection because err is returned).
func (ss *session) refuse(streamID uint32, ts uint32, reason string, err error) error {
	ss.log.Warn("rtmp publish refused", "reason", reason)
	if werr := ss.writeStatus(streamID, ts, message.NetStreamOnStatusLevelError, message.NetStreamOnStatusCodePublishBadName, reason); werr != nil {
		ss.log.Debug("rtmp onStatus write failed", "err", werr)
	}
	return err
}

// writeStatus sends an onStatus command on the given message stream (connection goroutine).
func (ss *session) writeStatus(streamID, ts uint32, level message.NetStreamOnStatusLevel, code message.NetStreamOnStatusCode, desc string) error {
	ctx, cancel := context.WithTimeout(ss.srv.ctx, 5*time.Second)
	defer cancel()
	return ss.writeStatusCtx(ctx, streamID, ts, level, code, desc)
}

// writeStatusCtx is writeStatus bounded by ctx; the caller holds the connection's write turn.
func (ss *session) writeStatusCtx(ctx context.Context, streamID, ts uint32, level message.NetStreamOnStatusLevel, code message.NetStreamOnStatusCode, desc string) error {
	if ss.rc == nil {
		return errors.New("rtmp: no connection")
	}
	var body bytes.Buffer
	enc := message.NewAMFEncoder(&body, message.EncodingTypeAMF0)
	if err := message.EncodeBodyAnyValues(enc, &message.NetStreamOnStatus{InfoObject: message.NetStreamOnStatusInfoObject{
		Level: level, Code: code, Description: desc,
	}}); err != nil {
		return err
	}
	return ss.rc.Write(ctx, 5, ts, &gortmp.ChunkMessage{StreamID: streamID, Message: &message.CommandMessage{
		CommandName: "onStatus", TransactionID: 0, Encoding: message.EncodingTypeAMF0, Body: &body,
	}})
}

// OnFCUnpublish and OnDeleteStream end the publication (the connection may stay open).
func (ss *session) OnFCUnpublish(uint32, *message.NetStreamFCUnpublish) error { return nil }

func (ss *session) OnDeleteStream(_ uint32, cmd *message.NetStreamDeleteStream) error {
	if ss.ing != nil && ss.ing.streamID == cmd.StreamID {
		ss.ing.close("deleteStream")
	}
	ss.stopPlay()
	return nil
}

// OnSetDataFrame reads onMetaData for which kinds of media to wait for.
func (ss *session) OnSetDataFrame(ts uint32, data *message.NetStreamSetDataFrame) error {
	if ss.ing == nil {
		return nil
	}
	ss.ing.metadata(data.Payload)
	return nil
}

// OnVideo and OnAudio hand each tag body to the ingest; an error closes the connection.
func (ss *session) OnVideo(ts uint32, payload io.Reader) error {
	if ss.ing == nil {
		return ErrNotPublishing
	}
	ss.buf.Reset()
	if _, err := ss.buf.ReadFrom(payload); err != nil {
		return err
	}
	if err := ss.ing.video(ts, ss.buf.Bytes()); err != nil {
		ss.log.Warn("rtmp closing publisher", "err", err)
		return err
	}
	return nil
}

func (ss *session) OnAudio(ts uint32, payload io.Reader) error {
	if ss.ing == nil {
		return ErrNotPublishing
	}
	ss.buf.Reset()
	if _, err := ss.buf.ReadFrom(payload); err != nil {
		return err
	}
	if err := ss.ing.audio(ts, ss.buf.Bytes()); err != nil {
		ss.log.Warn("rtmp closing publisher", "err", err)
		return err
	}
	return nil
}

// OnClose ends the publication and stops the watchdog.
func (ss *session) OnClose() {
	ss.closeOnce.Do(func() {
		if ss.stopWatch != nil {
			close(ss.stopWatch)
			ss.watchWG.Wait()
		}
		if ss.ing != nil {
			ss.ing.close("disconnect")
		}
		ss.stopPlay()
		ss.authNotify()
		if err := ss.nc.guardErr; err != nil {
			ss.log.Warn("rtmp connection closed: bad input", "err", err)
		} else {
			ss.log.Debug("rtmp connection closed")
		}
	})
}

// startWatchdog closes the connection after NoMediaTimeout without media.
func (ss *session) startWatchdog() {
	ss.stopWatch = make(chan struct{})
	ing := ss.ing
	timeout := ss.srv.cfg.NoMediaTimeout
	ss.watchWG.Add(1)
	go func() {
		defer ss.watchWG.Done()
		tick := time.NewTicker(min(timeout/4, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-ss.stopWatch:
				return
			case <-tick.C:
				if idle := time.Since(time.Unix(0, ing.lastMedia.Load())); idle > timeout {
					ss.log.Warn("rtmp publisher sent no media, closing", "idle", idle.Round(time.Millisecond), "err", ErrNoMedia)
					ss.closeConn()
					return
				}
			}
		}
	}()
}
