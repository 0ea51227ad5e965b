//go:build e2e

package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/stun/v4"
	pturn "github.com/pion/turn/v5"
	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/test/harness"
)

// callNode starts a node with the embedded TURN on a free 127.0.0.1 port (relay address 127.0.0.1,
// loopback peers allowed: this machine has only loopback).
func callNode(t *testing.T, set ...map[string]any) (*harness.Node, int) {
	t.Helper()
	turnPort := harness.FreePort(t, "127.0.0.1")
	opts := map[string]any{
		"turn": map[string]any{
			"enabled": true, "listen": "127.0.0.1:" + strconv.Itoa(turnPort), "public_ip": "127.0.0.1",
			"allow_loopback": true, "secret": "e2e-secret", "realm": "estuary",
		},
		"calls": map[string]any{"heartbeat_timeout": "10s"},
	}
	for _, m := range set {
		for k, v := range m {
			opts[k] = v
		}
	}
	node := harness.StartNode(t, harness.NodeOptions{Set: opts})
	return node, turnPort
}

type callStats struct {
	State  string `json:"state"`
	Policy string `json:"policy"`
	Peer   struct {
		Name string `json:"name"`
	} `json:"peer"`
	ICE []struct {
		URLs     []string `json:"urls"`
		Username string   `json:"username"`
	} `json:"iceServers"`
	Stats struct {
		Inbound struct {
			Video struct {
				FramesDecoded int     `json:"framesDecoded"`
				BitrateKbps   float64 `json:"bitrateKbps"`
				Width         int     `json:"width"`
				Codec         string  `json:"codec"`
			} `json:"video"`
		} `json:"inbound"`
		Connection struct {
			RTTMs      *float64 `json:"rttMs"`
			Local      string   `json:"localCandidateType"`
			Remote     string   `json:"remoteCandidateType"`
			Protocol   string   `json:"protocol"`
			Connection string   `json:"state"`
		} `json:"connection"`
	} `json:"stats"`
}

const callStatsJS = `({state: window.estuary.state, policy: window.estuary.policy, peer: window.estuary.peer,
  iceServers: window.estuary.iceServers, stats: window.estuary.stats})`

// callBoth has alice and bob join room through /call.html (bob second, so bob offers), waits until
// each decodes >= 60 frames of the other's camera, and returns both pages' figures.
func callBoth(t *testing.T, alice, bob *harness.BrowserPage, room, policy string) (a, b callStats) {
	t.Helper()
	start := time.Now()
	join := fmt.Sprintf(`window.estuary.join({room: %q, name: %%q, policy: %q}).then(() => window.estuary.state)`, room, policy)
	var st string
	require.NoError(t, alice.Eval(fmt.Sprintf(join, "alice"), &st))
	_, err := alice.WaitFor(`window.estuary.state === 'waiting'`, 10*time.Second)
	require.NoError(t, err, "alice waits alone in the room")
	require.NoError(t, bob.Eval(fmt.Sprintf(join, "bob"), &st))
	decoded := `window.estuary.state === 'live' && window.estuary.stats && window.estuary.stats.inbound.video && window.estuary.stats.inbound.video.framesDecoded >= 60`
	for name, p := range map[string]*harness.BrowserPage{"alice": alice, "bob": bob} {
		_, err := p.WaitFor(decoded, 30*time.Second) // ~4 s on an idle 2-core machine, 13 s seen under load
		require.NoError(t, err, "%s must decode 60 frames of the other side", name)
		t.Logf("%s: live and 60 frames decoded %v after alice joined", name, time.Since(start).Round(time.Millisecond))
	}
	require.NoError(t, alice.Eval(callStatsJS, &a))
	require.NoError(t, bob.Eval(callStatsJS, &b))
	return a, b
}

