package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/estuary-media/estuary/sfu"
	"github.com/estuary-media/estuary/sfu/rtc"
)

// fakeAuth allows the token "good" for live/a, answers 403 for "other", 401 otherwise, and records.
type fakeAuth struct {
	mu       sync.Mutex
	asked    []sfu.AuthRequest
	notified []sfu.AuthRequest
}

func (f *fakeAuth) Authorize(_ context.Context, r sfu.AuthRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, r)
	switch {
	case r.Token == "good" && r.Key == "live/a":
		return nil
	case r.Token == "good" || r.Token == "other":
		return fmt.Errorf("%w: wrong stream", sfu.ErrForbidden)
	}
	return fmt.Errorf("%w: token required", sfu.ErrUnauthorized)
}

func (f *fakeAuth) Notify(r sfu.AuthRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notified = append(f.notified, r)
}

func (f *fakeAuth) notifies() []sfu.AuthRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sfu.AuthRequest(nil), f.notified...)
}

func TestAuthorizerRefusesAndNotifies(t *testing.T) {
	port := freePort(t)
	log := testLogger(t)
	eng, err := rtc.NewEngine(rtc.Config{ListenIP: "127.0.0.1", UDPPort: port, TCPPort: port, ICEServers: iceServersForTest()}, rtc.Deps{Logger: log})
	require.NoError(t, err)
	hub := sfu.NewHub(sfu.Config{}, sfu.Deps{Logger: log})
	fa := &fakeAuth{}
	srv, err := New(Config{NodeID: testNode}, Deps{Hub: hub, Engine: eng, Logger: log, Authorizer: fa})
	require.NoError(t, err)
	mux := http.NewServeMux()
	srv.Register(mux)
	hs := httptest.NewServer(mux)
	e := &env{hub: hub, engine: eng, srv: srv, http: hs, url: hs.URL}
	defer func() {
		hs.Close()
		srv.Close()
		hub.Close()
		eng.Close()
	}()
	_, offer := newPublisherPC(t, e)

	tests := []struct {
		name   string
		path   string
		hdr    []string
		status int
	}{
		{"whip no token", "/whip/live/a", nil, http.StatusUnauthorized},
		{"whip bad token", "/whip/live/a", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"whip other stream", "/whip/live/b", []string{"Authorization", "Bearer good"}, http.StatusForbidden},
		{"whep no token", "/whep/live/a", nil, http.StatusUnauthorized},
		{"srs whip query token", "/rtc/v1/whip/?app=live&stream=a&token=other", nil, http.StatusForbidden},
		{"whip valid", "/whip/live/a", []string{"Authorization", "Bearer good"}, http.StatusCreated},
	}
	var location string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, http.MethodPost, e.url+tc.path, "application/sdp", []byte(offer), tc.hdr...)
			require.Equal(t, tc.status, r.status, r.body)
			if tc.status == http.StatusCreated {
				location = r.header.Get("Location")
			}
		})
	}
	// SRS API: the streamurl's ?token= is the token; refusal is an SRS error code.
	body, _ := json.Marshal(map[string]string{"streamurl": "webrtc://h/live/a?token=other", "sdp": offer})
	r := do(t, http.MethodPost, e.url+"/rtc/v1/publish/", "application/json", body)
	var sr struct{ Code int }
	require.NoError(t, json.Unmarshal([]byte(r.body), &sr))
	require.Equal(t, SRSCodeDisabled, sr.Code)
	fa.mu.Lock()
	last := fa.asked[len(fa.asked)-1]
	fa.mu.Unlock()
	require.Equal(t, "other", last.Token)
	require.Equal(t, "?token=other", last.Param)

	// The valid session's end is notified (on_unpublish).
	require.NotEmpty(t, location)
	require.Equal(t, http.StatusOK, do(t, http.MethodDelete, e.url+location, "", nil).status)
	require.Eventually(t, func() bool { return len(fa.notifies()) == 1 }, 3*time.Second, 10*time.Millisecond)
	n := fa.notifies()[0]
	require.Equal(t, sfu.ActionUnpub, n.Action)
	require.Equal(t, "live/a", n.Key)
	require.NotEmpty(t, n.ClientID)
}
