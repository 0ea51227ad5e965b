package hls

import "errors"

var (
	// ErrNoMedia: the stream has no track HLS can carry (H.264, H.265, AV1, AAC, Opus).
	ErrNoMedia = errors.New("hls: no track HLS can carry")
	// ErrNotReady: no segment exists yet within the first-request wait (a GOP longer than it).
	ErrNotReady = errors.New("hls: no segment yet")
	// ErrClosed: the server (or the stream's muxer) is closed.
	ErrClosed = errors.New("hls: closed")
	// ErrBadPath: a request path that names no stream file (bad key, bad file name).
	ErrBadPath = errors.New("hls: bad path")
	// ErrMalformed: a frame whose payload cannot be split (an AV1 temporal unit with bad OBU sizes).
	ErrMalformed = errors.New("hls: malformed frame")
)
