package auth

import (
	"errors"
	"fmt"

	"github.com/estuary-media/estuary/sfu"
)

var (
	// ErrNoToken: the action needs a token and the client sent none (wraps sfu.ErrUnauthorized: 401).
	ErrNoToken = fmt.Errorf("%w: token required", sfu.ErrUnauthorized)
	// ErrBadToken: the token does not parse, is not HS256, has a bad signature or is expired (401).
	ErrBadToken = fmt.Errorf("%w: invalid token", sfu.ErrUnauthorized)
	// ErrTokenScope: a valid token for another stream or action (wraps sfu.ErrForbidden: 403).
	ErrTokenScope = fmt.Errorf("%w: token does not cover this stream or action", sfu.ErrForbidden)
	// ErrHookDenied: an http hook denied the client, failed or timed out (403).
	ErrHookDenied = fmt.Errorf("%w: denied by hook", sfu.ErrForbidden)
	// ErrConfig: the auth config is invalid (unknown mode, token mode without secret, hook mode without URLs).
	ErrConfig = errors.New("invalid auth config")
)
