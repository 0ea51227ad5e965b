package flv

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/bridge/frames"
)

// testStream is a stream without a source: tests publish tags into it by hand.
func testStream(cfg Config) *stream {
	srv := &Server{cfg: cfg.withDefaults(), streams: map[string]*stream{}}
	return &stream{srv: srv, key: "live/t", vcodec: VideoAVC, acodec: AudioAAC}
}

// addViewer lists a viewer of st that starts at the next keyframe (as Subscribe does without a GOP).
func addViewer(st *stream) *Viewer {
	v := &Viewer{st: st, max: st.srv.cfg.ViewerQueue, notify: make(chan struct{}, 1), endCh: make(chan struct{}), waitKey: true}
	st.mu.Lock()
	st.viewers = append(st.viewers, v)
	st.mu.Unlock()
	return v
}

// The per-tag path of one viewer (queue with a wake-up, Next, the writer's headers and iovec) does not
// allocate once its buffers have their working size.
func TestPerTagPathAllocs(t *testing.T) {
	st := testStream(Config{WriteInterval: -1})
	v := addViewer(st)
	seq := &Tag{Type: TagVideo, Seq: true, Body: []byte{0x17, 0, 0, 0, 0, 1, 2, 3}}
	st.publish(seq)
	st.publish(&Tag{Type: TagVideo, Key: true, Body: make([]byte, 5000)})
	var tw tagWriter
	var tags []*Tag
	ctx := context.Background()
	dts := time.Duration(0)
	inter := &Tag{Type: TagVideo, Body: make([]byte, 3000)}
	audio := &Tag{Type: TagAudio, Body: make([]byte, 300)}
	step := func() {
		dts += 33 * time.Millisecond
		inter.DTS, audio.DTS = dts, dts
		st.mu.Lock()
		v.push(audio, st, false)
		v.push(audio, st, false)
		v.push(inter, st, true)
		st.mu.Unlock()
		var err error
		tags, err = v.Next(ctx, tags)
		if err != nil || len(tags) == 0 {
			panic("no tags")
		}
		if len(tw.build(tags, true)) == 0 {
			panic("nothing to write")
		}
	}
	for range 10 {
		step()
	}
	require.Zero(t, testing.AllocsPerRun(500, step))
}

// With Config.WriteInterval, tags wait for the stream's flush; a viewer wakes once for all of them.
func TestWriteMerging(t *testing.T) {
	st := testStream(Config{WriteInterval: time.Hour})
	v := addViewer(st)
	st.publish(&Tag{Type: TagVideo, Key: true, Body: []byte{0x17, 1, 0, 0, 0}})
	require.Len(t, v.notify, 1, "a viewer's first tags go at once")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	tags, err := v.Next(ctx, nil)
	require.NoError(t, err)
	require.Len(t, tags, 1)
	for i := range 10 {
		st.publish(&Tag{Type: TagVideo, DTS: time.Duration(i+1) * 33 * time.Millisecond, Body: []byte{0x27, 1, 0, 0, 0}})
	}
	select {
	case <-v.notify:
		t.Fatal("woken before the flush")
	default:
	}
	require.True(t, st.pending)
	st.flushAll()
	tags, err = v.Next(ctx, tags)
	require.NoError(t, err)
	require.Len(t, tags, 10, "one wake-up, every tag")

	// Without merging, each video frame wakes the viewer; audio waits for the next frame.
	st = testStream(Config{WriteInterval: -1, AudioFlush: time.Hour})
	v = addViewer(st)
	st.lastFlush = time.Now()
	st.publish(&Tag{Type: TagVideo, Key: true, Body: []byte{0x17, 1, 0, 0, 0}})
	require.Len(t, v.notify, 1)
	tags, err = v.Next(ctx, tags)
	require.NoError(t, err)
	require.Len(t, tags, 1)
	st.publish(&Tag{Type: TagAudio, DTS: time.Millisecond, Body: []byte{0xaf, 1, 2}})
	require.Empty(t, v.notify, "audio waits for video")
	st.publish(&Tag{Type: TagVideo, DTS: 33 * time.Millisecond, Body: []byte{0x27, 1, 0, 0, 0}})
	tags, err = v.Next(ctx, tags)
	require.NoError(t, err)
	require.Len(t, tags, 2)
}

