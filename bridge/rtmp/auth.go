package rtmp

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/estuary-media/estuary/sfu"
)

// authTimeout bounds one authorization (hooks have their own, shorter, timeout).
const authTimeout = 10 * time.Second

// authorize asks Deps.Authorizer whether this connection may publish or play key. The token is
// `?token=` in the stream name, else in the tcUrl. It returns the reason to put in the onStatus.
func (ss *session) authorize(action, key, name string) (string, error) {
	if ss.srv.deps.Authorizer == nil {
		return "", nil
	}
	param := ""
	if i := strings.IndexByte(name, '?'); i >= 0 {
		param = name[i:]
	} else if i := strings.IndexByte(ss.tcURL, '?'); i >= 0 {
		param = ss.tcURL[i:]
	}
	ip, _, _ := net.SplitHostPort(ss.nc.RemoteAddr().String())
	r := sfu.AuthRequest{Action: action, Key: key, Token: tokenFromQuery(param), Protocol: "rtmp",
		ClientID: ss.id, ClientIP: ip, Param: param}
	ctx, cancel := context.WithTimeout(ss.srv.ctx, authTimeout)
	defer cancel()
	if err := ss.srv.deps.Authorizer.Authorize(ctx, r); err != nil {
		reason := action + " " + key + " refused: " + err.Error()
		if !errors.Is(err, sfu.ErrUnauthorized) && !errors.Is(err, sfu.ErrForbidden) {
			err = errors.Join(sfu.ErrForbidden, err)
		}
		return reason, err
	}
	ss.authed = append(ss.authed, r)
	return "", nil
}

// authNotify tells the Authorizer the authorized publish/play of this connection ended.
func (ss *session) authNotify() {
	for _, r := range ss.authed {
		sfu.AuthNotify(ss.srv.deps.Authorizer, r)
	}
	ss.authed = nil
}

// tokenFromQuery returns the token parameter of "?a=b&token=x".
func tokenFromQuery(q string) string {
	q = strings.TrimPrefix(q, "?")
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if v, ok := strings.CutPrefix(kv, "token="); ok {
			return v
		}
	}
	return ""
}