// TestCallBrowsers is issue 10's browser check: two Chromium tabs call each other through /call.html
// and the websocket signaling, first with every route allowed, then relay-only so only the embedded
// TURN can carry the media.
func TestCallBrowsers(t *testing.T) {
	node, turnPort := callNode(t)
	b := harness.NewBrowser(t, harness.BrowserOptions{})
	alice, bob := b.NewPage(), b.NewPage()
	require.NoError(t, alice.Open(node.HTTPURL+"/call.html"))
	require.NoError(t, bob.Open(node.HTTPURL+"/call.html"))

	turnUDP := fmt.Sprintf("turn:127.0.0.1:%d?transport=udp", turnPort)
	for _, tc := range []struct {
		name, room, policy string
	}{
		{name: "direct", room: "e2e-direct", policy: "all"},
		{name: "relay only", room: "e2e-relay", policy: "relay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, bb := callBoth(t, alice, bob, tc.room, tc.policy)
			for _, s := range []struct {
				who, peer string
				st        callStats
			}{{"alice", "bob", a}, {"bob", "alice", bb}} {
				require.Equal(t, s.peer, s.st.Peer.Name)
				require.GreaterOrEqual(t, s.st.Stats.Inbound.Video.FramesDecoded, 60)
				require.Greater(t, s.st.Stats.Inbound.Video.Width, 0)
				require.NotEmpty(t, s.st.ICE, "joined carries ICE servers")
				require.Contains(t, s.st.ICE[0].URLs, turnUDP)
				require.Regexp(t, `^\d{10,}:call-[0-9a-f]{16}$`, s.st.ICE[0].Username, "TURN REST username expiry:user")
				c := s.st.Stats.Connection
				rtt := -1.0
				if c.RTTMs != nil {
					rtt = *c.RTTMs
				}
				t.Logf("%s (%s): %d frames decoded, %s %.0f kbit/s in, route %s -> %s over %s, RTT %.0f ms",
					s.who, tc.policy, s.st.Stats.Inbound.Video.FramesDecoded, s.st.Stats.Inbound.Video.Codec,
					s.st.Stats.Inbound.Video.BitrateKbps, c.Local, c.Remote, c.Protocol, rtt)
				if tc.policy == "relay" {
					require.Equal(t, "relay", c.Local, "%s: relay-only calls go through the embedded TURN", s.who)
				} else {
					require.Equal(t, "host", c.Local, "%s: a direct call on loopback uses host candidates", s.who)
				}
			}
			if tc.policy == "all" {
				shot, err := alice.Screenshot("call-alice")
				require.NoError(t, err)
				t.Logf("screenshot %s", shot)
				// Mute buttons switch the local tracks off and on.
				var enabled []bool
				require.NoError(t, alice.Eval(`window.estuary.mute('audio', true); window.estuary.mute('video', true);
				  window.estuary.media.getTracks().map((t) => t.enabled)`, &enabled))
				require.Equal(t, []bool{false, false}, enabled)
				require.NoError(t, alice.Eval(`window.estuary.mute('audio', false); window.estuary.mute('video', false);
				  window.estuary.media.getTracks().map((t) => t.enabled)`, &enabled))
				require.Equal(t, []bool{true, true}, enabled)
			}
			// Hang up: the other side is told and waits in the room again.
			require.NoError(t, bob.Eval(`window.estuary.hangup().then(() => window.estuary.state)`, nil))
			_, err := alice.WaitFor(`window.estuary.state === 'waiting' && window.estuary.peer === null`, 5*time.Second)
			require.NoError(t, err, "alice learns that bob left")
			require.NoError(t, alice.Eval(`window.estuary.hangup()`, nil))
		})
	}

	t.Run("room full on the page", func(t *testing.T) {
		carol := b.NewPage()
		defer carol.Close()
		require.NoError(t, alice.Eval(`window.estuary.join({room: 'e2e-full', name: 'alice'})`, nil))
		require.NoError(t, bob.Eval(`window.estuary.join({room: 'e2e-full', name: 'bob'})`, nil))
		require.NoError(t, carol.Open(node.HTTPURL+"/call.html?room=e2e-full&name=carol&autostart=1"))
		_, err := carol.WaitFor(`window.estuary.state === 'error' && /full/.test(window.estuary.error)`, 10*time.Second)
		require.NoError(t, err)
		var msg string
		require.NoError(t, carol.Eval(`window.estuary.error`, &msg))
		t.Logf("third joiner: %s", msg)
	})
}

