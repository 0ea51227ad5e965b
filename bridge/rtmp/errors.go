// Package rtmp is Estuary's RTMP server: go-rtmp speaks the protocol; publish: bridge/flv parses the
// tags, bridge/packetize turns them into RTP for the sfu hub (ingest.go); play: a Deps.Play viewer
// (bridge/flv, one muxer per stream) pumps its tags into the connection (egress.go).
package rtmp

import "errors"

var (
	// ErrServerClosed is returned by Serve after Shutdown.
	ErrServerClosed = errors.New("rtmp: server closed")
	// ErrNoHub: New was given no Deps.Hub.
	ErrNoHub = errors.New("rtmp: no hub")
	// ErrBadKey: the app/stream name is not a valid stream key.
	ErrBadKey = errors.New("rtmp: invalid stream key")
	// ErrPlayUnsupported: play without Deps.Play.
	ErrPlayUnsupported = errors.New("rtmp: play is not available")
	// ErrMessageTooLarge: a message longer than Config.MaxMessageSize.
	ErrMessageTooLarge = errors.New("rtmp: message too large")
	// ErrChunkStream: a chunk stream the connection may not use (too many, or a chunk without a
	// message header to continue).
	ErrChunkStream = errors.New("rtmp: bad chunk stream")
	// ErrChunkSize: a SetChunkSize outside 1..16777215.
	ErrChunkSize = errors.New("rtmp: bad chunk size")
	// ErrNoMedia: a publisher sent no media for Config.NoMediaTimeout.
	ErrNoMedia = errors.New("rtmp: no media")
	// ErrBadMedia: a tag that cannot be used (malformed NAL units, sequence header...).
	ErrBadMedia = errors.New("rtmp: malformed media")
	// ErrNotPublishing: media on a connection that has not published.
	ErrNotPublishing = errors.New("rtmp: media before publish")
	// ErrRefused: Deps.Admit refused the connection (e.g. limits.max_connections.rtmp).
	ErrRefused = errors.New("rtmp: connection refused")
)
