package calls

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// outQueue is the number of messages queued to one client; a client that lets it fill is dropped.
	outQueue = 128
	// maxBadMessages closes a connection after this many bad messages.
	maxBadMessages = 20
	// closeWait is how long we wait for the client's close frame after sending ours.
	closeWait = time.Second
)

// conn is one websocket client.
type conn struct {
	s    *Server
	ws   *websocket.Conn
	id   string
	room string
	name string // set by the loop before join makes the conn visible to others; then read-only
	log  *slog.Logger

	out      chan []byte // frames for the writer; never closed
	done     chan struct{}
	stopOnce sync.Once
	// closeCode and closeText are the close frame's; written once before done closes.
	closeCode int
	closeText string
	// silent is set by the loop when the heartbeat timed out (no lingering for a dead client).
	silent bool
}

// inFrame is one message from the reader.
type inFrame struct {
	typ  int
	data []byte
}

func newConn(s *Server, ws *websocket.Conn, roomName string, r *http.Request) *conn {
	id := newID()
	return &conn{
		s: s, ws: ws, id: id, room: roomName,
		log:  s.log.With("client_id", id, "remote_addr", r.RemoteAddr, "room", roomName),
		out:  make(chan []byte, outQueue),
		done: make(chan struct{}),
	}
}

// stop asks the connection to end with this close code and reason (the first call wins).
func (c *conn) stop(code int, text string) {
	c.stopOnce.Do(func() {
		c.closeCode, c.closeText = code, text
		close(c.done)
	})
}

// send queues a frame without blocking; a client whose queue is full is too slow and is dropped.
func (c *conn) send(frame []byte) {
	select {
	case c.out <- frame:
	default:
		c.stop(websocket.ClosePolicyViolation, "too slow: send queue full")
	}
}

func (c *conn) sendError(code, text string) {
	c.send(Encode(Message{Type: TypeError, Code: code, Text: text}))
}

// run is the connection's loop; it returns when the connection is over and its goroutines are done.
func (c *conn) run(r *http.Request) {
	hb := c.s.cfg.HeartbeatTimeout
	c.ws.SetReadLimit(int64(c.s.cfg.MaxMessage))
	_ = c.ws.SetReadDeadline(time.Now().Add(hb))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(hb)) })

	in := make(chan inFrame)
	readErr := make(chan error, 1)
	readerDone := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		c.reader(in, readErr)
	}()
	go func() {
		defer close(writerDone)
		c.writer()
	}()
	c.log.Debug("connected")

	c.loop(r, in, readErr)

	c.s.leave(c)
	c.stop(websocket.CloseNormalClosure, "")
	<-writerDone // it flushed the queue and wrote the close frame
	select {     // let the client answer the close frame (the reader then ends), briefly
	case <-readerDone:
		if !c.silent {
			c.linger()
		}
	case <-time.After(closeWait):
	}
	_ = c.ws.Close()
	<-readerDone
	c.log.Debug("disconnected", "reason", c.closeText)
}

// linger half-closes the socket and discards what the client still sends (the rest of a message
// over calls.max_message, say) until it closes too or closeWait passes, so the client reads our
// close frame instead of a reset. Only after the reader ended.
func (c *conn) linger() {
	nc := c.ws.NetConn()
	if hc, ok := nc.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
	_ = nc.SetReadDeadline(time.Now().Add(closeWait))
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, 1<<20))
}

// reader is the only goroutine reading the socket.
func (c *conn) reader(in chan<- inFrame, readErr chan<- error) {
	hb := c.s.cfg.HeartbeatTimeout
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			readErr <- err
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(hb))
		select {
		case in <- inFrame{typ, data}:
		case <-c.done:
			return
		}
	}
}

