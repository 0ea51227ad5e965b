package signaling

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/estuary-media/estuary/sfu"
)

// authorize asks Deps.Authorizer whether the request may publish or play key (nil allows). The
// token is the Authorization Bearer (WHIP/WHEP, what OBS sends), else the query's token; param is
// the query as hooks receive it.
func (s *Server) authorize(ctx context.Context, r *http.Request, action, key, token, param string) (sfu.AuthRequest, error) {
	if s.auth == nil {
		return sfu.AuthRequest{}, nil
	}
	if token == "" {
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			token = strings.TrimSpace(h[7:])
		}
	}
	if token == "" {
		token = r.URL.Query().Get("token")
	}
	if param == "" && r.URL.RawQuery != "" {
		param = "?" + r.URL.RawQuery
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	proto := "whip"
	if action == sfu.ActionPlay {
		proto = "whep"
	}
	req := sfu.AuthRequest{Action: action, Key: key, Token: token, Protocol: proto, ClientIP: ip, Param: param}
	return req, s.auth.Authorize(ctx, req)
}

// notifyOnEnd tells the Authorizer (SRS on_unpublish / on_stop) when an authorized session ends.
func (s *Server) notifyOnEnd(ss *session, req sfu.AuthRequest) {
	if s.auth == nil {
		return
	}
	req.ClientID = ss.info.ID
	notify := func() { sfu.AuthNotify(s.auth, req) }
	ss.gmu.Lock()
	if !ss.closing { // teardown runs it (no goroutine waits per session)
		ss.onEnd = notify
		ss.gmu.Unlock()
		return
	}
	ss.gmu.Unlock()
	if !s.spawn(notify) {
		notify()
	}
}
