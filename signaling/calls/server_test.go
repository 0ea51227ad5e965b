package calls

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer runs a Server on 127.0.0.1 (httptest) and closes both at cleanup.
func testServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg, Deps{ICEServers: func(r *http.Request, user string) []ICEServer {
		return []ICEServer{{URLs: []string{"turn:127.0.0.1:3478?transport=udp"}, Username: "9999999999:" + user, Credential: "pw"}}
	}})
	require.NoError(t, err)
	mux := http.NewServeMux()
	s.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return s, "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws/call"
}

type client struct {
	t  *testing.T
	ws *websocket.Conn
	id string
}

func dial(t *testing.T, url, room string) *client {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url+"?room="+room, nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = ws.Close() })
	return &client{t: t, ws: ws}
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	require.NoError(c.t, c.ws.WriteMessage(websocket.TextMessage, []byte(s)))
}

func (c *client) read() Message {
	c.t.Helper()
	m, err := c.tryRead(3 * time.Second)
	require.NoError(c.t, err)
	return m
}

func (c *client) tryRead(d time.Duration) (Message, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(d))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		return Message{}, err
	}
	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		return Message{}, err
	}
	return m, nil
}

// join sends join and returns the joined message.
func (c *client) join(name string) Message {
	c.t.Helper()
	c.sendRaw(`{"type":"join","name":"` + name + `"}`)
	m := c.read()
	require.Equal(c.t, TypeJoined, m.Type)
	require.NotEmpty(c.t, m.ID)
	require.NotNil(c.t, m.Peers)
	c.id = m.ID
	return m
}

// pair joins alice then bob into room and checks the join messages.
func pair(t *testing.T, url, room string) (a, b *client) {
	t.Helper()
	a = dial(t, url, room)
	ja := a.join("alice")
	require.Empty(t, *ja.Peers)
	require.Len(t, ja.ICEServers, 1)
	require.Equal(t, "9999999999:"+ja.ID, ja.ICEServers[0].Username, "TURN credentials are made for the client's id")
	b = dial(t, url, room)
	jb := b.join("bob")
	require.Equal(t, []Peer{{ID: a.id, Name: "alice"}}, *jb.Peers, "the second joiner sees the first (and offers)")
	pj := a.read()
	require.Equal(t, TypePeerJoined, pj.Type)
	require.Equal(t, &Peer{ID: b.id, Name: "bob"}, pj.Peer)
	return a, b
}

func TestRelay(t *testing.T) {
	s, url := testServer(t, Config{})
	a, b := pair(t, url, "room1")
	require.Equal(t, 1, s.Rooms())

	b.sendRaw(`{"type":"offer","sdp":"v=0\r\no=offer\r\n"}`)
	m := a.read()
	require.Equal(t, Message{Type: TypeOffer, SDP: "v=0\r\no=offer\r\n", From: b.id}, m)

	a.sendRaw(`{"type":"answer","sdp":"v=0\r\no=answer\r\n"}`)
	m = b.read()
	require.Equal(t, Message{Type: TypeAnswer, SDP: "v=0\r\no=answer\r\n", From: a.id}, m)

	cand := `{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0}`
	a.sendRaw(`{"type":"candidate","candidate":` + cand + `}`)
	b.sendRaw(`{"type":"candidate","candidate":` + cand + `}`)
	for _, c := range []struct {
		to   *client
		from string
	}{{b, a.id}, {a, b.id}} {
		m = c.to.read()
		require.Equal(t, TypeCandidate, m.Type)
		require.Equal(t, c.from, m.From)
		require.Equal(t, "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", m.Candidate.Candidate)
		require.Equal(t, "0", *m.Candidate.SDPMid)
		require.Equal(t, uint16(0), *m.Candidate.SDPMLineIndex)
	}

	a.sendRaw(`{"type":"bye"}`)
	require.Equal(t, Message{Type: TypeBye, From: a.id}, b.read())

	// alice leaves: bob gets peer-left; when bob leaves too the room vanishes.
	require.NoError(t, a.ws.Close())
	m = b.read()
	require.Equal(t, Message{Type: TypePeerLeft, ID: a.id}, m)
	require.NoError(t, b.ws.Close())
	require.Eventually(t, func() bool { return s.Rooms() == 0 && s.Conns() == 0 }, 3*time.Second, 10*time.Millisecond)
}