// TestCallTURNLinkHeaders: WHIP/WHEP answers (here the OPTIONS preflight) carry the embedded TURN's
// time-limited credentials in Link headers.
func TestCallTURNLinkHeaders(t *testing.T) {
	node, turnPort := callNode(t)
	req, err := http.NewRequest(http.MethodOptions, node.HTTPURL+"/whip/live/linktest", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	links := strings.Join(resp.Header.Values("Link"), "\n")
	t.Logf("Link headers:\n%s", links)
	require.Contains(t, links, fmt.Sprintf(`<turn:127.0.0.1:%d?transport=udp>; rel="ice-server"; username="`, turnPort))
	require.Contains(t, links, fmt.Sprintf(`<turn:127.0.0.1:%d?transport=tcp>`, turnPort))
	require.Regexp(t, `username="\d{10,}:whip-[^"]+"; credential="[A-Za-z0-9+/=]{28}"; credential-type="password"`, links)
	require.Contains(t, links, fmt.Sprintf(`<stun:127.0.0.1:%d>; rel="ice-server"`, turnPort))
}

// wsMsg is a signaling message as the test reads it.
type wsMsg struct {
	Type       string `json:"type"`
	ID         string `json:"id"`
	Code       string `json:"code"`
	ICEServers []struct {
		URLs       []string `json:"urls"`
		Username   string   `json:"username"`
		Credential string   `json:"credential"`
	} `json:"iceServers"`
}

func wsJoin(t *testing.T, node *harness.Node, room, name string) (*websocket.Conn, wsMsg) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(node.HTTPURL, "http") + "/ws/call?room=" + room
	ws, resp, err := websocket.DefaultDialer.Dial(u, nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = ws.Close() })
	require.NoError(t, ws.WriteJSON(map[string]string{"type": "join", "name": name}))
	return ws, wsRead(t, ws, 3*time.Second)
}

func wsRead(t *testing.T, ws *websocket.Conn, d time.Duration) wsMsg {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(d)))
	_, data, err := ws.ReadMessage()
	require.NoError(t, err)
	var m wsMsg
	require.NoError(t, json.Unmarshal(data, &m))
	return m
}

// TestCallSignalingNode runs the protocol against the binary: calls.heartbeat_timeout and
// calls.max_message from the config apply, and the TURN credentials handed out in "joined" work on
// the node's embedded TURN (a pion/turn client allocates with them; a wrong password gets 401).
func TestCallSignalingNode(t *testing.T) {
	node, turnPort := callNode(t, map[string]any{"calls": map[string]any{"heartbeat_timeout": "1s", "max_message": 2048}})

	silent, j1 := wsJoin(t, node, "e2e-hb", "silent")
	require.Equal(t, "joined", j1.Type)
	active, j2 := wsJoin(t, node, "e2e-hb", "active")
	require.Equal(t, "joined", j2.Type)
	_ = silent // it reads nothing more, so it answers no pings
	start := time.Now()
	m := wsRead(t, active, 5*time.Second) // active reads, so gorilla answers the pings
	require.Equal(t, wsMsg{Type: "peer-left", ID: j1.ID}, m)
	t.Logf("silent client dropped, peer-left after %v (calls.heartbeat_timeout 1s)", time.Since(start).Round(time.Millisecond))

	big := `{"type":"offer","sdp":"` + strings.Repeat("a", 4096) + `"}`
	require.NoError(t, active.WriteMessage(websocket.TextMessage, []byte(big)))
	require.NoError(t, active.SetReadDeadline(time.Now().Add(3*time.Second)))
	_, _, err := active.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce, "a message over calls.max_message closes the connection")
	require.Equal(t, websocket.CloseMessageTooBig, ce.Code)

	// The credentials from "joined" against the node's TURN.
	require.NotEmpty(t, j2.ICEServers)
	ice := j2.ICEServers[0]
	require.Contains(t, ice.URLs, fmt.Sprintf("turn:127.0.0.1:%d?transport=udp", turnPort))
	turnAddr := fmt.Sprintf("127.0.0.1:%d", turnPort)
	allocate := func(user, pass string) (net.PacketConn, error) {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		c, err := pturn.NewClient(&pturn.ClientConfig{STUNServerAddr: turnAddr, TURNServerAddr: turnAddr,
			Username: user, Password: pass, Realm: "estuary", Conn: conn})
		require.NoError(t, err)
		require.NoError(t, c.Listen())
		t.Cleanup(func() { c.Close(); _ = conn.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.AllocateWithContext(ctx)
	}
	relay, err := allocate(ice.Username, ice.Credential)
	require.NoError(t, err, "the credentials from joined allocate on the embedded TURN")
	t.Logf("allocated relay %s with %s", relay.LocalAddr(), ice.Username)
	require.NoError(t, relay.Close())
	_, err = allocate(ice.Username, "wrong")
	te, ok := errors.AsType[*stun.TurnError](err)
	require.True(t, ok, "want a TURN error, got %v", err)
	require.Equal(t, stun.CodeUnauthorized, te.ErrorCodeAttr.Code)
}