// writer is the only goroutine writing the socket: queued frames, pings, then the close frame.
func (c *conn) writer() {
	wt := c.s.cfg.WriteTimeout
	ping := time.NewTicker(c.s.cfg.HeartbeatTimeout / 3)
	defer ping.Stop()
	write := func(frame []byte) error {
		if err := c.ws.SetWriteDeadline(time.Now().Add(wt)); err != nil {
			return err
		}
		return c.ws.WriteMessage(websocket.TextMessage, frame)
	}
	for {
		select {
		case frame := <-c.out:
			if err := write(frame); err != nil {
				c.stop(websocket.CloseAbnormalClosure, "write failed")
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(wt)); err != nil {
				c.stop(websocket.CloseAbnormalClosure, "ping failed")
				return
			}
		case <-c.done:
			// Flush what is queued (an error message before a close, say), then the close frame.
			for {
				select {
				case frame := <-c.out:
					if err := write(frame); err != nil {
						return
					}
					continue
				default:
				}
				break
			}
			if c.closeCode != websocket.CloseAbnormalClosure {
				_ = c.ws.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(c.closeCode, c.closeText), time.Now().Add(wt))
			}
			return
		}
	}
}

// loop owns the connection's state until the client leaves, errs, or stop is called.
func (c *conn) loop(r *http.Request, in <-chan inFrame, readErr <-chan error) {
	cfg := c.s.cfg
	tokens, last := float64(cfg.RateBurst), time.Now()
	limited, bad := 0, 0
	joined := false
	for {
		select {
		case <-c.done:
			return
		case err := <-readErr:
			switch {
			case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived):
				c.stop(websocket.CloseNormalClosure, "")
			case errors.Is(err, websocket.ErrReadLimit):
				c.stop(websocket.CloseMessageTooBig, "message larger than calls.max_message")
			default:
				if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
					c.log.Info("heartbeat timeout: dropped", "timeout", cfg.HeartbeatTimeout)
					c.silent = true
					c.stop(websocket.CloseGoingAway, "heartbeat timeout")
				} else {
					c.stop(websocket.CloseAbnormalClosure, "read failed")
				}
			}
			return
		case f := <-in:
			now := time.Now()
			tokens = min(float64(cfg.RateBurst), tokens+now.Sub(last).Seconds()*cfg.RateLimit)
			last = now
			if tokens < 1 {
				limited++
				if limited > cfg.RateBurst {
					c.stop(websocket.ClosePolicyViolation, "rate limit exceeded")
					return
				}
				if limited == 1 || limited%10 == 0 {
					c.sendError(CodeRateLimited, "too many messages: slow down (message dropped)")
				}
				continue
			}
			tokens--
			limited = 0
			m, err := c.decode(f)
			if err == nil {
				err = c.handle(r, m, &joined)
			}
			if err == nil {
				continue
			}
			if errors.Is(err, ErrRoomFull) {
				c.sendError(CodeRoomFull, err.Error())
				c.stop(websocket.ClosePolicyViolation, "room full")
				return
			}
			bad++
			c.log.Debug("bad message", "err", err)
			c.sendError(CodeBadMessage, err.Error())
			if bad >= maxBadMessages {
				c.stop(websocket.ClosePolicyViolation, "too many bad messages")
				return
			}
		}
	}
}

func (c *conn) decode(f inFrame) (Message, error) {
	if f.typ != websocket.TextMessage {
		return Message{}, fmt.Errorf("%w: messages are JSON text frames", ErrBadMessage)
	}
	return DecodeClient(f.data, c.s.cfg.MaxMessage)
}

// handle acts on one valid client message.
func (c *conn) handle(r *http.Request, m Message, joined *bool) error {
	if m.Type == TypeJoin {
		if *joined {
			return fmt.Errorf("%w: already joined", ErrBadMessage)
		}
		c.name = m.Name
		if c.name == "" {
			c.name = "guest"
		}
		var ice []ICEServer
		if c.s.ice != nil {
			ice = c.s.ice(r, c.id)
		}
		if err := c.s.join(c, ice); err != nil {
			return err
		}
		*joined = true
		c.log.Info("joined", "name", c.name)
		return nil
	}
	if !*joined {
		return fmt.Errorf(`%w: send {"type":"join"} first`, ErrBadMessage)
	}
	m.From = c.id
	if !c.s.relay(c, Encode(m)) {
		c.log.Debug("nobody to relay to", "type", m.Type)
	}
	return nil
}
