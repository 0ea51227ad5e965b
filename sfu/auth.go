package sfu

import (
	"context"
	"errors"
)

// ErrUnauthorized: the client brought no token or a bad one (expired, badly signed). Adapters answer it
// with 401 (RTMP: an error onStatus) and the error's text as the reason. A valid token for another
// stream or action, or a hook's denial, is ErrForbidden (403).
var ErrUnauthorized = errors.New("unauthorized")

// Auth actions.
const (
	ActionPublish = "publish" // a publisher asks to publish Key
	ActionPlay    = "play"    // a viewer asks to play Key
	ActionStop    = "stop"    // notification: a viewer left (SRS on_stop)
	ActionUnpub   = "unpublish"
)

// AuthRequest is what an adapter knows about a client asking to publish or play.
type AuthRequest struct {
	Action   string // ActionPublish or ActionPlay (ActionStop / ActionUnpub for notifications)
	Key      string // stream key "{app}/{stream}"
	Token    string // bearer token as sent (empty if none)
	Protocol string // rtmp, whip, whep, srs, flv, hls, ws
	ClientID string // the adapter's client ID, if any
	ClientIP string // remote IP
	Param    string // the raw query ("?token=...") as SRS passes it to hooks
}

// Authorizer decides whether a client may publish or play. Authorize returns nil to allow, an error
// wrapping ErrUnauthorized or ErrForbidden to refuse. A nil Authorizer in an adapter's Deps allows all.
type Authorizer interface {
	Authorize(ctx context.Context, r AuthRequest) error
}

// AuthNotifier is optionally implemented by an Authorizer that wants to hear when an authorized
// publisher or viewer leaves (SRS on_unpublish / on_stop). Best effort; must not block the caller long.
type AuthNotifier interface {
	Notify(r AuthRequest)
}

// Authorize is a helper for adapters: a nil Authorizer allows everything.
func Authorize(ctx context.Context, a Authorizer, r AuthRequest) error {
	if a == nil {
		return nil
	}
	return a.Authorize(ctx, r)
}

// AuthNotify tells a (possibly nil) Authorizer that an authorized client left; r.Action is
// ActionPublish or ActionPlay as it was authorized, turned into ActionUnpub or ActionStop.
func AuthNotify(a Authorizer, r AuthRequest) {
	n, ok := a.(AuthNotifier)
	if !ok || n == nil {
		return
	}
	switch r.Action {
	case ActionPublish:
		r.Action = ActionUnpub
	case ActionPlay:
		r.Action = ActionStop
	}
	n.Notify(r)
}
