//go:build e2e

package test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
	"github.com/estuary-media/estuary/web"
)

// pagesServer serves the embedded pages plus canned WHIP/WHEP/API answers, so the pages' own
// behaviour (parsing, error messages, hooks) is tested in Chromium without a media server.
type pagesServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []string // "METHOD path content-type"
	bodies   []string
}

func startPagesServer(t *testing.T) *pagesServer {
	t.Helper()
	s := &pagesServer{}
	mux := http.NewServeMux()
	mux.Handle("/", web.Handler())
	record := func(r *http.Request) string {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		return string(b)
	}
	mux.HandleFunc("POST /whip/{app}/{stream}", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		if r.PathValue("stream") == "linked" {
			// A 201 with ICE servers in Link headers but an answer the browser cannot apply.
			w.Header().Set("Location", "/n/test/whip/abc123")
			w.Header().Add("Link", `<stun:127.0.0.1:3478>; rel="ice-server"`)
			w.Header().Add("Link", `<turn:127.0.0.1:3478?transport=udp>; rel="ice-server"; username="1700000000:test"; credential="c2VjcmV0"; credential-type="password"`)
			w.Header().Set("Content-Type", "application/sdp")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, "v=0\r\nthis is not an answer\r\n")
			return
		}
		http.Error(w, "stream "+r.PathValue("app")+"/"+r.PathValue("stream")+" already has a publisher", http.StatusConflict)
	})
	mux.HandleFunc("DELETE /n/test/whip/{id}", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("POST /whep/{app}/{stream}", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		http.Error(w, "stream not found", http.StatusNotFound)
	})
	mux.HandleFunc("POST /rtc/v1/play/", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"code":400,"message":"stream live/none is not published"}`)
	})
	mux.HandleFunc("GET /api/v1/streams", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"code":0,"server":"test","streams":[{"id":"s1","name":"cam1","app":"live","clients":3,`+
			`"video":{"codec":"H264","profile":"High","width":1280,"height":720},"audio":{"codec":"Opus","sample_rate":48000,"channel":2},`+
			`"kbps":{"recv_30s":2100,"send_30s":6300},"publish":{"active":true,"cid":"c1"}}]}`)
	})
	s.Server = httptest.NewServer(mux) // 127.0.0.1, free port
	t.Cleanup(s.Close)
	return s
}

func (s *pagesServer) seen() ([]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...), append([]string(nil), s.bodies...)
}