// drainFLV reads an HTTP-FLV answer from c and counts its media tags until EOF.
func drainFLV(c net.Conn, tags *int, mu *sync.Mutex) error {
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	r := bufio.NewReader(httputil.NewChunkedReader(br))
	if _, err := io.ReadFull(r, make([]byte, 13)); err != nil {
		return err
	}
	var h [11]byte
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return err
		}
		size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		if _, err := r.Discard(size + 4); err != nil {
			return err
		}
		if h[0] != TagScript {
			mu.Lock()
			*tags++
			mu.Unlock()
		}
	}
}

// A reader that does not read is dropped after MaxLag (its write blocks), alone: the other reader gets
// every tag and publishing never waits for either.
func TestSlowReaderDropsAlone(t *testing.T) {
	st := testStream(Config{WriteInterval: -1, MaxLag: 300 * time.Millisecond})
	slow, fast := addViewer(st), addViewer(st)
	slowSrv, slowCli := net.Pipe() // nobody reads slowCli: the first write blocks
	fastSrv, fastCli := net.Pipe()
	defer slowCli.Close()
	defer fastCli.Close()
	head := Header(true, true)
	script := &Tag{Type: TagScript, Body: MetaData{HasVideo: true}.Body()}
	errs := make(chan error, 2)
	for _, x := range []struct {
		v *Viewer
		c net.Conn
	}{{slow, slowSrv}, {fast, fastSrv}} {
		go func() {
			defer x.c.Close()
			errs <- writeLoop(context.Background(), x.v, x.c, head, script, http.Header{})
		}()
	}
	var mu sync.Mutex
	var got int
	drained := make(chan error, 1)
	go func() { drained <- drainFLV(fastCli, &got, &mu) }()

	const n = 300
	start := time.Now()
	var slowest time.Duration
	for i := range n {
		body := make([]byte, 2000)
		binary.BigEndian.PutUint32(body, uint32(i))
		t0 := time.Now()
		st.publish(&Tag{Type: TagVideo, Key: i%30 == 0, DTS: time.Duration(i) * 33 * time.Millisecond, Body: body})
		slowest = max(slowest, time.Since(t0))
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("published %d tags in %v, slowest publish %v", n, time.Since(start), slowest)
	require.Less(t, slowest, 100*time.Millisecond, "publishing never waits for a reader")

	select {
	case err := <-errs:
		require.ErrorIs(t, err, ErrSlowViewer, "the reader that does not read ends first, as slow")
	case <-time.After(3 * time.Second):
		t.Fatal("the slow reader was not dropped")
	}
	require.ErrorIs(t, slow.Err(), ErrSlowViewer)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return got == n }, 3*time.Second, 10*time.Millisecond,
		"the other reader gets every tag")
	require.Zero(t, fast.Dropped())
	fast.end(nil) // the stream ends: the answer ends with the last chunk
	require.ErrorIs(t, <-errs, frames.ErrClosed)
	require.ErrorIs(t, <-drained, io.EOF)
}

// An idle viewer whose client left is ended by the stream's probe (no goroutine reads the connection).
func TestPeerGone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cli, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	srv, err := ln.Accept()
	require.NoError(t, err)
	defer srv.Close()
	require.False(t, peerGone(srv), "connected, nothing sent")
	_, err = cli.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	require.False(t, peerGone(srv), "data waiting is not gone")

	st := testStream(Config{})
	v := addViewer(st)
	v.setProbe(func() bool { return peerGone(srv) })
	st.probe()
	require.NoError(t, v.Err())
	select {
	case <-v.Done():
		t.Fatal("ended while the client is there")
	default:
	}
	require.NoError(t, cli.Close())
	require.Eventually(t, func() bool { st.probe(); return errors.Is(v.Err(), ErrPeerGone) }, 2*time.Second, 10*time.Millisecond)
}
