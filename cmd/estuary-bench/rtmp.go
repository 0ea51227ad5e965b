package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	gortmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/handshake"
	"github.com/yutopp/go-rtmp/message"

	"github.com/estuary-media/estuary/cmd/estuary-bench/internal/stats"
)

// rtmpClient makes RTMP players. go-rtmp's ClientConn cannot play (a stream it creates has no
// message handler, so the first media message on it kills the connection), so each player uses
// go-rtmp's pieces directly: its handshake, its ChunkStreamer (chunking, message codecs) and its
// AMF0 codec, with the play state machine and window acknowledgements done here.
type rtmpClient struct {
	addr  string // host:port
	app   string
	name  string // stream name, query included
	tcURL string
}

// newRTMP parses rtmp://host[:port]/app/stream[?query].
func newRTMP(target string) (playFunc, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "rtmp" || u.Host == "" {
		return nil, fmt.Errorf("%w: %q is not rtmp://host/app/stream", ErrUsage, target)
	}
	app, name, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if !ok || app == "" || name == "" {
		return nil, fmt.Errorf("%w: %q has no /app/stream", ErrUsage, target)
	}
	if u.RawQuery != "" {
		name += "?" + u.RawQuery
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "1935")
	}
	c := &rtmpClient{addr: addr, app: app, name: name, tcURL: "rtmp://" + u.Host + "/" + app}
	return c.play, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Chunk stream IDs and transactions the player uses.
const (
	rtmpCSIDControl = 2
	rtmpCSIDCommand = 3
	rtmpCSIDPlay    = 8
	txConnect       = 1
	txCreateStream  = 2
)

// rtmpSession is one player's connection state.
type rtmpSession struct {
	cs        *gortmp.ChunkStreamer
	in        *countingReader
	ackWindow int64 // from the server's WinAckSize; 0 = no acks
	acked     int64
	streamID  uint32
	playing   bool
}

func (c *rtmpClient) play(ctx context.Context, v *viewer) (err error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, v.k.joinTimeout)
	conn, err := d.DialContext(dctx, "tcp", c.addr)
	cancel()
	if err != nil {
		return fmt.Errorf("rtmp dial: %w", err)
	}
	defer conn.Close()
	stop, timedOut := v.watch(ctx, conn)
	defer stop()
	defer func() {
		// go-rtmp panics on a few inputs (AMF3 commands, an ack after 1 GB without a window); it
		// ends this player, not the run.
		if r := recover(); r != nil {
			err = fmt.Errorf("rtmp: go-rtmp panicked: %v", r)
		}
		if ctx.Err() != nil {
			err = nil
		} else if timedOut() {
			err = ErrNoMedia
		}
	}()
	in := &countingReader{r: conn}
	if err := handshake.HandshakeWithServer(in, conn, &handshake.Config{SkipHandshakeVerification: true}); err != nil {
		return fmt.Errorf("rtmp handshake: %w", err)
	}
	s := &rtmpSession{in: in, cs: gortmp.NewChunkStreamer(bufio.NewReaderSize(in, 64<<10), bufio.NewWriterSize(conn, 4096), nil)}
	defer s.cs.Close() //nolint:errcheck // teardown
	connect := map[string]any{
		"app": c.app, "type": "nonprivate", "flashVer": "LNX 9,0,124,2", "tcUrl": c.tcURL,
		"fpad": false, "capabilities": 15.0, "audioCodecs": 4071.0, "videoCodecs": 252.0, "videoFunction": 1.0,
	}
	if err := s.command(ctx, rtmpCSIDCommand, 0, "connect", txConnect, connect); err != nil {
		return err
	}
	var counted int64
	var frames stats.FrameGapTracker
	for {
		var cm gortmp.ChunkMessage
		_, ts, err := s.cs.Read(&cm)
		if err != nil {
			if !v.joined() {
				return fmt.Errorf("rtmp before the first media: %w", err)
			}
			return fmt.Errorf("%w: rtmp: %w", ErrDisconnected, err)
		}
		switch m := cm.Message.(type) {
		case *message.VideoMessage, *message.AudioMessage:
			var payload io.Reader
			video := false
			if vm, ok := m.(*message.VideoMessage); ok {
				payload, video = vm.Payload, true
			} else {
				payload = m.(*message.AudioMessage).Payload
			}
			var b [2]byte
			n, _ := io.ReadFull(payload, b[:])
			if n == 0 {
				continue // an empty message (some servers send one at play start)
			}
			if video && !isVideoConfig(b[:n]) {
				if (b[0]>>4)&7 == 1 {
					v.k.c.Keyframes.Add(1)
				}
				v.frameGap(&frames, ts)
			}
			total := in.n.Load()
			v.media(int(total - counted))
			counted = total
		case *message.SetChunkSize:
			if err := s.cs.PeerState().SetChunkSize(m.ChunkSize); err != nil {
				return fmt.Errorf("rtmp set chunk size: %w", err)
			}
		case *message.WinAckSize:
			s.ackWindow = int64(m.Size)
		case *message.SetPeerBandwidth:
			if err := s.write(ctx, rtmpCSIDControl, 0, &message.WinAckSize{Size: m.Size}); err != nil {
				return err
			}
		case *message.CommandMessage:
			if err := c.onCommand(ctx, s, m); err != nil {
				return err
			}
		}
		if s.ackWindow > 0 {
			if total := in.n.Load(); total-s.acked >= s.ackWindow/2 {
				s.acked = total
				if err := s.write(ctx, rtmpCSIDControl, 0, &message.Ack{SequenceNumber: uint32(total)}); err != nil {
					return err
				}
			}
		}
	}
}

