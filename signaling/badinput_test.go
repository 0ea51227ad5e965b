package signaling

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
)

// TestBadInput: each bad request gets its status and reason, and the live session keeps flowing.
func TestBadInput(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	pub := startWHIP(t, e, "/whip/live/test")
	v := startWHEP(t, e, "/whep/live/test")
	v.waitPackets(t, 0, 0, 30, 10*time.Second)
	_, offer := newViewer(t) // a valid offer for the cases that need one

	cases := []struct {
		name   string
		method string
		path   string
		ctype  string
		body   string
		status int
		reason string
	}{
		{"wrong content type", "POST", "/whip/live/other", "text/plain", offer, 415, "unsupported content type"},
		{"no content type", "POST", "/whep/live/test", "", offer, 415, "unsupported content type"},
		{"garbage sdp", "POST", "/whip/live/other", "application/sdp", "hello, this is not SDP", 400, "invalid SDP"},
		{"truncated sdp", "POST", "/whep/live/test", "application/sdp", offer[:len(offer)/3], 400, "invalid SDP"},
		{"too large", "POST", "/whip/live/other", "application/sdp", "v=0\r\n" + strings.Repeat("a=x:y\r\n", 70<<10/7), 413, "too large"},
		{"bad key chars", "POST", "/whip/live/te$t", "application/sdp", offer, 400, "invalid stream key"},
		{"bad key space", "POST", "/whep/live/a%20b", "application/sdp", offer, 400, "invalid stream key"},
		{"bad key dotdot", "POST", "/whip/live/a..b", "application/sdp", offer, 400, "invalid stream key"},
		{"bad key dotdot app", "POST", "/whep/../live", "application/sdp", offer, 0, ""}, // cleaned by ServeMux: not ours
		{"unknown stream", "POST", "/whep/live/nobody", "application/sdp", offer, 404, "stream not found"},
		{"delete unknown", "DELETE", "/n/" + testNode + "/whep/0123456789abcdef01234567", "", "", 404, "session not found"},
		{"delete other node", "DELETE", "/n/other-node" + v.res.header.Get("Location")[len("/n/"+testNode):], "", "", 404, "not this node"},
		{"delete wrong kind", "DELETE", strings.Replace(v.res.header.Get("Location"), "/whep/", "/whip/", 1), "", "", 404, "session not found"},
		{"patch wrong type", "PATCH", v.res.header.Get("Location"), "application/sdp", "a=end-of-candidates\r\n", 415, "unsupported content type"},
		{"patch garbage", "PATCH", v.res.header.Get("Location"), "application/trickle-ice-sdpfrag", "garbage", 400, "trickle-ice-sdpfrag"},
		{"patch bad candidate", "PATCH", v.res.header.Get("Location"), "application/trickle-ice-sdpfrag",
			"a=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 0 typ host\r\n", 400, "port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, e.url+tc.path, tc.ctype, []byte(tc.body))
			if tc.status != 0 {
				require.Equal(t, tc.status, r.status, r.body)
				require.Contains(t, r.body, tc.reason)
			} else {
				require.NotEqual(t, http.StatusCreated, r.status)
			}
			v.flowing(t)
		})
	}

	// A live key published twice: 409, and the first publisher keeps flowing.
	t.Run("live key twice", func(t *testing.T) {
		p2, offer2 := newPublisherPC(t, e)
		r := do(t, http.MethodPost, e.url+"/whip/live/test", "application/sdp", []byte(offer2))
		require.Equal(t, http.StatusConflict, r.status)
		require.Contains(t, r.body, "already being published")
		p2.close()
		v.flowing(t)
	})
	require.Equal(t, 2, e.srv.Sessions(), "refused requests leave no session behind")
	_ = pub
}