func TestRoomFull(t *testing.T) {
	s, url := testServer(t, Config{})
	a, b := pair(t, url, "full")
	c := dial(t, url, "full")
	c.sendRaw(`{"type":"join","name":"carol"}`)
	m := c.read()
	require.Equal(t, TypeError, m.Type)
	require.Equal(t, CodeRoomFull, m.Code)
	_, err := c.tryRead(3 * time.Second)
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce, "the third joiner is closed")
	require.Equal(t, websocket.ClosePolicyViolation, ce.Code)
	require.Equal(t, "room full", ce.Text)

	// The two in the room are unaffected (nothing was sent to them) and still talk.
	b.sendRaw(`{"type":"offer","sdp":"v=0"}`)
	require.Equal(t, Message{Type: TypeOffer, SDP: "v=0", From: b.id}, a.read())
	// Another room works alongside.
	x, y := pair(t, url, "other")
	y.sendRaw(`{"type":"bye"}`)
	require.Equal(t, Message{Type: TypeBye, From: y.id}, x.read())
	require.Equal(t, 2, s.Rooms())
}

func TestBadMessage(t *testing.T) {
	_, url := testServer(t, Config{})
	// Before join: relayed types are refused.
	lone := dial(t, url, "bad")
	lone.sendRaw(`{"type":"offer","sdp":"v=0"}`)
	m := lone.read()
	require.Equal(t, CodeBadMessage, m.Code)
	require.Contains(t, m.Text, "join")
	require.NoError(t, lone.ws.Close())

	a, b := pair(t, url, "bad")
	for _, bad := range []string{`not json`, `{"type":"dance"}`, `{"type":"offer"}`, `{"type":"join","name":"again"}`, `{"type":"offer","sdp":"v=0","from":"forged"}`, `[]`} {
		a.sendRaw(bad)
		m := a.read()
		require.Equal(t, TypeError, m.Type, bad)
		require.Equal(t, CodeBadMessage, m.Code, bad)
		require.NotEmpty(t, m.Text)
	}
	require.NoError(t, a.ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}))
	require.Equal(t, CodeBadMessage, a.read().Code)
	// alice is still connected and in the room, and bob got none of it: his next message is the offer.
	a.sendRaw(`{"type":"offer","sdp":"v=0"}`)
	require.Equal(t, Message{Type: TypeOffer, SDP: "v=0", From: a.id}, b.read())
	b.sendRaw(`{"type":"answer","sdp":"v=0"}`)
	require.Equal(t, Message{Type: TypeAnswer, SDP: "v=0", From: b.id}, a.read())
}

func TestTooManyBadMessagesCloses(t *testing.T) {
	_, url := testServer(t, Config{})
	a, b := pair(t, url, "spam")
	for range maxBadMessages {
		a.sendRaw(`{`)
	}
	var err error
	for err == nil {
		_, err = a.tryRead(3 * time.Second)
	}
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "too many bad messages", ce.Text)
	require.Equal(t, Message{Type: TypePeerLeft, ID: a.id}, b.read())
}

func TestHeartbeat(t *testing.T) {
	s, url := testServer(t, Config{HeartbeatTimeout: 300 * time.Millisecond})
	silent, b := pair(t, url, "hb")
	// silent stops reading (so it answers no pings) and sends nothing; bob keeps reading (answers pings).
	start := time.Now()
	m, err := b.tryRead(5 * time.Second)
	require.NoError(t, err)
	took := time.Since(start)
	require.Equal(t, Message{Type: TypePeerLeft, ID: silent.id}, m)
	require.GreaterOrEqual(t, took, 250*time.Millisecond)
	t.Logf("silent client dropped and peer-left sent %v after it went quiet (heartbeat_timeout 300ms)", took.Round(time.Millisecond))
	// bob, answering pings, stays for several timeouts.
	_, err = b.tryRead(time.Second)
	var ne interface{ Timeout() bool }
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "bob gets nothing more and is not dropped: %v", err)
	require.Eventually(t, func() bool { return s.Conns() == 1 }, time.Second, 10*time.Millisecond, "the silent one is gone, bob stays")
}

