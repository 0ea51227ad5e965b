//go:build e2e

package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/auth"
	"github.com/estuary-media/estuary/test/harness"
)

const authSecret = "e2e-auth-secret"

// authTokens are the four cases every protocol gets: none, another stream's, expired, valid.
type authCase struct {
	name  string
	token string
	want  int // HTTP status expected (201/200 for valid)
}

func authSign(t *testing.T, secret, sub, act string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Sign([]byte(secret), sub, act, time.Now(), ttl)
	require.NoError(t, err)
	return tok
}

func authCases(t *testing.T, key, act string, ok int) []authCase {
	return []authCase{
		{"no token", "", http.StatusUnauthorized},
		{"other stream", authSign(t, authSecret, "live/other", act, time.Hour), http.StatusForbidden},
		{"expired", authSign(t, authSecret, key, act, -time.Minute), http.StatusUnauthorized},
		{"valid", authSign(t, authSecret, key, act, time.Hour), ok},
	}
}

// authCLIToken makes a token with the binary's `estuary token`.
func authCLIToken(t *testing.T, cfgPath, stream, action string) string {
	t.Helper()
	out, err := exec.Command(harness.Binary(t), "token", "-c", cfgPath, "-stream", stream, "-action", action, "-ttl", "1h").Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

// authProbe runs ffprobe on url (bounded) and returns its error and output.
func authProbe(t *testing.T, u string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rw_timeout", "10000000", "-show_entries", "stream=codec_name", "-of", "csv=p=0", u)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func authPost(t *testing.T, u, ctype, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", ctype)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func authWHEPOffer(t *testing.T) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		_, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		require.NoError(t, err)
	}
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	require.NoError(t, pc.SetLocalDescription(offer))
	return pc.LocalDescription().SDP
}