// TestBrowserPagesStatic drives the real pages in headless Chromium against canned server answers:
// the WHIP/WHEP/SRS client's parsers, the index's stream list, and the error messages a person sees
// when the camera works but the server refuses.
func TestBrowserPagesStatic(t *testing.T) {
	srv := startPagesServer(t)
	b := harness.NewBrowser(t, harness.BrowserOptions{})
	page := b.NewPage()

	t.Run("whip.js parsers", func(t *testing.T) {
		require.NoError(t, page.Open(srv.URL+"/publish.html"))
		cases := []struct {
			name, expr, want string
		}{
			{name: "link stun", expr: `m.parseLinkHeader('<stun:127.0.0.1:3478>; rel="ice-server"')`, want: `[{"urls":"stun:127.0.0.1:3478"}]`},
			{name: "link turn with credentials, two links", expr: `m.parseLinkHeader('<stun:a.example:3478>; rel="ice-server", <turn:b.example:3478?transport=udp>; rel="ice-server"; username="1700000000:u"; credential="p,w=="; credential-type="password"')`,
				want: `[{"urls":"stun:a.example:3478"},{"urls":"turn:b.example:3478?transport=udp","username":"1700000000:u","credential":"p,w=="}]`},
			{name: "link other rel ignored", expr: `m.parseLinkHeader('</whip/x>; rel="alternate", <https://x>; rel="ice-server"')`, want: `[]`},
			{name: "link empty", expr: `m.parseLinkHeader(null)`, want: `[]`},
			{name: "link garbage", expr: `m.parseLinkHeader('<<<;;;""",,,>')`, want: `[]`},
			{name: "webrtc url default port", expr: `m.parseWebRTCURL('webrtc://127.0.0.1/live/test', 'http:')`,
				want: `{"host":"127.0.0.1","port":"1985","app":"live","stream":"test","key":"live/test","query":"","playAPI":"http://127.0.0.1:1985/rtc/v1/play/","publishAPI":"http://127.0.0.1:1985/rtc/v1/publish/"}`},
			{name: "webrtc url port and https page", expr: `m.parseWebRTCURL('webrtc://media.example:8443/live/cam_1.hd?token=x', 'https:').playAPI`, want: `"https://media.example:8443/rtc/v1/play/"`},
			{name: "webrtc url bad", expr: `(() => { try { m.parseWebRTCURL('webrtc://host/onlyapp', 'http:'); return 'accepted'; } catch (e) { return 'refused'; } })()`, want: `"refused"`},
			{name: "webrtc url traversal", expr: `(() => { try { m.parseWebRTCURL('webrtc://host/../x', 'http:'); return 'accepted'; } catch (e) { return 'refused'; } })()`, want: `"refused"`},
			{name: "endpoint relative", expr: `m.endpointURL('', 'whip', 'live/test')`, want: `"whip/live/test"`},
			{name: "endpoint server", expr: `m.endpointURL('https://media.example:8080/', 'whep', 'live/test')`, want: `"https://media.example:8080/whep/live/test"`},
			{name: "valid key", expr: `[m.validKey('live/test'), m.validKey('live'), m.validKey('../x'), m.validKey('a/b/c'), m.validKey('a b/c')]`, want: `[true,false,false,false,false]`},
			{name: "send codecs", expr: `['H264','VP8','VP9','AV1'].filter((c) => m.sendCodecs('video').includes(c))`, want: `["H264","VP8","VP9","AV1"]`},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var got string
				require.NoError(t, page.Eval(`import('./static/js/whip.js').then((m) => JSON.stringify(`+c.expr+`))`, &got))
				require.JSONEq(t, c.want, got)
			})
		}
	})

	t.Run("vendor libraries load", func(t *testing.T) {
		// Built by scripts/web.sh (make) from npm: the real players, which support this browser's
		// MediaSource; without the build, the stand-ins say the library is missing.
		require.NoError(t, page.Open(srv.URL+"/play.html"))
		var got struct {
			Hls, Mpegts bool
			Missing     []string
		}
		require.NoError(t, page.Eval(`(async () => {
			for (const f of ['hls.min.js', 'mpegts.js']) await new Promise((ok, fail) => {
				const s = document.createElement('script'); s.src = 'static/vendor/' + f; s.onload = ok; s.onerror = () => fail(new Error(f)); document.head.append(s);
			});
			return {hls: !!(window.Hls && Hls.isSupported()), mpegts: !!(window.mpegts && mpegts.isSupported()), missing: window.estuaryVendorMissing || []};
		})()`, &got))
		_, err := os.Stat("../web/static/vendor/hls.min.js")
		if err == nil {
			require.True(t, got.Hls, "hls.js loads and supports this browser")
			require.True(t, got.Mpegts, "mpegts.js loads and supports this browser")
			require.Empty(t, got.Missing)
		} else {
			require.ElementsMatch(t, []string{"hls.js", "mpegts.js"}, got.Missing)
		}
	})

	t.Run("index lists streams", func(t *testing.T) {
		require.NoError(t, page.Open(srv.URL+"/"))
		_, err := page.WaitFor(`window.estuary && window.estuary.updated > 0`, 10*time.Second)
		require.NoError(t, err)
		var row string
		require.NoError(t, page.Eval(`document.querySelector('#rows tr[data-key="live/cam1"]').innerText`, &row))
		require.Contains(t, row, "H264 High 1280×720")
		require.Contains(t, row, "Opus 48 kHz stereo")
		require.Contains(t, row, "2100 kbit/s")
		var href string
		require.NoError(t, page.Eval(`document.querySelector('#rows tr[data-key="live/cam1"] a').getAttribute('href')`, &href))
		require.Equal(t, "play.html?stream=live%2Fcam1&autoplay=1", href)
		var links []string
		require.NoError(t, page.Eval(`[...document.querySelectorAll('a')].map((a) => a.getAttribute('href'))`, &links))
		require.Contains(t, links, "publish.html")
		require.Contains(t, links, "play.html")
	})

	t.Run("publish refused by the server", func(t *testing.T) {
		require.NoError(t, page.Open(srv.URL+"/publish.html?stream=live/busy&codec=VP8&autostart=1"))
		_, err := page.WaitFor(`window.estuary.state === 'error'`, 15*time.Second)
		require.NoError(t, err)
		var msg string
		require.NoError(t, page.Eval(`document.getElementById('status').textContent`, &msg))
		require.Contains(t, msg, "409")
		require.Contains(t, msg, "stream live/busy already has a publisher")
		reqs, bodies := srv.seen()
		require.NotEmpty(t, reqs)
		last := len(reqs) - 1
		require.Equal(t, "POST /whip/live/busy application/sdp", reqs[last])
		require.Contains(t, bodies[last], "m=video")
		require.Contains(t, bodies[last], "a=sendonly")
		require.Contains(t, bodies[last], "VP8/90000")
		require.NotContains(t, bodies[last], "H264/90000", "codec choice restricts the offer")
		var tracks int
		require.NoError(t, page.Eval(`window.estuary.media ? window.estuary.media.getTracks().length : 0`, &tracks))
		require.Zero(t, tracks, "the camera is released after a refusal")
		shot, err := page.Screenshot("publish-refused")
		require.NoError(t, err)
		t.Logf("screenshot %s; message %q", shot, msg)
	})

	t.Run("publish: Link ICE servers remembered, resource deleted on failure", func(t *testing.T) {
		require.NoError(t, page.Open(srv.URL+"/publish.html?stream=live/linked&autostart=1"))
		_, err := page.WaitFor(`window.estuary.state === 'error'`, 15*time.Second)
		require.NoError(t, err)
		_, err = page.WaitFor(`true`, time.Second)
		require.NoError(t, err)
		var stored string
		require.NoError(t, page.Eval(`localStorage.getItem('estuary.iceServers:' + location.origin)`, &stored))
		require.JSONEq(t, `[{"urls":"stun:127.0.0.1:3478"},{"urls":"turn:127.0.0.1:3478?transport=udp","username":"1700000000:test","credential":"c2VjcmV0"}]`, stored)
		// The next PeerConnection starts with them.
		var servers string
		require.NoError(t, page.Eval(`import('./static/js/whip.js').then((m) => JSON.stringify(m.iceServersFor('whep/live/other').map((s) => s.urls)))`, &servers))
		require.JSONEq(t, `["stun:127.0.0.1:3478","turn:127.0.0.1:3478?transport=udp"]`, servers)
		var msg string
		require.NoError(t, page.Eval(`window.estuary.error`, &msg))
		require.Contains(t, msg, "Could not publish")
		reqs, _ := srv.seen()
		require.Contains(t, reqs, "DELETE /n/test/whip/abc123 ", "the WHIP resource is deleted when the answer cannot be applied")
		require.NoError(t, page.Eval(`localStorage.clear()`, nil))
	})

	t.Run("publish: camera refused", func(t *testing.T) {
		// --use-fake-ui-for-media-stream accepts every prompt (CDP permission overrides do not beat it),
		// so the refusal is the browser's own DOMException thrown by a replaced getUserMedia.
		before, _ := srv.seen()
		require.NoError(t, page.Open(srv.URL+"/publish.html?stream=live/refused"))
		require.NoError(t, page.Eval(`navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
			document.getElementById('start').click()`, nil))
		_, err := page.WaitFor(`window.estuary.state === 'error'`, 10*time.Second)
		require.NoError(t, err)
		var msg string
		require.NoError(t, page.Eval(`window.estuary.error`, &msg))
		require.Contains(t, msg, "Camera or microphone access was refused")
		after, _ := srv.seen()
		require.Equal(t, len(before), len(after), "nothing is sent to the server without a camera")
		shot, err := page.Screenshot("publish-camera-refused")
		require.NoError(t, err)
		t.Logf("screenshot %s; message %q", shot, msg)
	})

	t.Run("play not found", func(t *testing.T) {
		require.NoError(t, page.Open(srv.URL+"/play.html?stream=live/none&autoplay=1"))
		_, err := page.WaitFor(`window.estuary.state === 'error'`, 10*time.Second)
		require.NoError(t, err)
		var msg string
		require.NoError(t, page.Eval(`window.estuary.error`, &msg))
		require.Contains(t, msg, "404")
		require.Contains(t, msg, "stream not found")
		reqs, bodies := srv.seen()
		require.Equal(t, "POST /whep/live/none application/sdp", reqs[len(reqs)-1])
		require.Contains(t, bodies[len(bodies)-1], "a=recvonly")
		// The HTTP-FLV and HLS tabs are live (issues 6 and 7): none is disabled any more.
		var tabs []string
		require.NoError(t, page.Eval(`[...document.querySelectorAll('.tabs button')].filter((b) => b.disabled).map((b) => b.textContent)`, &tabs))
		require.Empty(t, tabs)
		var all []string
		require.NoError(t, page.Eval(`[...document.querySelectorAll('.tabs button')].map((b) => b.textContent.trim())`, &all))
		require.Equal(t, []string{"WebRTC", "HTTP-FLV", "HLS"}, all)
	})

	t.Run("play webrtc url through the SRS API", func(t *testing.T) {
		port := strings.TrimPrefix(srv.URL, "http://127.0.0.1:")
		require.NoError(t, page.Open(srv.URL+"/play.html"))
		require.NoError(t, page.Eval(fmt.Sprintf(`window.estuary.start({url: 'webrtc://127.0.0.1:%s/live/none'})`, port), nil))
		_, err := page.WaitFor(`window.estuary.state === 'error'`, 10*time.Second)
		require.NoError(t, err)
		var msg string
		require.NoError(t, page.Eval(`window.estuary.error`, &msg))
		require.Contains(t, msg, "code 400")
		require.Contains(t, msg, "stream live/none is not published")
		reqs, bodies := srv.seen()
		require.Equal(t, "POST /rtc/v1/play/ application/json", reqs[len(reqs)-1])
		require.Contains(t, bodies[len(bodies)-1], `"streamurl":"webrtc://127.0.0.1:`+port+`/live/none"`)
		require.Contains(t, bodies[len(bodies)-1], `"clientip":null`)
		require.Contains(t, bodies[len(bodies)-1], `"api":"http://127.0.0.1:`+port+`/rtc/v1/play/"`)
	})

	for _, line := range page.Console() {
		require.NotContains(t, line, "exception:", "uncaught exception in a page")
	}
}
