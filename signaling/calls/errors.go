package calls

import "errors"

var (
	// ErrBadMessage: a client message is not valid JSON, has an unknown type or misses a field
	// (answered with an "error" message of code "bad-message"; the connection stays open).
	ErrBadMessage = errors.New("bad message")
	// ErrRoomFull: the room already holds two peers (code "room-full"; the connection is closed).
	ErrRoomFull = errors.New("room full")
	// ErrRateLimited: the client sends messages faster than Config.RateLimit (code "rate-limited").
	ErrRateLimited = errors.New("rate limited")
	// ErrBadRoom: the room name is missing or not [A-Za-z0-9_.-]{1,64} (400 before the upgrade).
	ErrBadRoom = errors.New("room must be 1 to 64 characters of [A-Za-z0-9_.-]")
	// ErrClosed: the server is closed (503 before the upgrade).
	ErrClosed = errors.New("calls server closed")
	// ErrMode: Config.Mode is neither "" nor "p2p" (calls.mode sfu is not built).
	ErrMode = errors.New("unsupported calls mode")
)
