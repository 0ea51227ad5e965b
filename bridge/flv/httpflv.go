package flv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/estuary-media/estuary/bridge/frames"
	"github.com/estuary-media/estuary/sfu"
)

// ServeHTTP serves HTTP-FLV: GET /{app}/{stream}.flv, with the request's path values "app" and "file"
// ("stream.flv") set by the caller's router. The answer is chunked video/x-flv; 400 for a bad key, 404
// (with the reason) for a stream nobody publishes or one without a track FLV can carry. CORS headers are
// the router's (whatever is in w.Header() is sent).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	app, file := r.PathValue("app"), r.PathValue("file")
	name, ok := strings.CutSuffix(file, ".flv")
	key := app + "/" + name
	if !ok || !sfu.ValidKey(key) {
		http.Error(w, fmt.Sprintf("invalid stream key %q", key), http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	v, err := s.subscribe(r.Context(), key, nil)
	switch {
	case errors.Is(err, sfu.ErrStreamNotFound), errors.Is(err, frames.ErrNoTracks), errors.Is(err, frames.ErrClosed):
		http.Error(w, fmt.Sprintf("stream %s not found: nobody publishes it", key), http.StatusNotFound)
		return
	case errors.Is(err, ErrNoMedia):
		http.Error(w, fmt.Sprintf("stream %s has no track FLV can carry (H.264, H.265, AV1, AAC, Opus)", key), http.StatusNotFound)
		return
	case errors.Is(err, sfu.ErrInvalidKey):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer v.Close()
	v.SetRemoteAddr(r.RemoteAddr, "")
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "video/x-flv")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		return
	}
	log := s.log.With("stream", key, "remote_addr", r.RemoteAddr)
	err = serveViewer(w, r, v)
	switch {
	case errors.Is(err, ErrSlowViewer):
		log.Info("flv viewer disconnected: too slow", "dropped", v.Dropped())
	case err != nil:
		log.Debug("flv viewer ended", "err", err)
	}
}

// responseHead is the answer's status line and headers (for a hijacked connection).
func responseHead(h http.Header) []byte {
	b := []byte("HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n")
	for k, vs := range h {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Type", "Cache-Control", "Transfer-Encoding", "Connection", "Content-Length":
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "\r\n"...)
}

// tagWriter writes a viewer's tags: its own headers (rebased timestamps) around the shared bodies.
type tagWriter struct {
	started bool
	base    time.Duration
	last    [3]uint32 // per tag type (audio, video, script): sequence headers reuse it
	scratch []byte
	vec     [][]byte
}

func typeIndex(typ uint8) int {
	switch typ {
	case TagAudio:
		return 0
	case TagVideo:
		return 1
	}
	return 2
}

// ts is the viewer's timestamp of t: milliseconds since its first media tag. Tags from before that
// (audio that arrived after the GOP's keyframe but was sampled before it) are left out (ok false), so
// each type's timestamps start at 0 and never go back.
func (tw *tagWriter) ts(t *Tag) (uint32, bool) {
	i := typeIndex(t.Type)
	if t.Seq || t.Type == TagScript {
		return tw.last[i], true
	}
	if !tw.started {
		tw.started, tw.base = true, t.DTS
	}
	d := t.DTS - tw.base
	if d < 0 {
		return 0, false
	}
	ts := uint32(d / time.Millisecond)
	if ts < tw.last[i] {
		ts = tw.last[i]
	}
	tw.last[i] = ts
	return ts, true
}

// maxBatch is the most tags one write (one HTTP chunk, one writev) carries: a larger backlog (the kept
// GOP at the start) goes in several, so the iovec and header scratch stay small.
const maxBatch = 16

// build lays out tags as one HTTP chunk (chunked true) or plain bytes: it returns the vector to write
// (empty when every tag was left out). It does not allocate once its scratch has grown (to maxBatch
// tags at most when callers split their backlog).
func (tw *tagWriter) build(tags []*Tag, chunked bool) [][]byte {
	n := len(tags)
	need := 16 + n*(TagHeaderSize+PrevTagSizeLen) + 2
	if cap(tw.scratch) < need {
		tw.scratch = make([]byte, need)
	}
	sc := tw.scratch[:need]
	vec := tw.vec[:0]
	// Headers first (they decide which tags go), after room for the chunk size line.
	const lineRoom = 16
	off := lineRoom
	start := off // the pending contiguous region of sc (headers and sizes between bodies)
	total := 0
	for _, t := range tags {
		ts, ok := tw.ts(t)
		if !ok {
			continue
		}
		PutTagHeader(sc[off:], t.Type, len(t.Body), ts)
		off += TagHeaderSize
		vec = append(vec, sc[start:off], t.Body)
		size := uint32(TagHeaderSize + len(t.Body))
		sc[off], sc[off+1], sc[off+2], sc[off+3] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
		start = off
		off += PrevTagSizeLen
		total += int(size) + PrevTagSizeLen
	}
	if total == 0 {
		tw.vec = vec[:0]
		return tw.vec
	}
	if chunked {
		sc[off], sc[off+1] = '\r', '\n'
		off += 2
		var line [lineRoom]byte
		l := strconv.AppendInt(line[:0], int64(total), 16)
		l = append(l, '\r', '\n')
		// The size line goes right before the first header, in the room left for it.
		copy(sc[lineRoom-len(l):], l)
		vec[0] = sc[lineRoom-len(l) : lineRoom+TagHeaderSize]
	}
	vec = append(vec, sc[start:off])
	tw.vec = vec
	return vec
}