// isVideoConfig reports an AVC/HEVC sequence header or an Enhanced FLV SequenceStart.
func isVideoConfig(b []byte) bool {
	if b[0]&0x80 != 0 {
		return b[0]&0x0f == 0
	}
	return len(b) > 1 && b[1] == 0
}

// onCommand follows connect -> createStream -> play and turns refusals into errors.
func (c *rtmpClient) onCommand(ctx context.Context, s *rtmpSession, m *message.CommandMessage) error {
	if m.Encoding != message.EncodingTypeAMF0 {
		return nil
	}
	args := decodeAMF(m.Body)
	switch m.CommandName {
	case "_error":
		return fmt.Errorf("%w: rtmp %s: _error %s", ErrRefused, txName(m.TransactionID), statusText(args))
	case "_result":
		switch m.TransactionID {
		case txConnect:
			if err := s.write(ctx, rtmpCSIDControl, 0, &message.WinAckSize{Size: 2500000}); err != nil {
				return err
			}
			return s.command(ctx, rtmpCSIDCommand, 0, "createStream", txCreateStream)
		case txCreateStream:
			if len(args) < 2 {
				return fmt.Errorf("%w: rtmp createStream result without a stream ID", ErrRefused)
			}
			id, ok := args[1].(float64)
			if !ok || id < 0 || id > 1<<24 {
				return fmt.Errorf("%w: rtmp createStream result %v", ErrRefused, args[1])
			}
			s.streamID = uint32(id)
			if err := s.write(ctx, rtmpCSIDControl, 0, &message.UserCtrl{
				Event: &message.UserCtrlEventSetBufferLength{StreamID: s.streamID, LengthMs: 1000}}); err != nil {
				return err
			}
			return s.command(ctx, rtmpCSIDPlay, s.streamID, "play", 0, c.name, -1000.0)
		}
	case "onStatus":
		if len(args) >= 2 {
			if info, ok := args[1].(map[string]any); ok && info["level"] == "error" {
				return fmt.Errorf("%w: rtmp play: %s", ErrRefused, statusText(args))
			}
		}
	}
	return nil
}

func txName(id int64) string {
	switch id {
	case txConnect:
		return "connect"
	case txCreateStream:
		return "createStream"
	}
	return fmt.Sprintf("transaction %d", id)
}

// statusText is an info object's code and description.
func statusText(args []any) string {
	for _, a := range args {
		if info, ok := a.(map[string]any); ok {
			code, _ := info["code"].(string)
			desc, _ := info["description"].(string)
			return strings.TrimSpace(code + ": " + desc)
		}
	}
	return fmt.Sprint(args)
}

// decodeAMF decodes every AMF0 value of a command body.
func decodeAMF(body io.Reader) []any {
	if body == nil {
		return nil
	}
	dec := message.NewAMFDecoder(body, message.EncodingTypeAMF0)
	var out []any
	for range 16 {
		var v any
		if err := dec.Decode(&v); err != nil {
			break
		}
		out = append(out, v)
	}
	return out
}

// command sends a command message: name, transaction ID, then a null command object and args.
func (s *rtmpSession) command(ctx context.Context, csid int, streamID uint32, name string, tx int64, args ...any) error {
	var buf bytes.Buffer
	enc := message.NewAMFEncoder(&buf, message.EncodingTypeAMF0)
	if name == "connect" {
		if err := enc.Encode(args[0]); err != nil {
			return fmt.Errorf("rtmp %s: %w", name, err)
		}
		args = args[1:]
	} else if err := enc.Encode(nil); err != nil {
		return fmt.Errorf("rtmp %s: %w", name, err)
	}
	for _, a := range args {
		if err := enc.Encode(a); err != nil {
			return fmt.Errorf("rtmp %s: %w", name, err)
		}
	}
	return s.write(ctx, csid, streamID, &message.CommandMessage{
		CommandName: name, TransactionID: tx, Encoding: message.EncodingTypeAMF0, Body: &buf})
}

// write sends one message (5 s bound).
func (s *rtmpSession) write(ctx context.Context, csid int, streamID uint32, m message.Message) error {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.cs.Write(wctx, csid, 0, &gortmp.ChunkMessage{StreamID: streamID, Message: m}); err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("rtmp write: %w", err)
	}
	return nil
}