// TestResource covers OPTIONS, trickle PATCH, If-Match and an ICE restart by PATCH.
func TestResource(t *testing.T) {
	e := newEnv(t, sfu.Config{})
	startWHIP(t, e, "/whip/live/res")
	v := startWHEP(t, e, "/whep/live/res")
	v.waitPackets(t, 0, 0, 20, 10*time.Second)
	loc := v.res.header.Get("Location")

	r := do(t, http.MethodOptions, e.url+"/whip/live/res", "", nil)
	require.Equal(t, http.StatusNoContent, r.status)
	require.Equal(t, "application/sdp", r.header.Get("Accept-Post"))
	require.Contains(t, r.header.Get("Access-Control-Allow-Methods"), "POST")
	require.Len(t, r.header.Values("Link"), 2)
	r = do(t, http.MethodOptions, e.url+loc, "", nil)
	require.Equal(t, http.StatusNoContent, r.status)
	require.Equal(t, "application/trickle-ice-sdpfrag", r.header.Get("Accept-Patch"))

	// Trickle: a (redundant) candidate of the viewer's own.
	frag := "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\na=end-of-candidates\r\n"
	r = do(t, http.MethodPatch, e.url+loc, "application/trickle-ice-sdpfrag", []byte(frag))
	require.Equal(t, http.StatusNoContent, r.status, r.body)
	r = do(t, http.MethodPatch, e.url+loc, "application/trickle-ice-sdpfrag", []byte(frag), "If-Match", `"nope"`)
	require.Equal(t, http.StatusPreconditionFailed, r.status, r.body)
	v.flowing(t)

	// ICE restart, end to end: the viewer restarts ICE, sends its new credentials by PATCH, applies
	// our answer fragment, and the media keeps flowing with continuous sequence numbers.
	oldUfrag := remoteUfrag(v.pc) // the server's ufrag, as the viewer knows it
	offer, err := v.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	require.NoError(t, err)
	require.NoError(t, v.pc.SetLocalDescription(offer))
	var ufrag, pwd string
	for line := range strings.SplitSeq(offer.SDP, "\r\n") {
		if u, ok := strings.CutPrefix(line, "a=ice-ufrag:"); ok {
			ufrag = u
		}
		if p, ok := strings.CutPrefix(line, "a=ice-pwd:"); ok {
			pwd = p
		}
	}
	restart := "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\n"
	sent := time.Now()
	r = do(t, http.MethodPatch, e.url+loc, "application/trickle-ice-sdpfrag", []byte(restart), "If-Match", v.res.header.Get("ETag"))
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "application/trickle-ice-sdpfrag", r.header.Get("Content-Type"))
	require.NotEqual(t, v.res.header.Get("ETag"), r.header.Get("ETag"))
	f, err := parseSDPFrag(r.body)
	require.NoError(t, err)
	require.NotEmpty(t, f.Ufrag)
	require.NotEqual(t, oldUfrag, f.Ufrag)
	require.NotEmpty(t, f.Candidates)
	require.Contains(t, f.Candidates[0].Candidate, "127.0.0.1")
	answer, err := restartOffer(v.res.body, f.Ufrag, f.Pwd)
	require.NoError(t, err)
	require.NoError(t, v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	for _, c := range f.Candidates {
		mid := "0"
		require.NoError(t, v.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: &mid}))
	}
	base := v.snapshot("video").packets
	v.waitPackets(t, base, v.snapshot("audio").packets, 30, 10*time.Second)
	t.Logf("ICE restart: 30 more video packets %v after the PATCH", time.Since(sent).Round(time.Millisecond))
	v.requireContinuousAudioLoss(t, 10) // video: every SN (NACK); audio: the switch may lose a few
	require.Equal(t, f.Ufrag, remoteUfrag(v.pc))
	ss, err := e.srv.lookup(testNode, loc[strings.LastIndex(loc, "/")+1:])
	require.NoError(t, err)
	require.Equal(t, ufrag, remoteUfrag(ss.pc), "the server runs ICE with the viewer's new credentials")
	require.Equal(t, webrtc.PeerConnectionStateConnected, v.pc.ConnectionState())
}

