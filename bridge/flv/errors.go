// Package flv parses FLV tag bodies (legacy and Enhanced RTMP): the video and audio message payloads of
// RTMP. The FLV muxer (tags to bytes) comes later.
package flv

import "errors"

var (
	// ErrShort: a tag body shorter than its header.
	ErrShort = errors.New("flv: tag body too short")
	// ErrUnsupported: a codec, packet type or feature (multitrack, ModEx) this parser does not handle.
	ErrUnsupported = errors.New("flv: unsupported tag")
)
