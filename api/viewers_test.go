package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

// fakeViewers is a ViewerSource of FLV/RTMP viewers; a kicked viewer leaves the list.
type fakeViewers struct {
	mu     sync.Mutex
	list   []Viewer
	kicked map[string]*atomic.Int32
}

func (f *fakeViewers) add(id, proto, addr, key string, bytes uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.kicked == nil {
		f.kicked = map[string]*atomic.Int32{}
	}
	n := &atomic.Int32{}
	f.kicked[id] = n
	f.list = append(f.list, Viewer{
		Info:   sfu.ClientInfo{ID: id, Protocol: proto, RemoteAddr: addr, Started: time.Now().Add(-2 * time.Second)},
		Stream: key, Bytes: bytes,
		Kick: func() {
			n.Add(1)
			f.mu.Lock()
			defer f.mu.Unlock()
			for i, v := range f.list {
				if v.Info.ID == id {
					f.list = append(f.list[:i:i], f.list[i+1:]...)
					break
				}
			}
		},
	})
}

func (f *fakeViewers) Viewers() []Viewer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Viewer(nil), f.list...)
}

func TestExternalViewers(t *testing.T) {
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{})
	defer hub.Close()
	vs := &fakeViewers{}
	a := New(Config{SampleInterval: time.Hour, HiddenProtocols: []string{"mux"}}, Deps{Hub: hub, Viewers: vs.Viewers})
	defer a.Close()
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	pub := newFake("rtmp", "127.0.0.1:40000")
	_, err := hub.Publish(context.Background(), "live/test", pub, []sfu.TrackInfo{
		{ID: "video", Kind: sfu.KindVideo, Codec: sfu.Codec{MimeType: "video/H264", ClockRate: 90000}},
	})
	require.NoError(t, err)
	// The shared muxer source is a hub subscriber, hidden from the API.
	src := newFake("mux", "")
	unsub, err := hub.Subscribe(context.Background(), "live/test", src)
	require.NoError(t, err)
	defer unsub()
	vs.add("flv-1", "flv", "127.0.0.5:6000", "live/test", 1000)
	vs.add("flv-2", "flv", "127.0.0.6:6000", "live/test", 2000)
	vs.add("rtmp-1", "rtmp", "127.0.0.7:6000", "live/test", 500)
	vs.add("other", "flv", "127.0.0.8:6000", "live/other", 7)

	tests := []struct {
		name  string
		id    string
		proto string
		addr  string
		bytes uint64
	}{
		{name: "flv", id: "flv-1", proto: "flv", addr: "127.0.0.5:6000", bytes: 1000},
		{name: "rtmp", id: "rtmp-1", proto: "rtmp", addr: "127.0.0.7:6000", bytes: 500},
	}
	var list clientsReply
	getJSON(t, srv.URL+"/api/v1/clients", "", 200, &list)
	byID := map[string]clientJSON{}
	for _, c := range list.Clients {
		require.NotEqual(t, "mux", c.Protocol, "the muxer source is not listed")
		byID[c.ID] = c
	}
	require.Len(t, list.Clients, 5, "publisher + 4 viewers")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := byID[tc.id]
			require.True(t, ok)
			require.Equal(t, tc.proto, c.Protocol)
			require.Equal(t, tc.addr, c.RemoteAddr)
			require.Equal(t, "127.0.0", c.IP[:7])
			require.Equal(t, "live/test", c.Stream)
			require.Equal(t, "subscriber", c.Type)
			require.Equal(t, tc.bytes, c.SendBytes)
			require.NotEmpty(t, c.Start)
			require.NotEmpty(t, c.StreamID)
			var one clientReply
			getJSON(t, srv.URL+"/api/v1/clients/"+tc.id, "", 200, &one)
			require.Equal(t, tc.id, one.Client.ID)
		})
	}

	var st streamReply
	getJSON(t, srv.URL+"/api/v1/streams/live/test", "", 200, &st)
	require.Equal(t, map[string]int{"flv": 2, "rtmp": 1}, st.Stream.Viewers)
	require.Equal(t, 4, st.Stream.Clients, "publisher + 3 viewers of live/test")
	require.Equal(t, uint64(3500), st.Stream.SendBytes)

	del := func(id string) int {
		req, err := http.NewRequest(http.MethodDelete, srv.URL+"/api/v1/clients/"+id, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 200, del("flv-1"))
	require.Equal(t, int32(1), vs.kicked["flv-1"].Load())
	for _, id := range []string{"flv-2", "rtmp-1", "other"} {
		require.Equal(t, int32(0), vs.kicked[id].Load(), "only the kicked viewer ends: %s", id)
	}
	require.Equal(t, int32(0), pub.closed.Load())
	require.Equal(t, int32(0), src.closed.Load())
	require.Equal(t, 404, del("flv-1"), "a kicked viewer is gone")
	getJSON(t, srv.URL+"/api/v1/streams/live/test", "", 200, &st)
	require.Equal(t, map[string]int{"flv": 1, "rtmp": 1}, st.Stream.Viewers)
}