func TestMaxMessage(t *testing.T) {
	_, url := testServer(t, Config{MaxMessage: 1024})
	a, b := pair(t, url, "big")
	a.sendRaw(`{"type":"offer","sdp":"` + strings.Repeat("a", 2000) + `"}`)
	var err error
	for err == nil {
		_, err = a.tryRead(3 * time.Second)
	}
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, websocket.CloseMessageTooBig, ce.Code)
	require.Equal(t, Message{Type: TypePeerLeft, ID: a.id}, b.read())
}

func TestRateLimit(t *testing.T) {
	_, url := testServer(t, Config{RateLimit: 10, RateBurst: 20})
	a, b := pair(t, url, "rate")
	for range 30 {
		a.sendRaw(`{"type":"bye"}`)
	}
	// bob gets the burst (20 byes), alice gets rate-limited for the rest.
	got := 0
	for {
		m, err := b.tryRead(300 * time.Millisecond)
		if err != nil {
			break
		}
		require.Equal(t, TypeBye, m.Type)
		got++
	}
	require.InDelta(t, 20, got, 2, "the burst passes, the rest is dropped")
	m := a.read()
	require.Equal(t, CodeRateLimited, m.Code)
	t.Logf("relayed %d of 30 messages sent at once (burst 20, 10/s)", got)
}

func TestHandshakeRefusals(t *testing.T) {
	s, url := testServer(t, Config{MaxConnections: 1})
	for _, tc := range []struct {
		name string
		room string
		code int
	}{
		{name: "no room", room: "", code: http.StatusBadRequest},
		{name: "bad room", room: "a/b", code: http.StatusBadRequest},
		{name: "dotdot is a name", room: "..", code: http.StatusSwitchingProtocols},
		{name: "long room", room: strings.Repeat("r", 65), code: http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws, resp, err := websocket.DefaultDialer.Dial(url+"?room="+tc.room, nil)
			require.NotNil(t, resp)
			_ = resp.Body.Close()
			require.Equal(t, tc.code, resp.StatusCode)
			if err == nil {
				require.NoError(t, ws.Close())
				require.Eventually(t, func() bool { return s.Conns() == 0 }, 3*time.Second, 10*time.Millisecond)
			}
		})
	}
	t.Run("max connections", func(t *testing.T) {
		one := dial(t, url, "one")
		_, resp, err := websocket.DefaultDialer.Dial(url+"?room=two", nil)
		require.Error(t, err)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		_ = resp.Body.Close()
		require.NoError(t, one.ws.Close())
		require.Eventually(t, func() bool { return s.Conns() == 0 }, 3*time.Second, 10*time.Millisecond)
	})
	t.Run("cross origin", func(t *testing.T) {
		h := http.Header{"Origin": {"https://evil.example"}}
		_, resp, err := websocket.DefaultDialer.Dial(url+"?room=x", h)
		require.Error(t, err)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		_ = resp.Body.Close()
	})
}

func TestCloseEndsConnections(t *testing.T) {
	s, url := testServer(t, Config{})
	a, b := pair(t, url, "shut")
	s.Close()
	for _, c := range []*client{a, b} {
		var err error
		for err == nil {
			_, err = c.tryRead(3 * time.Second)
		}
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, websocket.CloseGoingAway, ce.Code)
	}
	require.Equal(t, 0, s.Conns())
	_, resp, err := websocket.DefaultDialer.Dial(url+"?room=late", nil)
	require.Error(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	_ = resp.Body.Close()
}

func TestModeSFURefused(t *testing.T) {
	_, err := New(Config{Mode: "sfu"}, Deps{})
	require.ErrorIs(t, err, ErrMode)
}
