package frames

import "errors"

var (
	// ErrUnsupportedCodec: the track's codec has no depacketizer here (VP8, VP9, ...).
	ErrUnsupportedCodec = errors.New("frames: unsupported codec")
	// ErrNoTracks: the stream has no track a frame-based output can use.
	ErrNoTracks = errors.New("frames: no usable tracks")
	// ErrMalformed: an RTP payload that does not follow its payload format; the access unit is dropped
	// and the track waits for the next keyframe.
	ErrMalformed = errors.New("frames: malformed payload")
	// ErrClosed: the source is closed (the stream ended or its last listener left).
	ErrClosed = errors.New("frames: closed")
)