// TestAuthTokens: with auth.publish and auth.play on token, every protocol refuses no token, another
// stream's token and an expired one, and accepts a valid one; SIGHUP swaps the secret while the
// stream flows.
func TestAuthTokens(t *testing.T) {
	start := time.Now()
	n := harness.StartNode(t, harness.NodeOptions{SRSAPI: true, Set: map[string]any{
		"auth.publish": "token", "auth.play": "token", "auth.secret": authSecret,
	}})
	key := "live/authcam"

	// RTMP publish: refused ones exit at once with our reason in the log.
	for _, tc := range authCases(t, key, "publish", 0)[:3] {
		t.Run("rtmp publish "+tc.name, func(t *testing.T) {
			u := n.RTMPURL(key)
			if tc.token != "" {
				u += "?token=" + tc.token
			}
			p := harness.FFmpegPush(t, u, harness.FFmpegArgs{Duration: 5 * time.Second})
			err := p.Wait(t, 15*time.Second)
			require.Error(t, err, "ffmpeg publish must be refused: %s", p.Stderr())
		})
	}
	require.Contains(t, n.Logs(), "publish "+key+" refused")
	pubTok := authCLIToken(t, n.ConfigPath, key, "publish")
	pub := harness.FFmpegPush(t, n.RTMPURL(key)+"?token="+pubTok, harness.FFmpegArgs{GOP: 25})
	// The valid publish: the stream answers on HTTP-FLV with a valid play token.
	playTok := authSign(t, authSecret, key, "play", time.Hour)
	flvWaitLive(t, n.HTTPURL+"/"+key+".flv?token="+playTok, 15*time.Second)
	t.Logf("valid RTMP publish live %v after node start", time.Since(start).Round(time.Millisecond))

	t.Run("rtmp play", func(t *testing.T) {
		for _, tc := range authCases(t, key, "play", 0) {
			u := "rtmp://" + n.RTMPAddr + "/" + key
			if tc.token != "" {
				u += "?token=" + tc.token
			}
			out, err := authProbe(t, u)
			if tc.name == "valid" {
				require.NoError(t, err, out)
				require.Contains(t, out, "h264")
			} else {
				require.Error(t, err, "%s: %s", tc.name, out)
			}
		}
	})

	t.Run("http-flv", func(t *testing.T) {
		for _, tc := range authCases(t, key, "play", http.StatusOK) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.HTTPURL+"/"+key+".flv?token="+tc.token, nil)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			head := make([]byte, 3)
			_, _ = io.ReadFull(resp.Body, head)
			resp.Body.Close()
			cancel()
			require.Equal(t, tc.want, resp.StatusCode, tc.name)
			if tc.want == http.StatusOK {
				require.Equal(t, "FLV", string(head))
			}
		}
	})

	t.Run("hls", func(t *testing.T) {
		for _, tc := range authCases(t, key, "play", http.StatusOK) {
			r := hlsGet(t, n.HTTPURL+"/"+key+".m3u8?token="+tc.token)
			require.Equal(t, tc.want, r.code, "%s: %s", tc.name, r.body)
			if tc.want != http.StatusOK {
				continue
			}
			// The token travels on: every URI of the playlists carries it and answers.
			base, err := url.Parse(r.url)
			require.NoError(t, err)
			uris := hlsURIs(r.body)
			require.NotEmpty(t, uris, r.body)
			media, err := base.Parse(uris[0])
			require.NoError(t, err)
			require.Contains(t, media.RawQuery, "token=", media.String())
			mr := hlsGet(t, media.String())
			require.Equal(t, http.StatusOK, mr.code, mr.body)
			segs := hlsURIs(mr.body)
			require.NotEmpty(t, segs, mr.body)
			seg, err := media.Parse(segs[0])
			require.NoError(t, err)
			require.Contains(t, seg.RawQuery, "token=")
			require.Equal(t, http.StatusOK, hlsGet(t, seg.String()).code)
			// The same muxer file without the token is refused.
			noTok := *seg
			noTok.RawQuery = ""
			require.Equal(t, http.StatusUnauthorized, hlsGet(t, noTok.String()).code)
		}
	})

	t.Run("whep", func(t *testing.T) {
		for _, tc := range authCases(t, key, "play", http.StatusCreated) {
			hdr := map[string]string{}
			if tc.token != "" {
				hdr["Authorization"] = "Bearer " + tc.token
			}
			code, body := authPost(t, n.HTTPURL+"/whep/"+key, "application/sdp", authWHEPOffer(t), hdr)
			require.Equal(t, tc.want, code, "%s: %s", tc.name, body)
		}
	})

	t.Run("whip", func(t *testing.T) {
		wkey := "live/authwhip"
		for _, tc := range authCases(t, wkey, "publish", http.StatusCreated) {
			hdr := map[string]string{}
			if tc.token != "" {
				hdr["Authorization"] = "Bearer " + tc.token
			}
			code, body := authPost(t, n.HTTPURL+"/whip/"+wkey, "application/sdp", whipOffer(t), hdr)
			require.Equal(t, tc.want, code, "%s: %s", tc.name, body)
		}
	})

	t.Run("srs api", func(t *testing.T) {
		for _, tc := range authCases(t, key, "play", http.StatusOK) {
			su := "webrtc://" + strings.TrimPrefix(n.HTTPURL, "http://") + "/" + key
			if tc.token != "" {
				su += "?token=" + tc.token
			}
			body, _ := json.Marshal(map[string]string{"api": n.SRSAPIURL + "/rtc/v1/play/", "streamurl": su, "sdp": authWHEPOffer(t)})
			code, resp := authPost(t, n.SRSAPIURL+"/rtc/v1/play/", "application/json", string(body), nil)
			require.Equal(t, http.StatusOK, code)
			var r struct {
				Code int    `json:"code"`
				SDP  string `json:"sdp"`
			}
			require.NoError(t, json.Unmarshal([]byte(resp), &r), resp)
			if tc.want == http.StatusOK {
				require.Zero(t, r.Code, resp)
				require.Contains(t, r.SDP, "v=0")
			} else {
				require.NotZero(t, r.Code, "%s: %s", tc.name, resp)
			}
		}
	})

	t.Run("websocket", func(t *testing.T) {
		for _, tc := range authCases(t, "call/authroom", "play", http.StatusSwitchingProtocols) {
			u := "ws" + strings.TrimPrefix(n.HTTPURL, "http") + "/ws/call?room=authroom&token=" + tc.token
			ws, resp, err := websocket.DefaultDialer.Dial(u, nil)
			if tc.want != http.StatusSwitchingProtocols {
				require.Error(t, err, tc.name)
				require.NotNil(t, resp)
				require.Equal(t, tc.want, resp.StatusCode, tc.name)
				continue
			}
			require.NoError(t, err)
			require.NoError(t, ws.WriteJSON(map[string]string{"type": "join", "name": "a"}))
			m := wsRead(t, ws, 3*time.Second)
			require.Equal(t, "joined", m.Type)
			_ = ws.Close()
		}
	})

	// SIGHUP: a new secret applies to new clients; the publisher keeps flowing.
	t.Run("sighup new secret", func(t *testing.T) {
		cfg, err := os.ReadFile(n.ConfigPath)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(n.ConfigPath, bytes.Replace(cfg, []byte(authSecret), []byte("rotated-secret"), 1), 0o644))
		require.NoError(t, n.Signal(syscall.SIGHUP))
		newTok := authSign(t, "rotated-secret", key, "play", time.Hour)
		require.Eventually(t, func() bool {
			resp, err := http.Head(n.HTTPURL + "/" + key + ".flv?token=" + newTok)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 5*time.Second, 50*time.Millisecond)
		resp, err := http.Head(n.HTTPURL + "/" + key + ".flv?token=" + playTok)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		select {
		case <-pub.Done():
			t.Fatalf("publisher ended on reload: %s", pub.Stderr())
		default:
		}
		flvWaitLive(t, n.HTTPURL+"/"+key+".flv?token="+newTok, 5*time.Second)
	})
	t.Logf("auth e2e took %v", time.Since(start).Round(time.Millisecond))
}