// serveViewer writes v's stream to the client until either ends. The request's goroutine is the
// viewer's only one: nothing reads the hijacked connection (a client has nothing more to say); a client
// that leaves fails the next write, or, while the stream is idle, the stream's probe (peerGone) ends
// the viewer.
func serveViewer(w http.ResponseWriter, r *http.Request, v *Viewer) error {
	meta := v.Meta()
	head := Header(meta.HasVideo, meta.HasAudio)
	script := &Tag{Type: TagScript, Body: meta.Body()}
	rc := http.NewResponseController(w)
	conn, _, err := rc.Hijack()
	if err != nil {
		return serveBuffered(w, rc, r.Context(), v, head, script)
	}
	defer conn.Close()
	v.setProbe(func() bool { return peerGone(conn) })
	return writeLoop(r.Context(), v, conn, head, script, w.Header())
}

func writeLoop(ctx context.Context, v *Viewer, conn net.Conn, head []byte, script *Tag, h http.Header) error {
	var tw tagWriter
	maxLag := v.MaxLag()
	// The write deadline moves at most every maxLag/8 (a timer update per write is not free): a write
	// blocked for 7/8 of MaxLag or more ends the viewer as slow.
	var deadlineSet time.Time
	extend := func(now time.Time) {
		if now.Sub(deadlineSet) >= maxLag/8 {
			deadlineSet = now
			_ = conn.SetWriteDeadline(now.Add(maxLag))
		}
	}
	first := responseHead(h)
	first = strconv.AppendInt(first, int64(len(head)), 16)
	first = append(first, "\r\n"...)
	first = append(first, head...)
	first = append(first, "\r\n"...)
	vec := tw.build([]*Tag{script}, true)
	extend(time.Now())
	bufs := net.Buffers(append([][]byte{first}, vec...))
	if _, err := bufs.WriteTo(conn); err != nil {
		return slowOr(v, err)
	}
	var tags []*Tag
	var out net.Buffers
	for {
		var err error
		tags, err = v.Next(ctx, tags)
		if err != nil {
			if errors.Is(err, frames.ErrClosed) || errors.Is(err, context.Canceled) {
				_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = conn.Write([]byte("0\r\n\r\n"))
			}
			return err
		}
		if v.Lagging() {
			v.end(ErrSlowViewer)
			return ErrSlowViewer
		}
		for rest := tags; len(rest) > 0; {
			batch := rest[:min(len(rest), maxBatch)]
			rest = rest[len(batch):]
			vec := tw.build(batch, true)
			if len(vec) == 0 {
				continue
			}
			extend(time.Now())
			out = vec // WriteTo consumes out, not tw's vector
			if _, err := out.WriteTo(conn); err != nil {
				return slowOr(v, err)
			}
		}
	}
}

// slowOr ends v as slow when err is a write timeout (the deadline is MaxLag), and returns the reason.
func slowOr(v *Viewer, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		v.end(ErrSlowViewer)
		return ErrSlowViewer
	}
	return err
}

// serveBuffered is the path for connections that cannot be hijacked (HTTP/2): the server's own framing.
func serveBuffered(w http.ResponseWriter, rc *http.ResponseController, ctx context.Context, v *Viewer, head []byte, script *Tag) error {
	w.Header().Set("Content-Type", "video/x-flv")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	var tw tagWriter
	bw := bufio.NewWriterSize(w, 64<<10)
	write := func(vec [][]byte) error {
		for _, b := range vec {
			if _, err := bw.Write(b); err != nil {
				return err
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	_ = rc.SetWriteDeadline(time.Now().Add(v.MaxLag()))
	if err := write(append([][]byte{head}, tw.build([]*Tag{script}, false)...)); err != nil {
		return err
	}
	var tags []*Tag
	for {
		var err error
		tags, err = v.Next(ctx, tags)
		if err != nil {
			return err
		}
		if v.Lagging() {
			v.end(ErrSlowViewer)
			return ErrSlowViewer
		}
		_ = rc.SetWriteDeadline(time.Now().Add(v.MaxLag()))
		for rest := tags; len(rest) > 0; {
			batch := rest[:min(len(rest), maxBatch)]
			rest = rest[len(batch):]
			if err := write(tw.build(batch, false)); err != nil {
				return err
			}
		}
	}
}
