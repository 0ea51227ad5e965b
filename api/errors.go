package api

import "errors"

var (
	// ErrNotFound: the stream or client asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: http.api_token is set and the request lacks the right bearer token.
	ErrUnauthorized = errors.New("unauthorized")
)