// TestAuthHooks: with auth on hook, a Go hook server receives SRS-shaped JSON on publish and play,
// and its denial refuses the client (RTMP publish, HTTP-FLV play); on_unpublish and on_stop follow.
func TestAuthHooks(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	hook := startAuthHookServer(t, func(m map[string]any) string {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		if m["stream"] == "denied" || strings.Contains(m["param"].(string), "deny") {
			return `{"code":1}`
		}
		return "0"
	})
	n := harness.StartNode(t, harness.NodeOptions{Set: map[string]any{
		"auth.publish": "hook", "auth.play": "hook", "auth.hook_timeout": "2s",
		"auth.hooks.on_publish": []any{hook + "/on_publish"}, "auth.hooks.on_play": []any{hook + "/on_play"},
		"auth.hooks.on_unpublish": []any{hook + "/on_unpublish"}, "auth.hooks.on_stop": []any{hook + "/on_stop"},
	}})
	denied := harness.FFmpegPush(t, n.RTMPURL("live/denied"), harness.FFmpegArgs{Duration: 5 * time.Second})
	require.Error(t, denied.Wait(t, 15*time.Second))
	pub := harness.FFmpegPush(t, n.RTMPURL("live/hooked")+"?secret=abc", harness.FFmpegArgs{GOP: 25})
	flvWaitLive(t, n.HTTPURL+"/live/hooked.flv?viewer=1", 15*time.Second)
	resp, err := http.Head(n.HTTPURL + "/live/hooked.flv?deny=1")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	_ = pub.Stop() // ffmpeg exits 255 on SIGINT

	find := func(action, stream string) map[string]any {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range got {
			if m["action"] == action && m["stream"] == stream {
				return m
			}
		}
		return nil
	}
	require.Eventually(t, func() bool { return find("on_unpublish", "hooked") != nil }, 5*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return find("on_stop", "hooked") != nil }, 5*time.Second, 20*time.Millisecond)
	p := find("on_publish", "hooked")
	require.NotNil(t, p)
	for _, k := range []string{"action", "client_id", "ip", "vhost", "app", "stream", "param", "stream_url", "stream_id", "server_id"} {
		require.Contains(t, p, k)
	}
	require.Equal(t, "live", p["app"])
	require.Equal(t, "?secret=abc", p["param"])
	require.Equal(t, "/live/hooked", p["stream_url"])
	require.Equal(t, "127.0.0.1", p["ip"])
	require.Equal(t, n.NodeID, p["server_id"])
	require.NotEmpty(t, p["client_id"])
	pl := find("on_play", "hooked")
	require.NotNil(t, pl)
	require.Equal(t, "?viewer=1", pl["param"])
	require.NotNil(t, find("on_publish", "denied"))
}

func startAuthHookServer(t *testing.T, answer func(map[string]any) string) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		_, _ = io.WriteString(w, answer(m))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Log(err)
		}
	})
	return "http://" + ln.Addr().String()
}