// TestSRSAPI: the SRS-compatible API publishes and plays; bad requests answer HTTP 200 with a
// non-zero code and a message while the other sessions keep flowing.
func TestSRSAPI(t *testing.T) {
	e := newEnv(t, sfu.Config{})

	// A pion client publishes through /rtc/v1/publish/ ...
	p, offer := newPublisherPC(t, e)
	body, err := json.Marshal(map[string]any{"api": e.url + "/rtc/v1/publish/", "streamurl": "webrtc://127.0.0.1/live/srs?token=x",
		"sdp": offer, "clientip": nil, "tid": "abc"})
	require.NoError(t, err)
	r := do(t, http.MethodPost, e.url+"/rtc/v1/publish/", "application/json", body)
	require.Equal(t, http.StatusOK, r.status)
	var resp struct {
		Code      int    `json:"code"`
		Server    string `json:"server"`
		SessionID string `json:"sessionid"`
		SDP       string `json:"sdp"`
		Message   string `json:"message"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &resp))
	require.Equal(t, 0, resp.Code, resp.Message)
	require.Equal(t, testNode, resp.Server)
	require.NotEmpty(t, resp.SessionID)
	require.NoError(t, p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: resp.SDP}))

	// ... and plays through WHEP, and through /rtc/v1/play/.
	v := startWHEP(t, e, "/whep/live/srs")
	took := v.waitPackets(t, 0, 0, 30, 10*time.Second)
	t.Logf("WHEP viewer of the SRS-API publisher: 30 video packets after %v", took.Round(time.Millisecond))
	require.True(t, sfu.IsKeyframe(v.snapshot("video").mime, v.snapshot("video").first))

	v2, offer2 := newViewer(t)
	body, err = json.Marshal(map[string]any{"api": "x", "streamurl": "webrtc://127.0.0.1:1985/live/srs", "sdp": offer2, "clientip": nil})
	require.NoError(t, err)
	r = do(t, http.MethodPost, e.url+"/rtc/v1/play/", "application/json", body)
	require.NoError(t, json.Unmarshal([]byte(r.body), &resp))
	require.Equal(t, 0, resp.Code, resp.Message)
	require.NoError(t, v2.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: resp.SDP}))
	v2.waitPackets(t, 0, 0, 30, 10*time.Second)

	// ... and through SRS 5's WHIP-style endpoint.
	v3, offer3 := newViewer(t)
	r = do(t, http.MethodPost, e.url+"/rtc/v1/whip-play/?app=live&stream=srs", "application/sdp", []byte(offer3))
	require.Equal(t, http.StatusCreated, r.status, r.body)
	require.True(t, strings.HasPrefix(r.header.Get("Location"), "/n/"+testNode+"/whep/"))
	require.NoError(t, v3.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: r.body}))
	v3.waitPackets(t, 0, 0, 30, 10*time.Second)
	r = do(t, http.MethodPost, e.url+"/rtc/v1/whip/?app=live&stream=a..b", "application/sdp", []byte(offer3))
	require.Equal(t, http.StatusBadRequest, r.status, r.body)

	cases := []struct {
		name string
		path string
		body string
		code int
		msg  string
	}{
		{"malformed json", "/rtc/v1/play/", `{"streamurl": "webrtc://h/live/srs", "sdp": `, SRSCodeAPIBody, "not JSON"},
		{"not json", "/rtc/v1/publish/", `hello`, SRSCodeAPIBody, "not JSON"},
		{"bad streamurl scheme", "/rtc/v1/play/", `{"streamurl":"rtmp://h/live/srs","sdp":"v=0"}`, SRSCodeInvalidParam, "webrtc://"},
		{"bad streamurl path", "/rtc/v1/play/", `{"streamurl":"webrtc://h/live","sdp":"v=0"}`, SRSCodeInvalidParam, "webrtc://"},
		{"bad key", "/rtc/v1/publish/", `{"streamurl":"webrtc://h/live/a..b","sdp":"v=0"}`, SRSCodeInvalidParam, "invalid stream key"},
		{"missing sdp", "/rtc/v1/play/", `{"streamurl":"webrtc://h/live/srs"}`, SRSCodeInvalidParam, "missing sdp"},
		{"garbage sdp", "/rtc/v1/publish/", `{"streamurl":"webrtc://h/live/new","sdp":"garbage"}`, SRSCodeSDPDecode, "invalid SDP"},
		{"unknown stream", "/rtc/v1/play/", `{"streamurl":"webrtc://h/live/nobody","sdp":` + jsonString(offer2) + `}`, SRSCodeNoPublisher, "stream not found"},
		{"busy", "/rtc/v1/publish/", `{"streamurl":"webrtc://h/live/srs","sdp":` + jsonString(offer) + `}`, SRSCodeStreamBusy, "already being published"},
		{"too large", "/rtc/v1/play/", `{"sdp":"` + strings.Repeat("x", 70<<10) + `"}`, SRSCodeAPIBody, "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, http.MethodPost, e.url+tc.path, "application/json", []byte(tc.body))
			require.Equal(t, http.StatusOK, r.status)
			var resp struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			require.NoError(t, json.Unmarshal([]byte(r.body), &resp), r.body)
			require.Equal(t, tc.code, resp.Code, resp.Message)
			require.Contains(t, resp.Message, tc.msg)
			v.flowing(t)
		})
	}
	r = do(t, http.MethodOptions, e.url+"/rtc/v1/play/", "", nil)
	require.Equal(t, http.StatusNoContent, r.status)
	require.Equal(t, "*", r.header.Get("Access-Control-Allow-Origin"))
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)

	return string(b)
}
